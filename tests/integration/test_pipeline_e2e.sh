#!/usr/bin/env bash
# End to end: `pier up` on a copy of the example monorepo, polling every
# 500 ms, against the embedded stack. Sites are read through the S3 API
# (public-read buckets). Covers: first deploy; backend-only push -> Skipped;
# three commits with only the middle one touching frontend/ -> deploy;
# failing build -> site unchanged, Failed with the command's output, next
# push deploys every change since the last success; cache restored; a secret
# never in logs, status JSON, the database or HTTP; kill -9 mid-build ->
# Failed (interrupted) after restart, site consistent, next push converges.
set -euo pipefail
PIER=${PIER:?} PIER_SRC=${PIER_SRC:?}
unset AWS_CA_BUNDLE CURL_CA_BUNDLE SSL_CERT_FILE REQUESTS_CA_BUNDLE AWS_PROFILE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY || true
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$tmp/up.log" ] && tail -20 "$tmp/up.log" >&2; "$PIER" status --dir "$repo" >&2 || true; exit 1; }
PY=/usr/bin/python3
repo=$tmp/repo
"$PIER_SRC/examples/monorepo/create.sh" "$repo" 500ms >/dev/null
export PIER_TEST_TOKEN="tok-$RANDOM-s3cr3t-$RANDOM"
# the dev build gets a secret and echoes it
$PY - "$repo/pier.yml" <<'PYEOF'
import sys
p=sys.argv[1]; s=open(p).read()
s=s.replace('      env:\n        STORYBOOK: "1"\n', '      env:\n        STORYBOOK: "1"\n      secrets:\n        DEMO_TOKEN: {env: PIER_TEST_TOKEN}\n',1)
open(p,'w').write(s)
PYEOF
grep -q DEMO_TOKEN "$repo/pier.yml" || fail "secret not added to pier.yml"
(cd "$repo" && sed -i 's|      - ./build.sh|      - echo "token is $DEMO_TOKEN"\n      - ./build.sh|' buildspec.yml && git commit -qam "echo the token" && git checkout -q main && git merge -q develop && git checkout -q develop)

port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
api=http://127.0.0.1:$port
start() { "$PIER" up "$repo" --api-listen 127.0.0.1:$port --edge-listen 127.0.0.1:0 --dashboard-listen 127.0.0.1:0 >>"$tmp/up.log" 2>&1 & pid=$!;
          for i in $(seq 100); do curl -sf "$api/_pier/health" >/dev/null && return 0; sleep 0.1; done; fail "pier up did not start"; }
