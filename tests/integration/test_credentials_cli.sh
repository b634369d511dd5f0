#!/usr/bin/env bash
# pier credentials, end to end: the built binary against a container
# credentials endpoint (a small Python http.server on 127.0.0.1, free port)
# with the environment cleared by env -i, then with no source at all.
# Checks the provider, the masked key, the expiry and region lines, the
# JSON form, the refused token, and that no secret or token ever appears in
# stdout or stderr.
set -euo pipefail

: "${PIER:?PIER must name the pier binary}"
PY=/usr/bin/python3
SECRET='wJalrXUtnFEMI/K7MDENG/bPxRfiCYzINTEGRATIONKEY'
SESSION='IQoJb3JpZ2luX2VjEINTEGRATIONSESSIONTOKEN'
AUTH='Bearer integration-test-token'

work=$(mktemp -d /tmp/pier-test-creds-cli-XXXXXX)
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    for f in "$work"/out "$work"/err; do [ -f "$f" ] && { echo "--- $f"; cat "$f"; } >&2; done
    exit 1
}

cat >"$work/server.py" <<'EOF'
import datetime, http.server, json, os, sys

port_file, auth, secret, session = sys.argv[1:5]

class Handler(http.server.BaseHTTPRequestHandler):
    def send(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path != "/creds":
            return self.send(404, {"message": "not found"})
        if self.headers.get("Authorization") != auth:
            return self.send(401, {"code": "InvalidToken", "message": "Authorization token is invalid"})
        exp = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
        self.send(200, {
            "AccessKeyId": "ASIAINTEGRATIONWXYZ",
            "SecretAccessKey": secret,
            "Token": session,
            "Expiration": exp.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "RoleArn": "arn:aws:iam::123456789012:role/pier-build",
        })

    def log_message(self, *args):
        pass

server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_port))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
EOF

"$PY" "$work/server.py" "$work/port" "$AUTH" "$SECRET" "$SESSION" &
server_pid=$!
for _ in $(seq 1 100); do
    [ -s "$work/port" ] && break
    sleep 0.05
done
[ -s "$work/port" ] || fail "the test server did not start"
port=$(cat "$work/port")
url="http://127.0.0.1:$port/creds"
mkdir -p "$work/home"

no_secrets() {
    for f in "$work/out" "$work/err"; do
        if grep -qF -e "$SECRET" -e "$SESSION" -e "integration-test-token" "$f"; then
            fail "a secret appeared in $f"
        fi
    done
}

# 1. container credentials with the token in the environment
set +e
env -i HOME="$work/home" PATH=/usr/bin:/bin \
    AWS_CONTAINER_CREDENTIALS_FULL_URI="$url" AWS_CONTAINER_AUTHORIZATION_TOKEN="$AUTH" \
    AWS_EC2_METADATA_DISABLED=true AWS_REGION=eu-west-1 \
    "$PIER" credentials >"$work/out" 2>"$work/err"
rc=$?
set -e
[ "$rc" -eq 0 ] || fail "pier credentials exited $rc"
grep -q '^provider: *container$' "$work/out" || fail "provider line"
grep -qF "source:      $url" "$work/out" || fail "source line"
grep -q '^access key: *\*\*\*\*WXYZ (with a session token)$' "$work/out" || fail "masked key line"
grep -qE '^expires: *[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z \(in (59m|1h 0m)' "$work/out" ||
    fail "expiry line"
grep -q '^region: *eu-west-1$' "$work/out" || fail "region line"
no_secrets

# 2. the same as JSON, with the token from a file
printf '%s\n' "$AUTH" >"$work/token"
set +e
env -i HOME="$work/home" PATH=/usr/bin:/bin \
    AWS_CONTAINER_CREDENTIALS_FULL_URI="$url" AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE="$work/token" \
    AWS_EC2_METADATA_DISABLED=true \
    "$PIER" credentials --json >"$work/out" 2>"$work/err"
rc=$?
set -e
[ "$rc" -eq 0 ] || fail "pier credentials --json exited $rc"
"$PY" - "$work/out" <<'EOF' || fail "JSON output"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["provider"] == "container", d
assert d["access_key_id"] == "****WXYZ", d
assert d["session_token"] is True, d
# an hour from the server's clock; pier's time() is the kernel's coarse clock,
# which can still read the previous second at a second boundary: 1 s slack
assert d["expiration"].endswith("Z") and 3000 < d["expires_in_seconds"] <= 3601, d
assert d["region"] is None and d["profile"] == "default", d
assert "SecretAccessKey" not in json.dumps(d)
EOF
no_secrets

# 3. a refused token: exit 1, the 401 explained, the chain listed
set +e
env -i HOME="$work/home" PATH=/usr/bin:/bin \
    AWS_CONTAINER_CREDENTIALS_FULL_URI="$url" AWS_CONTAINER_AUTHORIZATION_TOKEN="Bearer wrong" \
    AWS_EC2_METADATA_DISABLED=true \
    "$PIER" credentials >"$work/out" 2>"$work/err"
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "a refused token should exit 1, got $rc"
grep -q 'container: the authorization token was refused: .*answered HTTP 401 Unauthorized' \
    "$work/err" || fail "401 message"
[ ! -s "$work/out" ] || fail "nothing on stdout when failing"
no_secrets

# 4. no source at all: exit 1 and every provider with its reason
mkdir -p "$work/empty"
set +e
env -i HOME="$work/empty" AWS_EC2_METADATA_DISABLED=true \
    "$PIER" credentials >"$work/out" 2>"$work/err"
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "no credentials should exit 1, got $rc"
grep -q '^pier: no AWS credentials found' "$work/err" || fail "headline"
grep -q '^  env: AWS_ACCESS_KEY_ID not set$' "$work/err" || fail "env reason"
grep -q '^  profile default: no ~/.aws/credentials or ~/.aws/config$' "$work/err" ||
    fail "profile reason"
grep -q '^  web-identity: AWS_WEB_IDENTITY_TOKEN_FILE not set$' "$work/err" || fail "web reason"
grep -q '^  container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and AWS_CONTAINER_CREDENTIALS_FULL_URI not set$' \
    "$work/err" || fail "container reason"
grep -q '^  imds: disabled by AWS_EC2_METADATA_DISABLED$' "$work/err" || fail "imds reason"

# 5. a profile that does not exist, and a bad option
set +e
env -i HOME="$work/empty" "$PIER" credentials --profile ghost >"$work/out" 2>"$work/err"
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "a missing profile should exit 1, got $rc"
grep -q "profile 'ghost' (--profile) is in neither" "$work/err" || fail "missing profile message"
set +e
"$PIER" credentials --nope >"$work/out" 2>"$work/err"
rc=$?
set -e
[ "$rc" -eq 2 ] || fail "a bad option should exit 2, got $rc"

echo "test_credentials_cli: ok"
