#!/usr/bin/python3
"""pier serve against boto3, plus hand-signed requests for what the SDK will
not send on purpose: a wrong secret, a tampered header, a skewed clock,
unsigned requests, aws-chunked bodies (signed chunks, unsigned trailers) and
virtual-hosted addressing."""
import base64
import configparser
import datetime
import hashlib
import hmac
import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
import warnings
import zlib

import boto3
import botocore
from botocore.config import Config

for var in ("AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_CONFIG_FILE",
            "AWS_SHARED_CREDENTIALS_FILE", "AWS_ENDPOINT_URL"):
    os.environ.pop(var, None)

SRV = {}
warnings.simplefilter("ignore", ResourceWarning)


def setUpModule():
    pier = os.environ.get("PIER")
    if not pier:
        raise unittest.SkipTest("PIER is not set")
    tmp = tempfile.mkdtemp(prefix="pier-boto3-")
    SRV["tmp"] = tmp
    SRV["log"] = open(os.path.join(tmp, "serve.err"), "w")
    proc = subprocess.Popen([pier, "serve", "--data", os.path.join(tmp, "data"),
                             "--api-listen", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=SRV["log"], text=True)
    SRV["proc"] = proc
    url = None
    deadline = time.time() + 10
    while time.time() < deadline and url is None:
        line = proc.stdout.readline()
        if not line:
            break
        m = re.search(r"http://127\.0\.0\.1:\d+", line)
        if m:
            url = m.group(0)
    if not url:
        proc.kill()
        raise RuntimeError("pier serve printed no URL")
    SRV["url"] = url
    SRV["host"] = url[len("http://"):]
    cp = configparser.ConfigParser()
    cp.read(os.path.join(tmp, "data", "credentials"))
    SRV["akid"] = cp["pier"]["aws_access_key_id"]
    SRV["secret"] = cp["pier"]["aws_secret_access_key"]


def tearDownModule():
    proc = SRV.get("proc")
    rc = 0
    if proc:
        proc.terminate()
        try:
            rc = proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = "timeout"
    if SRV.get("log"):
        SRV["log"].close()
        if rc != 0:
            with open(os.path.join(SRV["tmp"], "serve.err")) as f:
                sys.stderr.write(f.read()[-6000:])
    if SRV.get("tmp"):
        shutil.rmtree(SRV["tmp"], ignore_errors=True)
    if rc != 0:
        raise RuntimeError("pier serve exited with %s after SIGTERM" % rc)


def client(secret=None, **cfg):
    return boto3.client(
        "s3", endpoint_url=SRV["url"], region_name="us-east-1",
        aws_access_key_id=SRV["akid"], aws_secret_access_key=secret or SRV["secret"],
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                      signature_version="s3v4", **cfg))


# ---- a small SigV4 signer, independent of botocore ----

def _h(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256)


def sha256hex(data):
    return hashlib.sha256(data if isinstance(data, bytes) else data.encode()).hexdigest()


def sign(method, path, query, headers, payload_hash, when=None, secret=None):
    """Adds x-amz-date, x-amz-content-sha256 and Authorization to headers
    (a dict of lower-case names); returns (signing key, scope, signature)."""
    when = when or datetime.datetime.now(datetime.timezone.utc)
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    headers["x-amz-date"] = amz_date
    headers["x-amz-content-sha256"] = payload_hash
    q = sorted((urllib.parse.quote(k, safe="-_.~"), urllib.parse.quote(v, safe="-_.~"))
               for k, v in query)
    canon_query = "&".join("%s=%s" % kv for kv in q)
    names = sorted(headers)
    canon_headers = "".join("%s:%s\n" % (n, " ".join(str(headers[n]).split())) for n in names)
    creq = "\n".join([method, path, canon_query, canon_headers, ";".join(names), payload_hash])
    scope = "%s/us-east-1/s3/aws4_request" % date
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, sha256hex(creq)])
    k = _h(("AWS4" + (secret or SRV["secret"])).encode(), date).digest()
    for part in ("us-east-1", "s3", "aws4_request"):
        k = _h(k, part).digest()
    sig = _h(k, sts).hexdigest()
    headers["authorization"] = ("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, "
                                "Signature=%s" % (SRV["akid"], scope, ";".join(names), sig))
    return k, scope, sig, amz_date