# runs of dev as "id status" lines, newest first
runs() { "$PIER" status dev --dir "$repo" --json --limit 1 | $PY -c 'import json,sys; [print(r["id"], r["status"]) for r in json.load(sys.stdin)["runs"]]'; }
last_id() { runs | cut -d" " -f1; }
# waits until a dev run newer than $1 has ended; prints "id status"
wait_run() { for i in $(seq 300); do
      l=$(runs); id=${l%% *}; st=${l#* }
      if [ -n "$id" ] && [ "$id" -gt "$1" ] && [ "$st" != InProgress ] && [ "$st" != Queued ]; then echo "$l"; return 0; fi
      sleep 0.1; done; fail "no run after $1 ended"; }
site() { curl -sf "$api/dev/index.html" || echo "(no site)"; }
commit() { (cd "$repo" && eval "$1" && git add -A && git commit -qm "$2"); }

start
r=$(wait_run 0); [ "${r#* }" = Succeeded ] || fail "first deploy: $r"
site | grep -q "version 1" || fail "first deploy not served"
curl -sf "$api/dev/storybook/index.html" | grep -q "Component catalogue" || fail "storybook not deployed"
echo "ok: first deploy"

# backend-only push -> Skipped, no build, site unchanged
before=$(last_id)
commit 'echo "# more" >> backend/README.md' "backend only"
r=$(wait_run "$before"); [ "${r#* }" = Skipped ] || fail "backend-only push: $r"
id=${r%% *}
"$PIER" status dev --dir "$repo" --json | $PY -c '
import json,sys
r=[r for r in json.load(sys.stdin)["runs"] if r["id"]=='"$id"'][0]
assert "frontend" in r["reason"] or "no file" in r["reason"] or "match" in r["reason"], r["reason"]
st={s["name"]:s["status"] for s in r["stages"]}
assert st["build"]=="NotRun", st' || fail "skipped run has no reason or ran a build"
site | grep -q "version 1" || fail "site changed after a skip"
echo "ok: backend-only push skipped"

# three commits in one push, only the middle one touching frontend/
before=$(last_id)
(cd "$repo" && git checkout -q -b side develop \
  && echo a >> backend/README.md && git commit -qam b1 \
  && sed -i 's/version 1/version 2/' frontend/src/index.html && git commit -qam f2 \
  && echo c >> backend/README.md && git commit -qam b3 \
  && git checkout -q develop && git merge -q --ff-only side)
r=$(wait_run "$before"); [ "${r#* }" = Succeeded ] || fail "three-commit push: $r"
site | grep -q "version 2" || fail "three-commit push not served"
"$PIER" logs "${r%% *}" --dir "$repo" | grep -q "cache entries 2" || fail "cache not restored on the second build"
echo "ok: three commits, middle one frontend: deployed; cache restored"

# failing build: site unchanged, Failed with the command's output
before=$(last_id)
commit "sed -i 's/version 2/version 3/' frontend/src/index.html && sed -i 's|^set -eu|set -eu\necho BROKEN-BUILD-MARKER; exit 3|' frontend/build.sh" "broken"
r=$(wait_run "$before"); [ "${r#* }" = Failed ] || fail "broken build: $r"
"$PIER" logs "${r%% *}" --dir "$repo" | grep -q BROKEN-BUILD-MARKER || fail "failing output not in the log"
site | grep -q "version 2" || fail "site changed by a failed build"
before=$(last_id)
commit "sed -i '/BROKEN-BUILD-MARKER/d' frontend/build.sh" "fix the build"
r=$(wait_run "$before"); [ "${r#* }" = Succeeded ] || fail "fixed build: $r"
site | grep -q "version 3" || fail "the change of the failed push was not deployed"
echo "ok: failed build left the site; next push deployed every change"

# the secret
for f in "$tmp"/repo/.pier/logs/*.log; do grep -q "$PIER_TEST_TOKEN" "$f" && fail "secret in $f"; done
grep -q "token is \*\*\*" "$repo"/.pier/logs/*.log || fail "masked secret line not in logs"
"$PIER" status --dir "$repo" --json | grep -q "$PIER_TEST_TOKEN" && fail "secret in status --json"
for f in "$repo"/.pier/state.db*; do grep -qa "$PIER_TEST_TOKEN" "$f" && fail "secret in $f"; done
for k in index.html storybook/index.html; do curl -s "$api/dev/$k" | grep -q "$PIER_TEST_TOKEN" && fail "secret served"; done
echo "ok: secret masked everywhere"

# kill -9 mid-build, restart
before=$(last_id)
commit "sed -i 's/version 3/version 4/' frontend/src/index.html && sed -i 's|^set -eu|set -eu\nsleep 20|' frontend/build.sh" "slow build"
for i in $(seq 100); do [ "$(runs)" = "$((before+1)) InProgress" ] && grep -q "Running command ./build.sh" "$repo/.pier/logs/$((before+1)).log" 2>/dev/null && break; sleep 0.1; done
kill -9 "$pid"; wait "$pid" 2>/dev/null || true; pid=
site | grep -q "version 3" || true
start
"$PIER" status dev --dir "$repo" --json | $PY -c '
import json,sys
r=[r for r in json.load(sys.stdin)["runs"] if r["id"]=='"$((before+1))"'][0]
assert r["status"]=="Failed" and r["reason"]=="interrupted", r' || fail "interrupted run not marked"
site | grep -q "version 3" || fail "site not consistent after kill -9"
before=$(last_id)
commit "sed -i '/^sleep 20/d' frontend/build.sh" "fast again"
r=$(wait_run "$before"); [ "${r#* }" = Succeeded ] || fail "after restart: $r"
site | grep -q "version 4" || fail "did not converge after restart"
echo "ok: kill -9 mid-build, restart, converged"

# pier run through the running pier up: nothing changed -> Skipped
before=$(last_id)
"$PIER" run dev --dir "$repo" --wait | grep -q "Skipped" || fail "pier run --wait"
echo "ok: pier run"
