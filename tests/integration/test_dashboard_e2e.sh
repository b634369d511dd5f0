#!/usr/bin/env bash
# The dashboard in real headless Chromium (Debian's chromium driven by
# playwright-core from tests/node): `pier up` on a copy of the example
# monorepo whose build is made slow (echo + sleep steps), then
# tests/integration/dashboard_e2e.cjs pushes changes and watches the page:
# run appears, stages go InProgress -> Succeeded in order, the log streams
# while the build runs, the site serves the change; a backend-only push is
# Skipped with its reason; a failing build shows Failed on the build stage
# with the command's output; Redeploy of the first run brings version 1
# back to the edge; Run now. Screenshots (1280x800, 375x812) go to
# $PIER_ARTIFACTS (default: the ctest working dir's dashboard-artifacts/).
set -euo pipefail
PIER=${PIER:?} PIER_SRC=${PIER_SRC:?}
unset AWS_CA_BUNDLE CURL_CA_BUNDLE SSL_CERT_FILE REQUESTS_CA_BUNDLE AWS_PROFILE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY || true
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || { echo "SKIP: no $CHROMIUM (scripts/install-deps.sh --test installs it)"; exit 0; }
[ -d "$PIER_SRC/tests/node/node_modules/playwright-core" ] || { echo "FAIL: playwright-core missing: run scripts/install-deps.sh --test" >&2; exit 1; }
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$tmp/up.log" ] && tail -30 "$tmp/up.log" >&2; exit 1; }
repo=$tmp/repo
"$PIER_SRC/examples/monorepo/create.sh" "$repo" 500ms >/dev/null
# A slow build with lines to stream, on both branches.
(cd "$repo" && sed -i 's|^set -eu$|set -eu\necho \"<script>window.pwned=1<\/script><b>not-bold<\/b>\"\necho slow-step-1 compiling; sleep 3\necho slow-step-2 bundling; sleep 1|' frontend/build.sh \
  && grep -q slow-step-1 frontend/build.sh && git commit -qam "slow build" && git checkout -q main && git merge -q develop && git checkout -q develop) \
  || fail "could not slow the example's build"

"$PIER" up "$repo" --api-listen 127.0.0.1:0 --edge-listen 127.0.0.1:0 --dashboard-listen 127.0.0.1:0 >"$tmp/up.log" 2>&1 & pid=$!
for i in $(seq 100); do grep -q '^dashboard: http' "$tmp/up.log" && break; kill -0 $pid 2>/dev/null || fail "pier up exited"; sleep 0.1; done
dash=$(sed -n 's/^dashboard: \(http[^ ]*\).*/\1/p' "$tmp/up.log")
edge=$(sed -n "s/.*curl -H 'Host: web-dev.localhost' \(http[^ ]*\)\/).*/\1/p" "$tmp/up.log")
[ -n "$dash" ] && [ -n "$edge" ] || fail "no dashboard or edge URL in the banner"
art=${PIER_ARTIFACTS:-$PWD/dashboard-artifacts}
mkdir -p "$art"; rm -f "$art"/*.png
NODE_PATH=$PIER_SRC/tests/node/node_modules DASH=$dash EDGE=$edge REPO=$repo ARTIFACTS=$art \
  TMPDIR=$tmp CHROMIUM=$CHROMIUM node "$PIER_SRC/tests/integration/dashboard_e2e.cjs" || fail "browser test"
echo "ok: dashboard end to end in Chromium; screenshots in $art"
