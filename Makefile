# The two commands of the README:
#   make run    install what is missing, build, run pier's main job
#   make test   install what is missing, build, run every test (plain build
#               and the ASan+UBSan build)
# Other targets: build, asan, unit, integration, format, check-format,
# banned, bench, clean.

JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD ?= build
ASAN_BUILD ?= build-asan

.PHONY: run test deps test-deps build asan unit integration format check-format banned bench clean

run: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j$(JOBS) --target pier
	./scripts/run-demo.sh

test: test-deps banned check-format build asan
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j$(JOBS) -L unit

deps:
	./scripts/install-deps.sh

test-deps:
	./scripts/install-deps.sh --test

build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

asan:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DPIER_SANITIZE=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j$(JOBS)

unit: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) -L unit

integration: build
	cd $(BUILD) && ctest --output-on-failure -L integration

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

check-format:
	@clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h') && echo "check-format: ok"

banned:
	./scripts/check-banned.sh

bench: build
	@for b in bench/*/run; do echo "== $$b"; $$b; done

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