def send(method, path, headers, body=b"", query=()):
    conn = http.client.HTTPConnection(SRV["host"], timeout=30)
    target = path + ("?" + urllib.parse.urlencode(list(query)) if query else "")
    conn.request(method, target, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, dict(resp.getheaders()), data


def error_code(data):
    m = re.search(rb"<Code>([^<]+)</Code>", data)
    return m.group(1).decode() if m else None


def chunked_signed(data, chunk, key, scope, seed, amz_date, tamper=False):
    out, prev = [], seed
    pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)] + [b""]
    for n, piece in enumerate(pieces):
        sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev, sha256hex(b""),
                         sha256hex(piece)])
        sig = _h(key, sts).hexdigest()
        prev = sig
        if tamper and n == 1:
            piece = b"X" + piece[1:]
        out.append(b"%x;chunk-signature=%s\r\n%s\r\n" % (len(piece), sig.encode(), piece))
    return b"".join(out)


class Boto3Basics(unittest.TestCase):
    def setUp(self):
        self.s3 = client()
        try:
            self.s3.create_bucket(Bucket="boto")
        except self.s3.exceptions.BucketAlreadyOwnedByYou:
            pass

    def test_put_get_head_delete(self):
        body = os.urandom(70000)
        r = self.s3.put_object(Bucket="boto", Key="a/b.bin", Body=body,
                               ContentType="application/x-thing", Metadata={"k": "v"},
                               ContentDisposition="attachment")
        self.assertEqual(r["ETag"], '"%s"' % hashlib.md5(body).hexdigest())
        g = self.s3.get_object(Bucket="boto", Key="a/b.bin")
        self.assertEqual(g["Body"].read(), body)
        self.assertEqual(g["ContentType"], "application/x-thing")
        self.assertEqual(g["Metadata"], {"k": "v"})
        self.assertEqual(g["ContentDisposition"], "attachment")
        h = self.s3.head_object(Bucket="boto", Key="a/b.bin")
        self.assertEqual(h["ContentLength"], 70000)
        r = self.s3.get_object(Bucket="boto", Key="a/b.bin", Range="bytes=-10")
        self.assertEqual(r["Body"].read(), body[-10:])
        self.assertEqual(r["ContentRange"], "bytes 69990-69999/70000")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.s3.get_object(Bucket="boto", Key="a/b.bin", Range="bytes=70000-")
        self.assertEqual(e.exception.response["Error"]["Code"], "InvalidRange")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.s3.get_object(Bucket="boto", Key="a/b.bin", IfNoneMatch=r["ETag"])
        self.assertEqual(e.exception.response["Error"]["Code"], "304")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.s3.get_object(Bucket="boto", Key="a/b.bin", IfMatch='"nope"')
        self.assertEqual(e.exception.response["Error"]["Code"], "PreconditionFailed")
        g = self.s3.get_object(Bucket="boto", Key="a/b.bin",
                               ResponseContentType="text/plain", ResponseCacheControl="no-cache")
        self.assertEqual(g["ContentType"], "text/plain")
        self.assertEqual(g["CacheControl"], "no-cache")
        self.s3.delete_object(Bucket="boto", Key="a/b.bin")
        with self.assertRaises(self.s3.exceptions.NoSuchKey):
            self.s3.get_object(Bucket="boto", Key="a/b.bin")
        self.s3.delete_object(Bucket="boto", Key="a/b.bin")  # 204 again
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.s3.head_bucket(Bucket="no-such-bucket")
        self.assertEqual(e.exception.response["Error"]["Code"], "404")

    def test_presigned_get_and_put(self):
        put_url = self.s3.generate_presigned_url(
            "put_object", Params={"Bucket": "boto", "Key": "pre/signed file.txt"}, ExpiresIn=300)
        req = urllib.request.Request(put_url, data=b"via presigned put", method="PUT")
        with urllib.request.urlopen(req) as r:
            self.assertEqual(r.status, 200)
        get_url = self.s3.generate_presigned_url(
            "get_object", Params={"Bucket": "boto", "Key": "pre/signed file.txt"}, ExpiresIn=300)
        with urllib.request.urlopen(get_url) as r:
            self.assertEqual(r.read(), b"via presigned put")
        # a changed key invalidates the signature
        bad = get_url.replace("signed%20file", "signed%20filX")
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(bad)
        self.assertEqual(e.exception.code, 403)
        self.assertEqual(error_code(e.exception.read()), "SignatureDoesNotMatch")

    def test_list_2500_keys_paginated_with_delimiter(self):
        s3 = self.s3
        s3.create_bucket(Bucket="many")
        keys = ["d%d/f%04d" % (i % 3, i) for i in range(2400)] + ["top%03d" % i for i in range(100)]
        # DeleteObjects-free fast fill: parallel puts over a few connections
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(8) as ex:
            list(ex.map(lambda k: s3.put_object(Bucket="many", Key=k, Body=b"x"), keys))
        pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket="many"))
        got = [c["Key"] for p in pages for c in p.get("Contents", [])]
        self.assertEqual(got, sorted(keys))
        self.assertEqual(len(pages), 3)
        pages = list(s3.get_paginator("list_objects_v2").paginate(
            Bucket="many", Delimiter="/", PaginationConfig={"PageSize": 40}))
        prefixes = [c["Prefix"] for p in pages for c in p.get("CommonPrefixes", [])]
        top = [c["Key"] for p in pages for c in p.get("Contents", [])]
        self.assertEqual(prefixes, ["d0/", "d1/", "d2/"])
        self.assertEqual(top, sorted(k for k in keys if k.startswith("top")))
        pages = list(s3.get_paginator("list_objects_v2").paginate(
            Bucket="many", Prefix="d1/", PaginationConfig={"PageSize": 333}))
        self.assertEqual(sum(p["KeyCount"] for p in pages), 800)
        pages = list(s3.get_paginator("list_objects").paginate(
            Bucket="many", Delimiter="/", PaginationConfig={"PageSize": 7}))
        self.assertEqual([c["Prefix"] for p in pages for c in p.get("CommonPrefixes", [])],
                         ["d0/", "d1/", "d2/"])
        r = s3.list_objects_v2(Bucket="many", StartAfter="top097")
        self.assertEqual([c["Key"] for c in r["Contents"]], ["top098", "top099"])
        # encoding-type=url round-trips awkward keys (botocore leaves them
        # encoded when the caller asked for the encoding)
        s3.put_object(Bucket="many", Key="sp ace+plus%/é", Body=b"x")
        r = s3.list_objects_v2(Bucket="many", Prefix="sp", EncodingType="url")
        self.assertEqual(r["Contents"][0]["Key"], "sp%20ace%2Bplus%25/%C3%A9")
        self.assertEqual(urllib.parse.unquote(r["Contents"][0]["Key"]), "sp ace+plus%/é")
        r = s3.list_objects_v2(Bucket="many", Prefix="sp")
        self.assertEqual(r["Contents"][0]["Key"], "sp ace+plus%/é")
        # delete many at once, quiet and not
        r = s3.delete_objects(Bucket="many", Delete={
            "Objects": [{"Key": k} for k in keys[:1000]], "Quiet": True})
        self.assertEqual(r.get("Errors", []), [])
        self.assertEqual(r.get("Deleted", []), [])
        r = s3.delete_objects(Bucket="many", Delete={"Objects": [{"Key": "top000"}, {"Key": "zz"}]})
        self.assertEqual(sorted(d["Key"] for d in r["Deleted"]), ["top000", "zz"])
        n = sum(p.get("KeyCount", 0) for p in s3.get_paginator("list_objects_v2").paginate(
            Bucket="many"))
        self.assertEqual(n, 2500 - 1000 - 1 + 1)

    def test_conditional_dates(self):
        self.s3.put_object(Bucket="boto", Key="dated", Body=b"d")
        lm = self.s3.head_object(Bucket="boto", Key="dated")["LastModified"]
        later = lm + datetime.timedelta(hours=1)
        earlier = lm - datetime.timedelta(hours=1)
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.s3.get_object(Bucket="boto", Key="dated", IfModifiedSince=later)
        self.assertEqual(e.exception.response["Error"]["Code"], "304")
        self.assertEqual(self.s3.get_object(Bucket="boto", Key="dated",
                                            IfModifiedSince=earlier)["Body"].read(), b"d")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.s3.get_object(Bucket="boto", Key="dated", IfUnmodifiedSince=earlier)
        self.assertEqual(e.exception.response["Error"]["Code"], "PreconditionFailed")
        self.assertEqual(self.s3.get_object(Bucket="boto", Key="dated",
                                            IfUnmodifiedSince=later)["Body"].read(), b"d")

    def test_delete_objects_bad_md5(self):
        self.s3.put_object(Bucket="boto", Key="keepme", Body=b"k")
        body = (b'<Delete><Object><Key>keepme</Key></Object></Delete>')
        h = {"host": SRV["host"], "content-md5": base64.b64encode(hashlib.md5(b"x").digest())
             .decode()}
        sign("POST", "/boto", [("delete", "")], h, sha256hex(body))
        status, _, data = send("POST", "/boto", h, body, query=[("delete", "")])
        self.assertEqual((status, error_code(data)), (400, "BadDigest"))
        self.assertEqual(self.s3.get_object(Bucket="boto", Key="keepme")["Body"].read(), b"k")
        h = {"host": SRV["host"]}
        sign("POST", "/boto", [("delete", "")], h, sha256hex(b"<Delete><oops"))
        status, _, data = send("POST", "/boto", h, b"<Delete><oops", query=[("delete", "")])
        self.assertEqual((status, error_code(data)), (400, "MalformedXML"))

    def test_key_limits(self):
        k1024 = "k" * 1024
        self.s3.put_object(Bucket="boto", Key=k1024, Body=b"long")
        self.assertEqual(self.s3.get_object(Bucket="boto", Key=k1024)["Body"].read(), b"long")
        for key in ("k" * 1025, "\u00e9" * 2100):
            with self.assertRaises(botocore.exceptions.ClientError) as e:
                self.s3.put_object(Bucket="boto", Key=key, Body=b"x")
            self.assertEqual(e.exception.response["Error"]["Code"], "KeyTooLongError")
        for key in ("../../etc/passwd", "a//b", "a%2Fb", "sp ace/+plus", "\u00fcn\u00efc\u00f8de"):
            self.s3.put_object(Bucket="boto", Key=key, Body=key.encode())
            self.assertEqual(self.s3.get_object(Bucket="boto", Key=key)["Body"].read(),
                             key.encode())

    def test_copy(self):
        self.s3.put_object(Bucket="boto", Key="src", Body=b"copy me", ContentType="text/x-a",
                           Metadata={"m": "1"})
        self.s3.copy_object(Bucket="boto", Key="dst", CopySource={"Bucket": "boto", "Key": "src"})
        h = self.s3.head_object(Bucket="boto", Key="dst")
        self.assertEqual(h["ContentType"], "text/x-a")
        self.assertEqual(h["Metadata"], {"m": "1"})
        self.s3.copy_object(Bucket="boto", Key="dst2", CopySource="boto/src",
                            MetadataDirective="REPLACE", ContentType="text/x-b",
                            Metadata={"n": "2"})
        h = self.s3.head_object(Bucket="boto", Key="dst2")
        self.assertEqual((h["ContentType"], h["Metadata"]), ("text/x-b", {"n": "2"}))
        self.assertEqual(self.s3.get_object(Bucket="boto", Key="dst2")["Body"].read(), b"copy me")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.s3.copy_object(Bucket="boto", Key="src", CopySource="boto/src")
        self.assertEqual(e.exception.response["Error"]["Code"], "InvalidRequest")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.s3.copy_object(Bucket="boto", Key="x", CopySource="boto/missing")
        self.assertEqual(e.exception.response["Error"]["Code"], "NoSuchKey")

    def test_multipart(self):
        s3 = self.s3
        parts_data = [os.urandom(5 * 1024 * 1024), os.urandom(5 * 1024 * 1024), b"last bit"]
        up = s3.create_multipart_upload(Bucket="boto", Key="mp", ContentType="video/x")
        uid = up["UploadId"]
        etags = []
        for n, d in enumerate(parts_data, 1):
            etags.append(s3.upload_part(Bucket="boto", Key="mp", UploadId=uid, PartNumber=n,
                                        Body=d)["ETag"])
        lp = s3.list_parts(Bucket="boto", Key="mp", UploadId=uid)
        self.assertEqual([p["PartNumber"] for p in lp["Parts"]], [1, 2, 3])
        lp = s3.list_parts(Bucket="boto", Key="mp", UploadId=uid, MaxParts=2)
        self.assertTrue(lp["IsTruncated"])
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            s3.complete_multipart_upload(Bucket="boto", Key="mp", UploadId=uid, MultipartUpload={
                "Parts": [{"PartNumber": 2, "ETag": etags[1]}, {"PartNumber": 1, "ETag": etags[0]}]})
        self.assertEqual(e.exception.response["Error"]["Code"], "InvalidPartOrder")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            s3.complete_multipart_upload(Bucket="boto", Key="mp", UploadId=uid, MultipartUpload={
                "Parts": [{"PartNumber": 1, "ETag": etags[1]}]})
        self.assertEqual(e.exception.response["Error"]["Code"], "InvalidPart")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            s3.complete_multipart_upload(Bucket="boto", Key="mp", UploadId=uid, MultipartUpload={
                "Parts": [{"PartNumber": 3, "ETag": etags[2]}, {"PartNumber": 4, "ETag": etags[2]}]})
        self.assertIn(e.exception.response["Error"]["Code"], ("InvalidPart", "EntityTooSmall"))
        r = s3.complete_multipart_upload(Bucket="boto", Key="mp", UploadId=uid, MultipartUpload={
            "Parts": [{"PartNumber": i + 1, "ETag": e} for i, e in enumerate(etags)]})
        md5s = b"".join(hashlib.md5(d).digest() for d in parts_data)
        self.assertEqual(r["ETag"], '"%s-3"' % hashlib.md5(md5s).hexdigest())
        g = s3.get_object(Bucket="boto", Key="mp")
        self.assertEqual(g["Body"].read(), b"".join(parts_data))
        self.assertEqual(g["ContentType"], "video/x")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            s3.upload_part(Bucket="boto", Key="mp", UploadId=uid, PartNumber=1, Body=b"x")
        self.assertEqual(e.exception.response["Error"]["Code"], "NoSuchUpload")
        # UploadPartCopy
        uid = s3.create_multipart_upload(Bucket="boto", Key="mpc")["UploadId"]
        e1 = s3.upload_part_copy(Bucket="boto", Key="mpc", UploadId=uid, PartNumber=1,
                                 CopySource="boto/mp", CopySourceRange="bytes=0-5242879")
        e2 = s3.upload_part(Bucket="boto", Key="mpc", UploadId=uid, PartNumber=2, Body=b"end")
        s3.complete_multipart_upload(Bucket="boto", Key="mpc", UploadId=uid, MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": e1["CopyPartResult"]["ETag"]},
                      {"PartNumber": 2, "ETag": e2["ETag"]}]})
        self.assertEqual(s3.get_object(Bucket="boto", Key="mpc")["Body"].read(),
                         parts_data[0] + b"end")
        # abort
        uid = s3.create_multipart_upload(Bucket="boto", Key="gone")["UploadId"]
        s3.abort_multipart_upload(Bucket="boto", Key="gone", UploadId=uid)
        ups = s3.list_multipart_uploads(Bucket="boto").get("Uploads", [])
        self.assertNotIn(uid, [u["UploadId"] for u in ups])

    def test_checksum_mismatch_stores_nothing(self):
        s3 = self.s3
        wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            s3.put_object(Bucket="boto", Key="ck", Body=b"payload", ChecksumSHA256=wrong)
        self.assertEqual(e.exception.response["Error"]["Code"], "BadDigest")
        with self.assertRaises(botocore.exceptions.ClientError):
            s3.head_object(Bucket="boto", Key="ck")
        right = base64.b64encode(hashlib.sha256(b"payload").digest()).decode()
        s3.put_object(Bucket="boto", Key="ck", Body=b"payload", ChecksumSHA256=right)
        h = s3.head_object(Bucket="boto", Key="ck", ChecksumMode="ENABLED")
        self.assertEqual(h["ChecksumSHA256"], right)
        # a wrong Content-MD5 leaves the previous version in place
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            s3.put_object(Bucket="boto", Key="ck", Body=b"new payload",
                          ContentMD5=base64.b64encode(hashlib.md5(b"x").digest()).decode())
        self.assertEqual(e.exception.response["Error"]["Code"], "BadDigest")
        self.assertEqual(s3.get_object(Bucket="boto", Key="ck")["Body"].read(), b"payload")
        crc = base64.b64encode(zlib.crc32(b"crc body").to_bytes(4, "big")).decode()
        s3.put_object(Bucket="boto", Key="crc", Body=b"crc body", ChecksumCRC32=crc)
        self.assertEqual(s3.head_object(Bucket="boto", Key="crc", ChecksumMode="ENABLED")
                         ["ChecksumCRC32"], crc)


