#!/usr/bin/env bash
# pier serve against s3cmd and rclone: sync a tree up and down with each and
# compare byte for byte.
set -uo pipefail
. "$(dirname "$0")/serve_lib.sh"
start_serve

akid=$(sed -n 's/^aws_access_key_id = //p' "$DATA/credentials")
secret=$(sed -n 's/^aws_secret_access_key = //p' "$DATA/credentials")
hostport=${URL#http://}

src=$TMP/src
mkdir -p "$src/css" "$src/deep/er/est" "$src/sp ace"
echo '<html>home</html>' >"$src/index.html"
echo 'body{}' >"$src/css/site.css"
echo deep >"$src/deep/er/est/file.txt"
echo 'plus&amp' >"$src/sp ace/a+b=c.txt"
head -c 300000 /dev/urandom >"$src/deep/blob.bin"
head -c $((17 * 1024 * 1024)) /dev/urandom >"$src/large.bin"
: >"$src/empty.txt"

# ---- s3cmd ----
cat >"$TMP/s3cfg" <<CFG
[default]
access_key = $akid
secret_key = $secret
host_base = $hostport
host_bucket = $hostport
use_https = False
signature_v2 = False
bucket_location = us-east-1
check_ssl_certificate = False
multipart_chunk_size_mb = 5
CFG
s3c() { s3cmd -c "$TMP/s3cfg" --no-progress "$@"; }
check "s3cmd mb" s3c mb s3://s3cmd-bkt
check "s3cmd sync up" s3c -q sync "$src/" s3://s3cmd-bkt/site/
n=$(s3c ls -r s3://s3cmd-bkt/site/ | wc -l)
check "s3cmd ls -r shows 7 objects (got $n)" test "$n" -eq 7
check "s3cmd sync down" s3c -q sync s3://s3cmd-bkt/site/ "$TMP/s3cmd-down/"
check "s3cmd round trip is byte-identical" diff -r "$src" "$TMP/s3cmd-down"
check "s3cmd info" bash -c "s3cmd -c '$TMP/s3cfg' info s3://s3cmd-bkt/site/index.html | grep -q 'MD5 sum'"
check "s3cmd get" s3c -q get s3://s3cmd-bkt/site/css/site.css "$TMP/site.css"
check "s3cmd get content" cmp "$src/css/site.css" "$TMP/site.css"
check "s3cmd del" s3c -q del s3://s3cmd-bkt/site/css/site.css
n=$(s3c ls -r s3://s3cmd-bkt/site/ | wc -l)
check "s3cmd del removed one (got $n)" test "$n" -eq 6

# s3cmd with the legacy signature (Signature Version 2)
sed 's/^signature_v2 = False/signature_v2 = True/' "$TMP/s3cfg" >"$TMP/s3cfg-v2"
check "s3cmd (sigv2) put" s3cmd -c "$TMP/s3cfg-v2" --no-progress -q put "$src/index.html" s3://s3cmd-bkt/v2/index.html
check "s3cmd (sigv2) get" s3cmd -c "$TMP/s3cfg-v2" --no-progress -q get s3://s3cmd-bkt/v2/index.html "$TMP/v2.html"
check "s3cmd (sigv2) round trip" cmp "$src/index.html" "$TMP/v2.html"
check "s3cmd (sigv2) ls" bash -c "s3cmd -c '$TMP/s3cfg-v2' ls s3://s3cmd-bkt/v2/ | grep -q index.html"

# ---- rclone ----
export RCLONE_CONFIG_PIER_TYPE=s3 RCLONE_CONFIG_PIER_PROVIDER=Other
export RCLONE_CONFIG_PIER_ACCESS_KEY_ID=$akid RCLONE_CONFIG_PIER_SECRET_ACCESS_KEY=$secret
export RCLONE_CONFIG_PIER_ENDPOINT=$URL RCLONE_CONFIG_PIER_REGION=us-east-1
export RCLONE_CONFIG_PIER_FORCE_PATH_STYLE=true
export RCLONE_CONFIG=$TMP/rclone.conf
: >"$RCLONE_CONFIG"
rc() { rclone --retries 1 --low-level-retries 1 --s3-upload-cutoff 8M --s3-chunk-size 5M "$@"; }
check "rclone mkdir" rc mkdir pier:rclone-bkt
check "rclone sync up" rc sync "$src" pier:rclone-bkt/site
check "rclone check" rc check "$src" pier:rclone-bkt/site
check "rclone sync down" rc sync pier:rclone-bkt/site "$TMP/rclone-down"
check "rclone round trip is byte-identical" diff -r "$src" "$TMP/rclone-down"
n=$(rc lsf -R --files-only pier:rclone-bkt/site | wc -l)
check "rclone lsf shows 7 files (got $n)" test "$n" -eq 7
rm "$src/deep/blob.bin"
check "rclone sync deletes" rc sync "$src" pier:rclone-bkt/site
n=$(rc lsf -R --files-only pier:rclone-bkt/site | wc -l)
check "rclone sync removed one (got $n)" test "$n" -eq 6
finish
