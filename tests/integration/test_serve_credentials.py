#!/usr/bin/python3
"""pier serve's credentials endpoint with boto3: a grant made through the
admin API (SigV4-signed with the administrator key), credentials fetched
from the container endpoint (wrong or missing token refused), and boto3
using them, both as static keys and through its default chain
(AWS_CONTAINER_CREDENTIALS_FULL_URI + AWS_CONTAINER_AUTHORIZATION_TOKEN):
writes to the granted bucket and prefix work; other buckets, prefixes,
actions and distributions get AccessDenied with nothing written; an expired
or revoked grant's key gets ExpiredToken."""
import configparser
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import boto3
import botocore
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

for v in ("AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE",
          "SSL_CERT_DIR", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
          "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
          "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN"):
    os.environ.pop(v, None)

PIER = os.environ["PIER"]
TMP = tempfile.mkdtemp(prefix="pier-creds-test-")
os.environ["AWS_CONFIG_FILE"] = os.path.join(TMP, "aws-config")
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.path.join(TMP, "no-credentials")
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
open(os.environ["AWS_CONFIG_FILE"], "w").close()

passed = failed = 0


def check(what, cond):
    global passed, failed
    if cond:
        passed += 1
        print("ok -", what)
    else:
        failed += 1
        print("FAIL -", what, file=sys.stderr)


def error_code(fn):
    """The AWS error code fn raises, or None."""
    try:
        fn()
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"]
    return None


with open(os.path.join(TMP, "stack.yml"), "w") as f:
    f.write("""buckets:
  - name: web-dev
  - name: prod
distributions:
  - {id: EDEV0000000001, host: web-dev.localhost, bucket: web-dev}
  - {id: EPROD000000001, host: prod.localhost, bucket: prod}
""")

out = open(os.path.join(TMP, "serve.out"), "w+")
err = open(os.path.join(TMP, "serve.err"), "w+")
proc = subprocess.Popen([PIER, "serve", "--data", os.path.join(TMP, "data"), "--api-listen",
                         "127.0.0.1:0", "--no-edge", "--config", os.path.join(TMP, "stack.yml")],
                        stdout=out, stderr=err)
