#!/usr/bin/env bash
# pier serve against the AWS CLI: buckets, cp/sync/ls/rm, s3api calls,
# a multipart upload by `aws s3 cp` (> 8 MiB) and one by hand.
set -uo pipefail
. "$(dirname "$0")/serve_lib.sh"
start_serve

s3() { aws --endpoint-url "$URL" s3 "$@"; }
s3q() { aws --endpoint-url "$URL" s3 "$@" --only-show-errors; }
api() { aws --endpoint-url "$URL" --output json s3api "$@"; }
jq_py() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

check "the default bucket exists" bash -c "aws --endpoint-url $URL s3 ls | grep -q ' site$'"
check "mb" s3 mb s3://files
if s3 mb s3://files 2>"$TMP/mb.err"; then fail "mb twice must fail"; else
    check "mb twice: BucketAlreadyOwnedByYou" grep -q BucketAlreadyOwnedByYou "$TMP/mb.err"; fi
if s3 mb s3://Bad_Name 2>/dev/null; then fail "bad bucket name accepted"; else ok "bad bucket name refused"; fi

# a tree with awkward names
src=$TMP/src
mkdir -p "$src/a/b" "$src/with space" "$src/ünï"
echo one >"$src/index.html"
echo two >"$src/a/b/c.txt"
echo three >"$src/with space/f+g&h=i.txt"
echo four >"$src/ünï/x.css"
head -c 100000 /dev/urandom >"$src/a/bin.dat"
: >"$src/empty"
check "sync up" s3q sync "$src" s3://files/tree/
n=$(aws --endpoint-url "$URL" s3 ls --recursive s3://files/tree/ | wc -l)
check "ls --recursive lists 6 objects (got $n)" test "$n" -eq 6
check "sync down" s3q sync s3://files/tree/ "$TMP/down"
check "sync round trip is byte-identical" diff -r "$src" "$TMP/down"
check "second sync uploads nothing" bash -c "[ -z \"\$(aws --endpoint-url $URL s3 sync '$src' s3://files/tree/)\" ]"
rm "$src/a/bin.dat"
check "sync --delete" s3q sync --delete "$src" s3://files/tree/
n=$(aws --endpoint-url "$URL" s3 ls --recursive s3://files/tree/ | wc -l)
check "sync --delete removed one (got $n)" test "$n" -eq 5
aws --endpoint-url "$URL" s3 ls s3://files/tree/ >"$TMP/ls"
check "ls shows prefixes" grep -q "PRE a/" "$TMP/ls"

# multipart through aws s3 cp (> 8 MiB threshold)
head -c $((9 * 1024 * 1024 + 12345)) /dev/urandom >"$TMP/big.bin"
check "cp big up" s3q cp "$TMP/big.bin" s3://files/big.bin
check "cp big down" s3q cp s3://files/big.bin "$TMP/big.out"
check "big round trip" cmp "$TMP/big.bin" "$TMP/big.out"
etag=$(api head-object --bucket files --key big.bin | jq_py 'd["ETag"]')
check "big object has a multipart ETag ($etag)" bash -c "[[ '$etag' == *-2\\\" ]]"

# s3api calls
echo '<h1>hi</h1>' >"$TMP/page.html"
check "put-object with metadata" api put-object --bucket files --key docs/page.html \
    --body "$TMP/page.html" --content-type "text/html; charset=utf-8" \
    --cache-control "max-age=60" --metadata color=blue,size=xl >/dev/null
api head-object --bucket files --key docs/page.html >"$TMP/head.json"
check "head-object content type" bash -c "jq_py() { /usr/bin/python3 -c \"import json,sys; d=json.load(sys.stdin); print(\$1)\"; }; [ \"\$(jq_py 'd[\"ContentType\"]' <'$TMP/head.json')\" = 'text/html; charset=utf-8' ]"
check "head-object cache control" grep -q '"CacheControl": "max-age=60"' "$TMP/head.json"
check "head-object metadata" grep -q '"color": "blue"' "$TMP/head.json"
check "head-object size" grep -q '"ContentLength": 12' "$TMP/head.json"
api get-object --bucket files --key docs/page.html --range bytes=1-2 "$TMP/range.out" >"$TMP/range.json"
check "get-object range" test "$(cat "$TMP/range.out")" = "h1"
check "get-object range Content-Range" grep -q '"ContentRange": "bytes 1-2/12"' "$TMP/range.json"
if api head-object --bucket files --key nope 2>"$TMP/nope.err" >/dev/null; then fail "head of a missing key"; else
    check "head of a missing key is 404" grep -q "404" "$TMP/nope.err"; fi
if api get-object --bucket files --key nope "$TMP/x" 2>"$TMP/nope.err" >/dev/null; then fail "get missing"; else
    check "get of a missing key is NoSuchKey" grep -q "NoSuchKey" "$TMP/nope.err"; fi

for i in 1 2 3 4 5; do echo $i >"$TMP/k$i"; api put-object --bucket files --key "list/k$i" --body "$TMP/k$i" >/dev/null; done
api put-object --bucket files --key "list/sub/x" --body "$TMP/page.html" >/dev/null
api list-objects-v2 --bucket files --prefix list/ --delimiter / --page-size 2 >"$TMP/l2.json"
keys=$(jq_py '",".join(c["Key"] for c in d.get("Contents", []))' <"$TMP/l2.json")
pfx=$(jq_py '",".join(c["Prefix"] for c in d.get("CommonPrefixes", []))' <"$TMP/l2.json")
check "list-objects-v2 paginated keys ($keys)" test "$keys" = "list/k1,list/k2,list/k3,list/k4,list/k5"
check "list-objects-v2 common prefixes ($pfx)" test "$pfx" = "list/sub/"
api list-objects --bucket files --prefix list/ --page-size 2 >"$TMP/l1.json"
n=$(jq_py 'len(d["Contents"])' <"$TMP/l1.json")
check "list-objects (v1) paginated: 6 keys (got $n)" test "$n" -eq 6

# multipart by hand
head -c $((5 * 1024 * 1024)) /dev/urandom >"$TMP/p1"
echo "tail part" >"$TMP/p2"
cat "$TMP/p1" "$TMP/p2" >"$TMP/whole"
uid=$(api create-multipart-upload --bucket files --key mp/obj --content-type application/x-test | jq_py 'd["UploadId"]')
check "create-multipart-upload" test -n "$uid"
e1=$(api upload-part --bucket files --key mp/obj --upload-id "$uid" --part-number 1 --body "$TMP/p1" | jq_py 'd["ETag"]')
e2=$(api upload-part --bucket files --key mp/obj --upload-id "$uid" --part-number 2 --body "$TMP/p2" | jq_py 'd["ETag"]')
np=$(api list-parts --bucket files --key mp/obj --upload-id "$uid" | jq_py 'len(d["Parts"])')
check "list-parts shows 2" test "$np" -eq 2
nu=$(api list-multipart-uploads --bucket files | jq_py 'len(d.get("Uploads", []))')
check "list-multipart-uploads shows it" test "$nu" -eq 1
cat >"$TMP/parts.json" <<JSON
{"Parts": [{"PartNumber": 1, "ETag": $(printf '%s' "$e1" | /usr/bin/python3 -c 'import json,sys;print(json.dumps(sys.stdin.read()))')},
           {"PartNumber": 2, "ETag": $(printf '%s' "$e2" | /usr/bin/python3 -c 'import json,sys;print(json.dumps(sys.stdin.read()))')}]}
JSON
check "complete-multipart-upload" api complete-multipart-upload --bucket files --key mp/obj \
    --upload-id "$uid" --multipart-upload "file://$TMP/parts.json" >/dev/null
api get-object --bucket files --key mp/obj "$TMP/mp.out" >"$TMP/mp.json"
check "multipart object round trip" cmp "$TMP/whole" "$TMP/mp.out"
check "multipart object keeps its content type" grep -q '"ContentType": "application/x-test"' "$TMP/mp.json"
uid2=$(api create-multipart-upload --bucket files --key mp/aborted | jq_py 'd["UploadId"]')
check "abort-multipart-upload" api abort-multipart-upload --bucket files --key mp/aborted --upload-id "$uid2"
if api list-parts --bucket files --key mp/aborted --upload-id "$uid2" 2>"$TMP/np.err" >/dev/null; then fail "aborted upload still listed"; else
    check "aborted upload: NoSuchUpload" grep -q NoSuchUpload "$TMP/np.err"; fi

# copy, delete, rb
check "s3 cp (server-side copy)" s3q cp s3://files/docs/page.html s3://files/copy/page.html
api head-object --bucket files --key copy/page.html >"$TMP/copy.json"
check "copy keeps metadata" grep -q '"color": "blue"' "$TMP/copy.json"
if s3 rb s3://files 2>"$TMP/rb.err"; then fail "rb of a full bucket"; else
    check "rb of a full bucket: BucketNotEmpty" grep -q BucketNotEmpty "$TMP/rb.err"; fi
check "rm --recursive" s3q rm --recursive s3://files/
n=$(aws --endpoint-url "$URL" s3 ls --recursive s3://files/ | wc -l)
check "bucket is empty (got $n)" test "$n" -eq 0
check "rb" s3 rb s3://files
if aws --endpoint-url "$URL" s3 ls s3://files 2>"$TMP/ls.err" >/dev/null; then fail "ls of removed bucket"; else
    check "removed bucket: NoSuchBucket" grep -q NoSuchBucket "$TMP/ls.err"; fi

# restart: objects survive, credential reused
key1=$(grep aws_access_key_id "$DATA/credentials")
echo persisted >"$TMP/keep"
api put-object --bucket site --key keep.txt --body "$TMP/keep" >/dev/null
stop_serve
start_serve
check "credential reused after restart" test "$(grep aws_access_key_id "$DATA/credentials")" = "$key1"
check "credentials file is 0600" test "$(stat -c %a "$DATA/credentials")" = 600
check "object survives restart" bash -c "aws --endpoint-url $URL s3 cp s3://site/keep.txt - | grep -q persisted"
check "health endpoint" bash -c "curl -sf $URL/_pier/health | grep -q '\"status\":\"ok\"'"
finish
