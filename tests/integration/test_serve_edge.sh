#!/usr/bin/env bash
# pier serve's edge and CloudFront API against real clients: a site uploaded
# with the AWS CLI, served by Host name with X-Cache Miss then Hit and Age,
# stale after a change until `aws cloudfront create-invalidation`, then
# fresh; get/list-invalidations (also after a restart); CallerReference
# idempotency through boto3; the rules (storybook rewrite, directory index,
# SPA fallback, custom 404, redirect, headers); 304, Range, HEAD.
set -uo pipefail
. "$(dirname "$0")/serve_lib.sh"

DIST=EDEV0000000001
HOSTNAME_=web-dev.localhost
cat >"$TMP/stack.yml" <<'EOF'
buckets:
  - name: web-dev
distributions:
  - id: EDEV0000000001
    host: web-dev.localhost
    bucket: web-dev
    rules:
      spa-fallback: /index.html
      not-found: /404.html
      rewrites:
        - {from: /storybook, to: /storybook/index.html}
      redirects:
        - {from: /old-page, to: /docs/, status: 301}
      headers:
        - match: "**"
          set: {X-Frame-Options: DENY}
EOF

start_serve --edge-listen 127.0.0.1:0 --config "$TMP/stack.yml"
EDGE=$(sed -n 's/^edge: \(http:[^ ]*\).*/\1/p' "$TMP/serve.out")
check "serve printed the edge URL ($EDGE)" test -n "$EDGE"
check "serve printed the site URL" grep -q "^site $DIST: http://$HOSTNAME_:" "$TMP/serve.out"

cf() { aws --endpoint-url "$URL" --output json cloudfront "$@"; }
s3q() { aws --endpoint-url "$URL" s3 "$@" --only-show-errors; }
get() { curl -s -H "Host: $HOSTNAME_" "$@"; }
jq_py() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
header() { # header NAME < response head
    tr -d '\r' | sed -n "s/^$1: //Ip" | head -1
}

site=$TMP/site
mkdir -p "$site/storybook" "$site/docs" "$site/assets"
echo '<h1>home v1</h1>' >"$site/index.html"
echo '<h1>not found</h1>' >"$site/404.html"
echo '<h1>stories</h1>' >"$site/storybook/index.html"
echo '<h1>docs</h1>' >"$site/docs/index.html"
echo 'console.log(1)' >"$site/assets/app.js"
head -c 5000 /dev/urandom >"$site/assets/data.bin"
check "upload the site (aws s3 sync)" s3q sync "$site" s3://web-dev/

# served, then cached
get -D "$TMP/h1" -o "$TMP/b1" "$EDGE/"
check "/ serves index.html" grep -q 'home v1' "$TMP/b1"
check "first GET: X-Cache Miss" test "$(header X-Cache <"$TMP/h1")" = "Miss from pier"
sleep 1.1
get -D "$TMP/h2" -o /dev/null "$EDGE/"
check "second GET: X-Cache Hit" test "$(header X-Cache <"$TMP/h2")" = "Hit from pier"
age=$(header Age <"$TMP/h2")
check "a hit carries Age ($age)" test "${age:-0}" -ge 1
check "header rule applied" test "$(header X-Frame-Options <"$TMP/h2")" = "DENY"

# changed at the origin, not invalidated: stale, as a CDN serves it
echo '<h1>home v2</h1>' >"$site/index.html"
s3q cp "$site/index.html" s3://web-dev/index.html
check "changed object still served stale" bash -c "curl -s -H 'Host: $HOSTNAME_' '$EDGE/' | grep -q 'home v1'"

cf create-invalidation --distribution-id "$DIST" --paths /index.html >"$TMP/inv.json"
check "create-invalidation answers" grep -q '"Id"' "$TMP/inv.json"
inv=$(jq_py 'd["Invalidation"]["Id"]' <"$TMP/inv.json")
loc=$(jq_py 'd["Location"]' <"$TMP/inv.json")
check "Location names the invalidation ($loc)" bash -c "[[ '$loc' == */2020-05-31/distribution/$DIST/invalidation/$inv ]]"
check "after the invalidation: new content" bash -c "curl -s -H 'Host: $HOSTNAME_' '$EDGE/' | grep -q 'home v2'"
st=$(cf get-invalidation --distribution-id "$DIST" --id "$inv" | jq_py 'd["Invalidation"]["Status"]')
check "get-invalidation: Completed ($st)" test "$st" = Completed
check "aws cloudfront wait invalidation-completed" \
    aws --endpoint-url "$URL" cloudfront wait invalidation-completed --distribution-id "$DIST" --id "$inv"
cf list-invalidations --distribution-id "$DIST" >"$TMP/list.json"
check "list-invalidations has it" grep -q "\"$inv\"" "$TMP/list.json"
if cf get-invalidation --distribution-id "$DIST" --id INOSUCH000000 2>"$TMP/e1"; then
    fail "unknown invalidation accepted"
else check "NoSuchInvalidation" grep -q NoSuchInvalidation "$TMP/e1"; fi
if cf create-invalidation --distribution-id ENOSUCH0000001 --paths '/*' 2>"$TMP/e2"; then
    fail "unknown distribution accepted"
else check "NoSuchDistribution" grep -q NoSuchDistribution "$TMP/e2"; fi
if cf create-invalidation --distribution-id "$DIST" --paths 'no-slash' 2>"$TMP/e3"; then
    fail "bad path accepted"