class Auth(unittest.TestCase):
    def test_wrong_secret(self):
        bad = client(secret="x" * 40)
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            bad.list_buckets()
        self.assertEqual(e.exception.response["Error"]["Code"], "SignatureDoesNotMatch")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            bad.put_object(Bucket="site", Key="nope", Body=b"x")
        self.assertEqual(e.exception.response["Error"]["Code"], "SignatureDoesNotMatch")
        with self.assertRaises(botocore.exceptions.ClientError):
            client().head_object(Bucket="site", Key="nope")

    def test_signature_v2(self):
        """Legacy clients: SigV2 headers (signature_version "s3") and SigV2
        presigned URLs (botocore's default for presigning before 1.36)."""
        v2 = boto3.client("s3", endpoint_url=SRV["url"], region_name="us-east-1",
                          aws_access_key_id=SRV["akid"], aws_secret_access_key=SRV["secret"],
                          config=Config(signature_version="s3", s3={"addressing_style": "path"}))
        v2.put_object(Bucket="site", Key="v2/a b+c.txt", Body=b"sigv2", ContentType="text/x")
        self.assertEqual(v2.get_object(Bucket="site", Key="v2/a b+c.txt")["Body"].read(), b"sigv2")
        keys = [c["Key"] for c in v2.list_objects(Bucket="site", Prefix="v2/")["Contents"]]
        self.assertEqual(keys, ["v2/a b+c.txt"])
        url = v2.generate_presigned_url("get_object", Params={"Bucket": "site",
                                                              "Key": "v2/a b+c.txt"})
        self.assertIn("AWSAccessKeyId=", url)
        with urllib.request.urlopen(url) as r:
            self.assertEqual(r.read(), b"sigv2")
        url = v2.generate_presigned_url("put_object", Params={"Bucket": "site", "Key": "v2/put"})
        # SigV2 signs Content-Type: send none (urllib would add a form type)
        req = urllib.request.Request(url, data=b"p", method="PUT", headers={"Content-Type": ""})
        with urllib.request.urlopen(req) as r:
            self.assertEqual(r.status, 200)
        expired = v2.generate_presigned_url("get_object", Params={"Bucket": "site",
                                                                  "Key": "v2/put"}, ExpiresIn=-5)
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(expired)
        self.assertEqual(error_code(e.exception.read()), "AccessDenied")
        bad = boto3.client("s3", endpoint_url=SRV["url"], region_name="us-east-1",
                           aws_access_key_id=SRV["akid"], aws_secret_access_key="y" * 40,
                           config=Config(signature_version="s3", retries={"max_attempts": 1}))
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            bad.list_buckets()
        self.assertEqual(e.exception.response["Error"]["Code"], "SignatureDoesNotMatch")

    def test_unknown_key(self):
        c = boto3.client("s3", endpoint_url=SRV["url"], region_name="us-east-1",
                         aws_access_key_id="AKIDUNKNOWN", aws_secret_access_key="s" * 40)
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            c.list_buckets()
        self.assertEqual(e.exception.response["Error"]["Code"], "InvalidAccessKeyId")

    def test_unsigned_is_denied(self):
        for method, path in (("GET", "/"), ("GET", "/site"), ("GET", "/site/x"),
                             ("PUT", "/site/x"), ("DELETE", "/site")):
            status, _, data = send(method, path, {}, b"data" if method == "PUT" else b"")
            self.assertEqual((status, error_code(data)), (403, "AccessDenied"), path)

    def test_public_read_bucket(self):
        s3 = client()
        s3.create_bucket(Bucket="public-site", ACL="public-read")
        s3.put_object(Bucket="public-site", Key="index.html", Body=b"<p>hi</p>",
                      ContentType="text/html")
        grants = s3.get_bucket_acl(Bucket="public-site")["Grants"]
        self.assertIn("http://acs.amazonaws.com/groups/global/AllUsers",
                      [g["Grantee"].get("URI") for g in grants])
        status, headers, data = send("GET", "/public-site/index.html", {})
        self.assertEqual((status, data, headers["Content-Type"]), (200, b"<p>hi</p>", "text/html"))
        self.assertEqual(send("HEAD", "/public-site/index.html", {})[0], 200)
        # reads only: no listing, no writes, no deletes
        for method, path in (("GET", "/public-site"), ("PUT", "/public-site/x"),
                             ("DELETE", "/public-site/index.html")):
            status, _, data = send(method, path, {}, b"x" if method == "PUT" else b"")
            self.assertEqual((status, error_code(data)), (403, "AccessDenied"), path)
        s3.put_bucket_acl(Bucket="public-site", ACL="private")
        status, _, data = send("GET", "/public-site/index.html", {})
        self.assertEqual((status, error_code(data)), (403, "AccessDenied"))
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            s3.put_bucket_acl(Bucket="public-site", ACL="authenticated-read")
        self.assertEqual(e.exception.response["Error"]["Code"], "NotImplemented")

    def test_hand_signed_request_works(self):
        h = {"host": SRV["host"]}
        sign("GET", "/", [], h, sha256hex(b""))
        status, headers, data = send("GET", "/", h)
        self.assertEqual(status, 200, data)
        self.assertIn(b"<Name>site</Name>", data)
        self.assertTrue(headers.get("x-amz-request-id"))

    def test_tampered_header(self):
        h = {"host": SRV["host"], "x-amz-meta-who": "alice", "content-type": "text/plain"}
        sign("PUT", "/site/tampered", [], h, sha256hex(b"body"))
        h["x-amz-meta-who"] = "mallory"
        status, _, data = send("PUT", "/site/tampered", h, b"body")
        self.assertEqual((status, error_code(data)), (403, "SignatureDoesNotMatch"))
        h = {"host": SRV["host"]}
        sign("PUT", "/site/tampered", [], h, sha256hex(b"body"))
        status, _, data = send("PUT", "/site/tampered", h, b"bodX")
        self.assertEqual((status, error_code(data)), (400, "XAmzContentSHA256Mismatch"))
        h = {"host": SRV["host"]}
        sign("GET", "/site/tampered", [("a", "1")], h, sha256hex(b""))
        status, _, data = send("GET", "/site/tampered", h, query=[("a", "2")])
        self.assertEqual((status, error_code(data)), (403, "SignatureDoesNotMatch"))
        status, _, _ = send("HEAD", "/site/tampered", dict(h, authorization="x"))
        self.assertIn(status, (400, 403))
        with self.assertRaises(botocore.exceptions.ClientError):
            client().head_object(Bucket="site", Key="tampered")

    def test_skewed_clock(self):
        h = {"host": SRV["host"]}
        old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=16)
        sign("GET", "/", [], h, sha256hex(b""), when=old)
        status, _, data = send("GET", "/", h)
        self.assertEqual((status, error_code(data)), (403, "RequestTimeTooSkewed"))
        h = {"host": SRV["host"]}
        sign("GET", "/", [], h, sha256hex(b""),
             when=datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=10))
        self.assertEqual(send("GET", "/", h)[0], 200)

    def test_virtual_hosted_style(self):
        port = SRV["host"].split(":")[1]
        host = "site.localhost:" + port
        h = {"host": host}
        sign("PUT", "/v/key.txt", [], h, sha256hex(b"vhost"))
        status, _, data = send("PUT", "/v/key.txt", h, b"vhost")
        self.assertEqual(status, 200, data)
        self.assertEqual(client().get_object(Bucket="site", Key="v/key.txt")["Body"].read(),
                         b"vhost")
        # the service host itself is path-style
        h = {"host": "s3.localhost:" + port}
        sign("GET", "/site/v/key.txt", [], h, sha256hex(b""))
        status, _, data = send("GET", "/site/v/key.txt", h)
        self.assertEqual((status, data), (200, b"vhost"))
        h = {"host": "site.s3.localhost:" + port}
        sign("GET", "/", [("list-type", "2"), ("prefix", "v/")], h, sha256hex(b""))
        status, _, data = send("GET", "/", h, query=[("list-type", "2"), ("prefix", "v/")])
        self.assertEqual(status, 200, data)
        self.assertIn(b"<Key>v/key.txt</Key>", data)


