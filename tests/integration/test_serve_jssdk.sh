#!/usr/bin/env bash
# The AWS SDK for JavaScript v3 against pier serve, with credentials from the
# stack's container-credentials endpoint through the SDK's default chain: a
# grant made with `curl --aws-sigv4` (the administrator key), then
# serve_jssdk.cjs: put/get/list/delete, a 50 MiB lib-storage multipart
# upload with the SDK's default checksums, and a refused out-of-scope put.
set -uo pipefail
. "$(dirname "$0")/serve_lib.sh"
NODE_MODULES="$PIER_SRC/tests/node/node_modules"
if [ ! -d "$NODE_MODULES/@aws-sdk/client-s3" ] || [ ! -d "$NODE_MODULES/@aws-sdk/lib-storage" ]; then
    echo "FAIL - run 'npm ci' in tests/node (needs @aws-sdk/client-s3 and @aws-sdk/lib-storage)" >&2
    exit 1
fi
start_serve --no-edge
aws --endpoint-url "$URL" s3 mb s3://js-site >/dev/null
aws --endpoint-url "$URL" s3 mb s3://js-other >/dev/null

akid=$(sed -n 's/^aws_access_key_id = //p' "$DATA/credentials")
secret=$(sed -n 's/^aws_secret_access_key = //p' "$DATA/credentials")
code=$(curl -s -o "$TMP/grant.json" -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:pier" \
    --user "$akid:$secret" -H 'Content-Type: application/json' \
    -d '{"name": "jssdk", "buckets": ["js-site"], "ttl_seconds": 900}' "$URL/_pier/grants")
check "grant via curl --aws-sigv4 (201, got $code)" test "$code" = 201
uri=$(/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["uri"])' <"$TMP/grant.json")
token=$(/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])' <"$TMP/grant.json")

# only the container provider may supply credentials
if env -u AWS_PROFILE -u AWS_SHARED_CREDENTIALS_FILE \
    AWS_SHARED_CREDENTIALS_FILE="$TMP/none" AWS_CONFIG_FILE="$TMP/none" \
    AWS_EC2_METADATA_DISABLED=true \
    AWS_CONTAINER_CREDENTIALS_FULL_URI="$uri" AWS_CONTAINER_AUTHORIZATION_TOKEN="$token" \
    NODE_PATH="$NODE_MODULES" PIER_S3_ENDPOINT="$URL" PIER_BUCKET=js-site PIER_OTHER_BUCKET=js-other \
    node "$(dirname "$0")/serve_jssdk.cjs"; then
    ok "JavaScript SDK v3 with container credentials"
else
    fail "JavaScript SDK v3 with container credentials"
fi
n=$(aws --endpoint-url "$URL" s3 ls s3://js-other/ | wc -l)
check "nothing was written to the other bucket" test "$n" -eq 0
size=$(aws --endpoint-url "$URL" s3api head-object --bucket js-site --key js/big.bin --query ContentLength)
check "the 50 MiB object is there ($size)" test "$size" = 52428800
finish
