#!/usr/bin/env bash
# test_build_cli: `pier build` on a small sample project in a temp dir:
# a successful build with artifacts, a failing build (exit 1, the phase and
# command named), a secret masked in stdout, and usage errors (exit 2).
set -euo pipefail
: "${PIER:?set PIER to the pier binary}"
work=$(mktemp -d /tmp/pier-test-build-cli-XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

proj="$work/site"
mkdir -p "$proj/src"
printf '<h1>%s</h1>\n' 'sample' > "$proj/src/index.html"
printf 'body{}\n' > "$proj/src/site.css"
cat > "$proj/buildspec.yml" <<'YAML'
version: 0.2
env:
  variables:
    OUT: dist
  exported-variables:
    - BUILT_AT
phases:
  install:
    commands:
      - echo "installing with token $DEPLOY_TOKEN"
  build:
    commands:
      - mkdir -p "$OUT/assets"
      - cp src/index.html "$OUT/" && cp src/site.css "$OUT/assets/"
      - echo "debug map" > "$OUT/assets/site.css.map"
      - BUILT_AT=today
  post_build:
    commands:
      - echo "built, succeeding=$CODEBUILD_BUILD_SUCCEEDING"
artifacts:
  base-directory: dist
  files:
    - '**/*'
  exclude-paths:
    - '**/*.map'
YAML

# 1. Success: artifacts in --out, secret masked, exit 0.
cd "$work"
export SAMPLE_SECRET='tok-Zq81-secret'
set +e
"$PIER" build "$proj/buildspec.yml" --src "$proj" --out "$work/out" \
    --secret DEPLOY_TOKEN=SAMPLE_SECRET --env EXTRA=1 >"$work/ok.out" 2>"$work/ok.err"
rc=$?
set -e
[ "$rc" -eq 0 ] || { cat "$work/ok.out" "$work/ok.err"; fail "success build exited $rc"; }
[ -f "$work/out/index.html" ] || fail "index.html not collected"
[ -f "$work/out/assets/site.css" ] || fail "assets/site.css not collected"
[ ! -e "$work/out/assets/site.css.map" ] || fail "exclude-paths ignored"
grep -q 'installing with token \*\*\*$' "$work/ok.out" || fail "secret not masked as ***"
if grep -q "$SAMPLE_SECRET" "$work/ok.out" "$work/ok.err"; then fail "secret leaked"; fi
grep -q 'built, succeeding=1$' "$work/ok.out" || fail "post_build output missing"
grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z \[pier\] Entering phase BUILD$' "$work/ok.out" \
    || fail "log lines are not timestamped"
grep -q '^exported BUILT_AT=today$' "$work/ok.out" || fail "exported variable not printed"
grep -q '2 artifact files' "$work/ok.err" || fail "summary missing: $(cat "$work/ok.err")"

# 2. Failure: exit 1, the phase and the command named; post_build still runs.
cat > "$proj/failing.yml" <<'YAML'
version: 0.2
phases:
  build:
    commands:
      - echo step one
      - test -f does-not-exist
      - echo never
  post_build:
    commands:
      - echo "post sees $CODEBUILD_BUILD_SUCCEEDING"
YAML
set +e
"$PIER" build "$proj/failing.yml" --src "$proj" --out "$work/out2" >"$work/fail.out" 2>"$work/fail.err"
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "failing build exited $rc, want 1"
grep -q "phase BUILD failed: command 'test -f does-not-exist' (.*failing.yml:6) exited with status 1" \
    "$work/fail.err" || fail "failure message: $(cat "$work/fail.err")"
grep -q 'Command did not exit successfully test -f does-not-exist exit status 1' "$work/fail.out" \
    || fail "failed command not logged"
if grep -q '^[^ ]* never$' "$work/fail.out"; then fail "command after the failure ran"; fi
grep -q 'post sees 0$' "$work/fail.out" || fail "post_build did not see CODEBUILD_BUILD_SUCCEEDING=0"

# 3. A buildspec error: exit 1 with file:line:column.
printf 'version: 0.1\nphases:\n  build:\n    commands: [echo]\n' > "$proj/old.yml"
set +e
"$PIER" build "$proj/old.yml" --src "$proj" >/dev/null 2>"$work/old.err"
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "version 0.1 exited $rc, want 1"
grep -q 'old.yml:1:10: buildspec version 0.1 is not supported' "$work/old.err" \
    || fail "version 0.1 message: $(cat "$work/old.err")"

# 4. Usage errors: exit 2.
for args in "--bogus" "--timeout soon" "--env NOEQUALS" "--secret X=PIER_TEST_UNSET_VAR" "a.yml b.yml"; do
    set +e
    # shellcheck disable=SC2086
    "$PIER" build $args >/dev/null 2>&1
    rc=$?
    set -e
    [ "$rc" -eq 2 ] || fail "'pier build $args' exited $rc, want 2"
done
echo "test_build_cli: ok"
