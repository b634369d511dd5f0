# Shared by the `pier serve` integration tests (sourced, not a test itself):
# starts `$PIER serve` on a free port with a fresh data directory, waits for
# its URL, and stops it (and removes the directory) when the test exits.
#
# After start_serve: $URL, $DATA, $TMP, and the AWS environment pointing at
# the server's administrator credential.

unset AWS_CA_BUNDLE REQUESTS_CA_BUNDLE CURL_CA_BUNDLE SSL_CERT_FILE SSL_CERT_DIR \
      AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_ENDPOINT_URL \
      AWS_DEFAULT_PROFILE AWS_CONFIG_FILE AWS_REGION
: "${PIER:?PIER must name the pier binary}"

TMP=$(mktemp -d /tmp/pier-serve-test-XXXXXX)
DATA=$TMP/data
SERVE_PID=

stop_serve() {
    if [ -n "$SERVE_PID" ]; then
        kill "$SERVE_PID" 2>/dev/null || true
        local src=0
        wait "$SERVE_PID" 2>/dev/null || src=$?
        SERVE_PID=
        if [ "$src" -ne 0 ]; then
            echo "FAIL - pier serve exited with $src after SIGTERM" >&2
            tail -40 "$TMP/serve.err" >&2
            FAILED=$((FAILED + 1))
        fi
    fi
}
cleanup() {
    local rc=$?
    stop_serve
    if [ $rc -ne 0 ] && [ -f "$TMP/serve.err" ]; then
        echo "--- pier serve stderr (last 30 lines) ---" >&2
        tail -30 "$TMP/serve.err" >&2
    fi
    rm -rf "$TMP"
    exit $rc
}
trap cleanup EXIT

start_serve() {
    "$PIER" serve --data "$DATA" --api-listen 127.0.0.1:0 "$@" >"$TMP/serve.out" 2>"$TMP/serve.err" &
    SERVE_PID=$!
    URL=
    for _ in $(seq 1 100); do
        URL=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$TMP/serve.out" 2>/dev/null | head -1 || true)
        [ -n "$URL" ] && break
        kill -0 "$SERVE_PID" 2>/dev/null || { cat "$TMP/serve.err" >&2; echo "pier serve died" >&2; exit 1; }
        sleep 0.1
    done
    [ -n "$URL" ] || { echo "pier serve printed no URL" >&2; exit 1; }
    export AWS_SHARED_CREDENTIALS_FILE=$DATA/credentials AWS_PROFILE=pier
    export AWS_DEFAULT_REGION=us-east-1 AWS_CONFIG_FILE=$TMP/aws-config
    : > "$AWS_CONFIG_FILE"
}

PASSED=0
FAILED=0
ok() { PASSED=$((PASSED + 1)); echo "ok - $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL - $*" >&2; }
check() { # check "description" command...
    local what=$1
    shift
    if "$@"; then ok "$what"; else fail "$what"; fi
}
finish() {
    stop_serve
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
}