else check "InvalidArgument for a path without /" grep -q InvalidArgument "$TMP/e3"; fi
code=$(curl -s -o "$TMP/e4" -w '%{http_code}' -X POST -d '<x/>' "$URL/2020-05-31/distribution/$DIST/invalidation")
check "unsigned create-invalidation: 403 AccessDenied ($code)" bash -c "[ $code = 403 ] && grep -q AccessDenied '$TMP/e4'"
check "get-distribution" bash -c "aws --endpoint-url $URL --output json cloudfront get-distribution --id $DIST | grep -q '\"DomainName\": \"$HOSTNAME_\"'"
check "list-distributions" bash -c "aws --endpoint-url $URL --output json cloudfront list-distributions | grep -q '\"Id\": \"$DIST\"'"

# CallerReference idempotency through boto3
cat >"$TMP/idem.py" <<'EOF'
import sys, boto3, botocore
url, dist = sys.argv[1], sys.argv[2]
cf = boto3.client("cloudfront", endpoint_url=url, region_name="us-east-1")
def batch(paths, ref):
    return {"Paths": {"Quantity": len(paths), "Items": paths}, "CallerReference": ref}
a = cf.create_invalidation(DistributionId=dist, InvalidationBatch=batch(["/a", "/b/*"], "run-42"))
b = cf.create_invalidation(DistributionId=dist, InvalidationBatch=batch(["/a", "/b/*"], "run-42"))
assert a["Invalidation"]["Id"] == b["Invalidation"]["Id"], (a, b)
assert b["ResponseMetadata"]["HTTPStatusCode"] == 201
try:
    cf.create_invalidation(DistributionId=dist, InvalidationBatch=batch(["/c"], "run-42"))
    sys.exit("a reused CallerReference with other paths was accepted")
except botocore.exceptions.ClientError as e:
    assert e.response["Error"]["Code"] == "InvalidationBatchAlreadyExists", e.response
    assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 409
# pagination: MaxItems 1 walks every invalidation, newest first
ids, marker = [], ""
while True:
    kw = {"DistributionId": dist, "MaxItems": "1"}
    if marker:
        kw["Marker"] = marker
    page = cf.list_invalidations(**kw)["InvalidationList"]
    ids += [i["Id"] for i in page.get("Items", [])]
    if not page["IsTruncated"]:
        break
    marker = page["NextMarker"]
assert ids[0] == a["Invalidation"]["Id"] and len(ids) == len(set(ids)) == 2, ids
print(a["Invalidation"]["Id"])
EOF
check "boto3: same CallerReference -> same invalidation; other paths -> InvalidationBatchAlreadyExists" \
    /usr/bin/python3 "$TMP/idem.py" "$URL" "$DIST"

# the rules
check "/storybook serves storybook/index.html" bash -c "curl -s -H 'Host: $HOSTNAME_' '$EDGE/storybook' | grep -q stories"
check "/storybook/ serves storybook/index.html" bash -c "curl -s -H 'Host: $HOSTNAME_' '$EDGE/storybook/' | grep -q stories"
check "directory index /docs/" bash -c "curl -s -H 'Host: $HOSTNAME_' '$EDGE/docs/' | grep -q docs"
code=$(get -o "$TMP/spa" -w '%{http_code}' "$EDGE/app/settings")
check "SPA fallback: 200 with index.html ($code)" bash -c "[ $code = 200 ] && grep -q 'home v2' '$TMP/spa'"
code=$(get -o "$TMP/nf" -w '%{http_code}' "$EDGE/missing.png")
check "custom 404 page with status 404 ($code)" bash -c "[ $code = 404 ] && grep -q 'not found' '$TMP/nf'"
get -D "$TMP/h3" -o /dev/null "$EDGE/old-page?ref=x"
check "redirect 301 with Location" bash -c "head -1 '$TMP/h3' | grep -q ' 301' && grep -qi '^Location: /docs/?ref=x' '$TMP/h3'"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: nobody.localhost' "$EDGE/")
check "unknown host: 404 ($code)" test "$code" = 404

# validators, ranges, HEAD
get -D "$TMP/h4" -o /dev/null "$EDGE/assets/app.js"
etag=$(header ETag <"$TMP/h4")
code=$(get -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$EDGE/assets/app.js")
check "If-None-Match: 304 ($code)" test "$code" = 304
code=$(get -o "$TMP/range" -w '%{http_code}' -H 'Range: bytes=100-199' "$EDGE/assets/data.bin")
check "Range: 206 ($code)" test "$code" = 206
check "Range: the right 100 bytes" cmp "$TMP/range" <(tail -c +101 "$site/assets/data.bin" | head -c 100)
code=$(get -o /dev/null -w '%{http_code}' -H 'Range: bytes=9000-' "$EDGE/assets/data.bin")
check "unsatisfiable Range: 416 ($code)" test "$code" = 416
get -I "$EDGE/assets/data.bin" >"$TMP/h5"
check "HEAD: 200 with Content-Length 5000" bash -c "head -1 '$TMP/h5' | grep -q ' 200' && grep -qi '^Content-Length: 5000' '$TMP/h5'"
check "GET body matches the upload" cmp <(get "$EDGE/assets/data.bin") "$site/assets/data.bin"

# invalidations survive a restart
stop_serve
start_serve --edge-listen 127.0.0.1:0 --config "$TMP/stack.yml"
n=$(cf list-invalidations --distribution-id "$DIST" | /usr/bin/python3 -c "import json,sys; print(len(json.load(sys.stdin)['InvalidationList'].get('Items', [])))")
check "list-invalidations after a restart: 2 ($n)" test "$n" = 2
check "get-invalidation after a restart" bash -c "aws --endpoint-url $URL cloudfront get-invalidation --distribution-id $DIST --id $inv | grep -q Completed"
finish