class AwsChunked(unittest.TestCase):
    def put_signed_chunked(self, key, data, tamper=False, encoding="aws-chunked"):
        h = {"host": SRV["host"], "content-encoding": encoding,
             "x-amz-decoded-content-length": str(len(data))}
        k, scope, seed, amz_date = sign("PUT", "/site/" + key, [], h,
                                        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
        body = chunked_signed(data, 65536, k, scope, seed, amz_date, tamper)
        return send("PUT", "/site/" + key, h, body)

    def test_signed_chunks(self):
        data = os.urandom(200000)
        status, headers, resp = self.put_signed_chunked("chunked.bin", data)
        self.assertEqual(status, 200, resp)
        self.assertEqual(headers["ETag"], '"%s"' % hashlib.md5(data).hexdigest())
        g = client().get_object(Bucket="site", Key="chunked.bin")
        self.assertEqual(g["Body"].read(), data)
        self.assertNotIn("ContentEncoding", g)

    def test_signed_chunks_keep_real_encoding(self):
        status, _, resp = self.put_signed_chunked("gz.bin", b"gzipped?", encoding="aws-chunked,gzip")
        self.assertEqual(status, 200, resp)
        h = client().head_object(Bucket="site", Key="gz.bin")
        self.assertEqual(h["ContentEncoding"], "gzip")

    def test_tampered_chunk(self):
        status, _, resp = self.put_signed_chunked("bad-chunk.bin", os.urandom(200000), tamper=True)
        self.assertEqual((status, error_code(resp)), (403, "SignatureDoesNotMatch"))
        with self.assertRaises(botocore.exceptions.ClientError):
            client().head_object(Bucket="site", Key="bad-chunk.bin")

    def put_unsigned_trailer(self, key, data, checksum):
        h = {"host": SRV["host"], "content-encoding": "aws-chunked",
             "x-amz-decoded-content-length": str(len(data)),
             "x-amz-trailer": "x-amz-checksum-crc32"}
        sign("PUT", "/site/" + key, [], h, "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
        body = b""
        for i in range(0, len(data), 50000):
            piece = data[i:i + 50000]
            body += b"%x\r\n%s\r\n" % (len(piece), piece)
        body += b"0\r\nx-amz-checksum-crc32:%s\r\n\r\n" % checksum.encode()
        return send("PUT", "/site/" + key, h, body)

    def test_unsigned_trailer_checksum(self):
        data = os.urandom(120000)
        crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
        status, headers, resp = self.put_unsigned_trailer("trailer.bin", data, crc)
        self.assertEqual(status, 200, resp)
        self.assertEqual(headers.get("x-amz-checksum-crc32"), crc)
        g = client().get_object(Bucket="site", Key="trailer.bin", ChecksumMode="ENABLED")
        self.assertEqual(g["Body"].read(), data)
        self.assertEqual(g["ChecksumCRC32"], crc)
        wrong = base64.b64encode((zlib.crc32(data) ^ 1).to_bytes(4, "big")).decode()
        status, _, resp = self.put_unsigned_trailer("trailer-bad.bin", data, wrong)
        self.assertEqual((status, error_code(resp)), (400, "BadDigest"))
        with self.assertRaises(botocore.exceptions.ClientError):
            client().head_object(Bucket="site", Key="trailer-bad.bin")


if __name__ == "__main__":
    unittest.main(verbosity=2, warnings="ignore")