try:
    url = None
    for _ in range(100):
        out.seek(0)
        for line in out:
            if line.startswith("s3 api: "):
                url = line.split()[2]
        if url or proc.poll() is not None:
            break
        time.sleep(0.1)
    if not url:
        err.seek(0)
        sys.exit("pier serve did not start: " + err.read())

    ini = configparser.ConfigParser()
    ini.read(os.path.join(TMP, "data", "credentials"))
    admin = Credentials(ini["pier"]["aws_access_key_id"], ini["pier"]["aws_secret_access_key"])

    def client(service, creds):
        return boto3.client(service, endpoint_url=url, region_name="us-east-1",
                            aws_access_key_id=creds["AccessKeyId"],
                            aws_secret_access_key=creds["SecretAccessKey"],
                            aws_session_token=creds.get("Token"),
                            config=Config(retries={"max_attempts": 1}))

    admin_s3 = client("s3", {"AccessKeyId": admin.access_key, "SecretAccessKey": admin.secret_key})

    def admin_call(method, path, body=None, creds=admin):
        data = json.dumps(body).encode() if body is not None else b""
        req = AWSRequest(method=method, url=url + path, data=data,
                         headers={"Content-Type": "application/json"})
        SigV4Auth(creds, "pier", "us-east-1").add_auth(req)
        r = urllib.request.Request(url + path, data=data if method != "GET" else None,
                                   method=method, headers=dict(req.headers.items()))
        try:
            with urllib.request.urlopen(r) as resp:
                text = resp.read()
                return resp.status, json.loads(text) if text else None
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def fetch(uri, token):
        r = urllib.request.Request(uri, headers={"Authorization": token} if token else {})
        try:
            with urllib.request.urlopen(r) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as e:
            return e.code, None

    # a grant through the admin API
    st, grant = admin_call("POST", "/_pier/grants", {
        "name": "build-1",
        "buckets": ["web-dev"],
        "distributions": ["EDEV0000000001"],
        "actions": ["s3:PutObject", "s3:GetObject", "s3:ListBucket",
                    "cloudfront:CreateInvalidation", "cloudfront:GetInvalidation"],
        "ttl_seconds": 900})
    check("admin API makes a grant (201)", st == 201 and grant["uri"].startswith(url))
    st, _ = admin_call("POST", "/_pier/grants", {"buckets": ["web-dev"]},
                       creds=Credentials(admin.access_key, "wrong-secret"))
    check("grants API refuses a bad signature (%d)" % st, st == 403)

    # the container endpoint
    check("no token: 401", fetch(grant["uri"], None)[0] == 401)
    check("wrong token: 403", fetch(grant["uri"], "x" * 64)[0] == 403)
    st, creds = fetch(grant["uri"], grant["token"])
    check("token: 200 with credentials", st == 200 and creds["AccessKeyId"].startswith("ASIA")
          and len(creds["AccessKeyId"]) == 20 and creds["Token"] and creds["Expiration"])
    st, again = fetch(grant["uri"], grant["token"])
    check("a second fetch gives the same session", again["AccessKeyId"] == creds["AccessKeyId"])

    s3 = client("s3", creds)
    s3.put_object(Bucket="web-dev", Key="site/index.html", Body=b"hello")
    check("session key: put to the granted bucket",
          admin_s3.get_object(Bucket="web-dev", Key="site/index.html")["Body"].read() == b"hello")
    check("session key: get and list",
          s3.get_object(Bucket="web-dev", Key="site/index.html")["Body"].read() == b"hello"
          and s3.list_objects_v2(Bucket="web-dev")["KeyCount"] == 1)
    code = error_code(lambda: s3.put_object(Bucket="prod", Key="x.html", Body=b"no"))
    check("session key: other bucket AccessDenied (%s)" % code, code == "AccessDenied")
    code = error_code(lambda: admin_s3.head_object(Bucket="prod", Key="x.html"))
    check("... and nothing was written", code in ("404", "NoSuchKey"))
    code = error_code(lambda: s3.delete_object(Bucket="web-dev", Key="site/index.html"))
    check("session key: ungranted action AccessDenied (%s)" % code, code == "AccessDenied")
    check("... and the object is still there",
          admin_s3.head_object(Bucket="web-dev", Key="site/index.html")["ContentLength"] == 5)
    # multipart (big enough for the SDK's default threshold is not needed: by hand)
    up = s3.create_multipart_upload(Bucket="web-dev", Key="big.bin")
    code = error_code(lambda: s3.create_multipart_upload(Bucket="prod", Key="big.bin"))
    check("multipart to another bucket refused (%s)" % code, code == "AccessDenied")
    part = s3.upload_part(Bucket="web-dev", Key="big.bin", UploadId=up["UploadId"], PartNumber=1,
                          Body=b"x" * 1000)
    s3.complete_multipart_upload(Bucket="web-dev", Key="big.bin", UploadId=up["UploadId"],
                                 MultipartUpload={"Parts": [{"PartNumber": 1,
                                                             "ETag": part["ETag"]}]})
    check("multipart in the granted bucket",
          admin_s3.head_object(Bucket="web-dev", Key="big.bin")["ContentLength"] == 1000)

    cf = client("cloudfront", creds)
    batch = {"Paths": {"Quantity": 1, "Items": ["/*"]}, "CallerReference": "r1"}
    inv = cf.create_invalidation(DistributionId="EDEV0000000001", InvalidationBatch=batch)
    check("session key: invalidation on the granted distribution",
          inv["Invalidation"]["Status"] in ("InProgress", "Completed"))
    code = error_code(lambda: cf.create_invalidation(DistributionId="EPROD000000001",
                                                     InvalidationBatch=batch))
    check("other distribution AccessDenied (%s)" % code, code == "AccessDenied")
    code = error_code(lambda: cf.list_invalidations(DistributionId="EDEV0000000001"))
    check("ungranted cloudfront action AccessDenied (%s)" % code, code == "AccessDenied")
    st, _ = admin_call("POST", "/_pier/grants", {"buckets": ["prod"]},
                       creds=Credentials(creds["AccessKeyId"], creds["SecretAccessKey"],
                                         creds["Token"]))
    check("a session key cannot make grants (%d)" % st, st == 403)

    # the default credential chain, from the environment alone
    os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = grant["uri"]
    os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = grant["token"]
    session = boto3.session.Session(region_name="us-east-1")
    resolved = session.get_credentials()
    check("boto3's default chain uses the container provider (%s)" % resolved.method,
          resolved.method == "container-role")
    chain_s3 = session.client("s3", endpoint_url=url)
    chain_s3.put_object(Bucket="web-dev", Key="site/chain.txt", Body=b"via chain")
    check("put through the default chain",
          admin_s3.get_object(Bucket="web-dev", Key="site/chain.txt")["Body"].read()
          == b"via chain")
    code = error_code(lambda: chain_s3.put_object(Bucket="prod", Key="c", Body=b"x"))
    check("default chain: other bucket AccessDenied (%s)" % code, code == "AccessDenied")
    del os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
    del os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"]

    # a grant limited to a prefix
    st, pg = admin_call("POST", "/_pier/grants", {"buckets": ["web-dev/builds/7/"],
                                                  "actions": ["s3:*"]})
    pc = client("s3", fetch(pg["uri"], pg["token"])[1])
    pc.put_object(Bucket="web-dev", Key="builds/7/app.js", Body=b"ok")
    code = error_code(lambda: pc.put_object(Bucket="web-dev", Key="builds/8/app.js", Body=b"x"))
    check("prefix grant: outside the prefix AccessDenied (%s)" % code, code == "AccessDenied")

    # expiry and revocation
    st, short = admin_call("POST", "/_pier/grants", {"buckets": ["web-dev"], "ttl_seconds": 2})
    sc = fetch(short["uri"], short["token"])[1]
    expires = time.mktime(time.strptime(sc["Expiration"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    check("a 2 s grant gives a 2 s credential", abs(expires - (time.time() + 2)) <= 2)
    time.sleep(3)
    code = error_code(lambda: client("s3", sc).put_object(Bucket="web-dev", Key="late",
                                                          Body=b"x"))
    check("expired session key: ExpiredToken (%s)" % code, code == "ExpiredToken")
    check("expired grant: the endpoint refuses (403)", fetch(short["uri"], short["token"])[0] == 403)
    code = error_code(lambda: admin_s3.head_object(Bucket="web-dev", Key="late"))
    check("... and nothing was written", code in ("404", "NoSuchKey"))
    st, _ = admin_call("DELETE", "/_pier/grants/" + grant["id"])
    check("revoke a grant (204)", st == 204)
    code = error_code(lambda: s3.put_object(Bucket="web-dev", Key="after", Body=b"x"))
    check("revoked grant's key: ExpiredToken (%s)" % code, code == "ExpiredToken")
    check("revoked grant: the endpoint refuses", fetch(grant["uri"], grant["token"])[0] == 403)
finally:
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=30)
    if rc != 0:
        failed += 1
        err.seek(0)
        print("FAIL - pier serve exited with %d\n%s" % (rc, err.read()[-3000:]), file=sys.stderr)
    shutil.rmtree(TMP, ignore_errors=True)

print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
