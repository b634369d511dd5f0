#!/usr/bin/env bash
# Invoke actions through `pier run` on the embedded stack: a boto3 handler
# (Debian's python3) that calls create_invalidation and
# put_job_success_result with only the endpoints and container credentials
# pier sets -> the run's actions stage Succeeded; a handler that exits
# without reporting -> Failed, with its stderr tail in the stage message;
# the build's boto3 gets container credentials that may write its own
# pipeline's bucket and not another's.
set -euo pipefail
PIER=${PIER:?} PIER_SRC=${PIER_SRC:?}
unset AWS_CA_BUNDLE CURL_CA_BUNDLE SSL_CERT_FILE REQUESTS_CA_BUNDLE AWS_PROFILE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_SHARED_CREDENTIALS_FILE AWS_CONFIG_FILE || true
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
repo=$tmp/repo
fail() { echo "FAIL: $*" >&2; "$PIER" status --dir "$repo" >&2 || true; for f in "$repo"/.pier/logs/*.log; do tail -15 "$f" >&2; done; exit 1; }
PY=/usr/bin/python3
"$PIER_SRC/examples/monorepo/create.sh" "$repo" 1h >/dev/null

cat > "$tmp/ok.py" <<'PYEOF'
import json, os, sys
import boto3
event = json.load(sys.stdin)
job = event["CodePipeline.job"]
dist = job["data"]["actionConfiguration"]["configuration"]["UserParameters"]
region = os.environ["AWS_REGION"]
cf = boto3.client("cloudfront", endpoint_url=os.environ["AWS_ENDPOINT_URL_CLOUDFRONT"], region_name=region)
inv = cf.create_invalidation(DistributionId=dist, InvalidationBatch={
    "Paths": {"Quantity": 1, "Items": ["/index.html"]}, "CallerReference": job["id"]})
cp = boto3.client("codepipeline", endpoint_url=os.environ["AWS_ENDPOINT_URL_CODEPIPELINE"], region_name=region)
cp.put_job_success_result(jobId=job["id"], executionDetails={
    "summary": "invalidated " + inv["Invalidation"]["Id"], "percentComplete": 100})
print("reported success")
PYEOF
cat > "$tmp/silent.py" <<'PYEOF'
import sys
print("about to give up: SILENT-HANDLER-MARKER", file=sys.stderr)
sys.exit(0)
PYEOF

# the build itself: container credentials scoped to its pipeline's bucket
cat > "$tmp/creds.py" <<'PYEOF'
import os, boto3, botocore
from botocore.config import Config
me = os.environ["CODEBUILD_BUILD_ID"].split(":")[0]
other = "silent" if me == "good" else "good"
assert "AWS_ACCESS_KEY_ID" not in os.environ, "a key in the build's environment"
assert os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"].startswith("http://127.0.0.1:")
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"], region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}))
s3.put_object(Bucket=me, Key="build-probe.txt", Body=b"x")
try:
    s3.put_object(Bucket=other, Key="build-probe.txt", Body=b"x")
    print("OTHER-BUCKET-WRITABLE")
except botocore.exceptions.ClientError as e:
    print("other bucket:", e.response["Error"]["Code"])
print("BUILD-CREDS-OK")
PYEOF
(cd "$repo" && sed -i "s|      - ./build.sh|      - $PY $tmp/creds.py\n      - ./build.sh|" buildspec.yml && git commit -qam "probe credentials")

cat > "$repo/pier.yml" <<YML
pipelines:
  - name: good
    source: {repo: ., branch: develop, paths: ["frontend/**"]}
    cdn: {distribution: EGOOD00000001, host: good.localhost}
    actions:
      - {name: invalidate-and-report, command: "$PY $tmp/ok.py", user-parameters: EGOOD00000001, timeout: 60s}
  - name: silent
    source: {repo: ., branch: develop, paths: ["frontend/**"]}
    actions:
      - {name: never-reports, command: "$PY $tmp/silent.py", timeout: 60s}
YML
(cd "$repo" && git add pier.yml && git commit -qm "actions")

stage() { # pipeline stage -> "status|message" of the newest run
  "$PIER" status "$1" --dir "$repo" --json --limit 1 | $PY -c '
import json,sys
r=json.load(sys.stdin)["runs"][0]
s=[s for s in r["stages"] if s["name"]==sys.argv[1]][0]
print(r["status"]+"|"+s["status"]+"|"+(s.get("message") or ""))' "$2"; }

out=$("$PIER" run good --dir "$repo" --wait 2>&1) || fail "pier run good: $out"
echo "$out" | grep -q "Succeeded" || fail "good run: $out"
st=$(stage good actions)
[ "${st%%|*}" = Succeeded ] || fail "good: run $st"
st=${st#*|}; [ "${st%%|*}" = Succeeded ] || fail "good: actions stage $st"
grep -q "reported success" "$repo"/.pier/logs/*.log || fail "handler output not in the run log"
grep -q "invalidated I" "$repo"/.pier/logs/*.log || fail "no invalidation summary in the run log"
ls "$repo/.pier/stack/cloudfront/EGOOD00000001.json" >/dev/null 2>&1 || fail "the handler's invalidation was not recorded"
echo "ok: boto3 handler invalidated and reported success"
grep -q BUILD-CREDS-OK "$repo"/.pier/logs/1.log || fail "the build could not use its container credentials"
grep -q "other bucket: AccessDenied" "$repo"/.pier/logs/1.log || fail "the build's credentials reach another pipeline's bucket"
grep -q OTHER-BUCKET-WRITABLE "$repo"/.pier/logs/*.log && fail "another pipeline's bucket was writable"
echo "ok: the build signs with scoped container credentials"

out=$("$PIER" run silent --dir "$repo" --wait 2>&1) && fail "silent run exited 0: $out"
st=$(stage silent actions)
[ "${st%%|*}" = Failed ] || fail "silent: run $st"
st=${st#*|}; [ "${st%%|*}" = Failed ] || fail "silent: actions stage $st"
echo "$st" | grep -q SILENT-HANDLER-MARKER || fail "stderr tail not in the stage message: $st"
echo "ok: a handler that exits without reporting fails with its stderr"

# no key in the work directory or the logs: only the container endpoint
grep -rq "aws_secret_access_key" "$repo/.pier/logs" && fail "a secret key in the logs"
echo "ok: all"
