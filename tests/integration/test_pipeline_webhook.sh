#!/usr/bin/env bash
# Webhooks and the edge under `pier up` (no polling):
#  - a GitHub-signed push (X-Hub-Signature-256 over the raw body) -> 202 and
#    one run; wrong, missing and altered-body signatures -> 401 and no run; a
#    push deleting the branch (after = zeros) -> ignored, no run;
#  - the edge serves the pipeline's distribution by Host (and the /storybook
#    rewrite); pages are cached an hour (site defaults), so a frontend change
#    served after the run proves the invalidation reached the edge;
#  - restarted with stages.invalidate: false, the edge keeps serving the
#    cached old page after a deploy while the bucket has the new one.
set -euo pipefail
PIER=${PIER:?} PIER_SRC=${PIER_SRC:?}
unset AWS_CA_BUNDLE CURL_CA_BUNDLE SSL_CERT_FILE REQUESTS_CA_BUNDLE AWS_PROFILE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY || true
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
repo=$tmp/repo
fail() { echo "FAIL: $*" >&2; [ -f "$tmp/up.log" ] && tail -20 "$tmp/up.log" >&2; "$PIER" status --dir "$repo" >&2 || true; exit 1; }
PY=/usr/bin/python3
"$PIER_SRC/examples/monorepo/create.sh" "$repo" 1h >/dev/null
export PIER_HOOK_SECRET="It's a Secret to Everybody $RANDOM"
write_conf() { # $1: extra pipeline keys
cat > "$repo/pier.yml" <<YML
pipelines:
  - name: dev
    source:
      repo: .
      branch: develop
      paths: ["frontend/**", buildspec.yml]
      trigger:
        webhook: {provider: github, secret-env: PIER_HOOK_SECRET}
    build:
      env: {STORYBOOK: "1"}
    cdn: {host: web-dev.localhost}
    site:
      defaults: {html: "public, max-age=3600"}   # the edge keeps pages until invalidated
      rewrites:
        - {from: /storybook, to: /storybook/index.html}
$1
YML
}
write_conf ""

port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
api=http://127.0.0.1:$port
edge=
start() { : > "$tmp/up.log"
  "$PIER" up "$repo" --api-listen 127.0.0.1:$port --edge-listen 127.0.0.1:0 --dashboard-listen 127.0.0.1:0 >>"$tmp/up.log" 2>&1 & pid=$!
  for i in $(seq 100); do grep -q "webhook: $api/_pier/webhooks/dev" "$tmp/up.log" && break; sleep 0.1; done
  edge=$(sed -n "s|.*curl -H 'Host: web-dev.localhost' \(http://127.0.0.1:[0-9]*\)/).*|\1|p" "$tmp/up.log" | head -1)
  [ -n "$edge" ] || fail "no edge URL in the banner"; }
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }
runs_count() { "$PIER" status dev --dir "$repo" --json 2>/dev/null | $PY -c 'import json,sys; print(len(json.load(sys.stdin)["runs"]))' 2>/dev/null || echo 0; }
last() { "$PIER" status dev --dir "$repo" --json --limit 1 | $PY -c 'import json,sys; r=json.load(sys.stdin)["runs"]; print(r[0]["id"], r[0]["status"]) if r else print(0, none)'; }
wait_run() { for i in $(seq 300); do l=$(last); id=${l%% *}; st=${l#* }
      if [ "$id" -gt "$1" ] && [ "$st" != InProgress ] && [ "$st" != Queued ]; then echo "$l"; return 0; fi
      sleep 0.1; done; fail "no run after $1 ended"; }
tip() { git -C "$repo" rev-parse develop; }
# hook MODE AFTER -> HTTP status (MODE: good, wrong, missing, altered)
hook() { $PY - "$api/_pier/webhooks/dev" "$1" "$2" <<'PYEOF'
import hashlib, hmac, json, os, sys, urllib.request, urllib.error
url, mode, after = sys.argv[1:4]
body = json.dumps({"ref": "refs/heads/develop", "before": "0" * 40, "after": after,
                   "repository": {"full_name": "example/monorepo"}}).encode()
sig = "sha256=" + hmac.new(os.environ["PIER_HOOK_SECRET"].encode(), body, hashlib.sha256).hexdigest()
headers = {"Content-Type": "application/json", "X-GitHub-Event": "push", "X-GitHub-Delivery": "1"}
if mode == "wrong":
    headers["X-Hub-Signature-256"] = "sha256=" + "0" * 64
elif mode != "missing":
    headers["X-Hub-Signature-256"] = sig
if mode == "altered":
    body = body.replace(b"example", b"exampl3")
req = urllib.request.Request(url, data=body, headers=headers, method="POST")
try:
    print(urllib.request.urlopen(req, timeout=10).status)
except urllib.error.HTTPError as e:
    print(e.code)
PYEOF
}
page() { curl -s -H "Host: web-dev.localhost" "$edge$1"; }

start
[ "$(runs_count)" = 0 ] || fail "a run without a trigger"
for m in wrong missing altered; do
  c=$(hook $m "$(tip)"); [ "$c" = 401 ] || fail "$m signature answered $c"
done
c=$(hook good 0000000000000000000000000000000000000000); [ "$c" = 200 ] || fail "branch delete answered $c"
sleep 0.5
[ "$(runs_count)" = 0 ] || fail "a refused or deleting push started a run"
echo "ok: wrong/missing/altered signatures 401, branch delete ignored, no run"

c=$(hook good "$(tip)"); [ "$c" = 202 ] || fail "signed push answered $c"
r=$(wait_run 0); [ "${r#* }" = Succeeded ] || fail "webhook run: $r"
[ "$(runs_count)" = 1 ] || fail "one push, $(runs_count) runs"
"$PIER" status dev --dir "$repo" --json --limit 1 | grep -q '"trigger": *"webhook"' || fail "trigger not recorded as webhook"
echo "ok: signed push -> one run"

page / | grep -q "version 1" || fail "edge: $(page /)"
page /storybook | grep -q "Component catalogue" || fail "edge: /storybook rewrite"
curl -s -o /dev/null -w '%{http_code}' -H "Host: nobody.localhost" "$edge/" | grep -q 404 || fail "unknown host served"
echo "ok: the edge serves the site by Host, with the rewrite"

(cd "$repo" && sed -i 's/version 1/version 2/' frontend/src/index.html && git commit -qam v2)
before=${r%% *}
c=$(hook good "$(tip)"); [ "$c" = 202 ] || fail "second push answered $c"
r=$(wait_run "$before"); [ "${r#* }" = Succeeded ] || fail "second run: $r"
page / | grep -q "version 2" || fail "edge after the run: $(page / | head -3)"
echo "ok: a frontend change is served by the edge after the run"

stop
write_conf "    stages: {invalidate: false}"
start
page / | grep -q "version 2" || fail "edge after restart"
(cd "$repo" && sed -i 's/version 2/version 3/' frontend/src/index.html && git commit -qam v3)
before=${r%% *}
c=$(hook good "$(tip)"); [ "$c" = 202 ] || fail "third push answered $c"
r=$(wait_run "$before"); [ "${r#* }" = Succeeded ] || fail "third run: $r"
curl -s "$api/dev/index.html" | grep -q "version 3" || fail "bucket not updated"
page / | grep -q "version 2" || fail "edge served new content without an invalidation"
echo "ok: without the invalidate stage the edge keeps the old content"
