#!/usr/bin/python3
"""pier serve killed with SIGKILL in the middle of writes: after a restart on
the same data directory every object is whole (the previous version of a key
being overwritten survives), temp files are gone, the listing agrees with the
objects, and a multipart upload in progress can still be completed."""
import configparser
import datetime
import hashlib
import hmac
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import boto3
from botocore.config import Config

for var in ("AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
    os.environ.pop(var, None)


class Server:
    def __init__(self, data):
        self.data = data
        self.log = open(os.path.join(os.path.dirname(data), "serve.err"), "a")
        self.proc = subprocess.Popen([os.environ["PIER"], "serve", "--data", data,
                                      "--api-listen", "127.0.0.1:0"],
                                     stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.url = None
        deadline = time.time() + 10
        while time.time() < deadline and not self.url:
            line = self.proc.stdout.readline()
            if not line:
                break
            m = re.search(r"http://127\.0\.0\.1:\d+", line)
            if m:
                self.url = m.group(0)
        if not self.url:
            self.proc.kill()
            raise RuntimeError("pier serve printed no URL")
        cp = configparser.ConfigParser()
        cp.read(os.path.join(data, "credentials"))
        self.akid = cp["pier"]["aws_access_key_id"]
        self.secret = cp["pier"]["aws_secret_access_key"]
        self.s3 = boto3.client("s3", endpoint_url=self.url, region_name="us-east-1",
                               aws_access_key_id=self.akid, aws_secret_access_key=self.secret,
                               config=Config(s3={"addressing_style": "path"},
                                             retries={"max_attempts": 1}))

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.log.close()

    def stop(self):
        self.proc.terminate()
        rc = self.proc.wait(20)
        self.log.close()
        return rc

    def start_put(self, key, total):
        """Opens a signed PUT of `total` bytes (UNSIGNED-PAYLOAD) and returns
        the socket with the headers sent; the body is the caller's to send."""
        host = self.url[len("http://"):]
        now = datetime.datetime.now(datetime.timezone.utc)
        amz = now.strftime("%Y%m%dT%H%M%SZ")
        h = {"host": host, "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "x-amz-date": amz}
        names = sorted(h)
        creq = "\n".join(["PUT", "/site/" + key, "",
                          "".join("%s:%s\n" % (n, h[n]) for n in names), ";".join(names),
                          "UNSIGNED-PAYLOAD"])
        scope = amz[:8] + "/us-east-1/s3/aws4_request"
        sts = "\n".join(["AWS4-HMAC-SHA256", amz, scope,
                         hashlib.sha256(creq.encode()).hexdigest()])
        k = ("AWS4" + self.secret).encode()
        for part in (amz[:8], "us-east-1", "s3", "aws4_request"):
            k = hmac.new(k, part.encode(), hashlib.sha256).digest()
        sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
        auth = ("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s"
                % (self.akid, scope, ";".join(names), sig))
        s = socket.create_connection(("127.0.0.1", int(host.split(":")[1])))
        head = ("PUT /site/%s HTTP/1.1\r\nHost: %s\r\nx-amz-date: %s\r\n"
                "x-amz-content-sha256: UNSIGNED-PAYLOAD\r\nAuthorization: %s\r\n"
                "Content-Length: %d\r\n\r\n" % (key, host, amz, auth, total))
        s.sendall(head.encode())
        return s


class Crash(unittest.TestCase):
    def setUp(self):
        if not os.environ.get("PIER"):
            self.skipTest("PIER is not set")
        self.tmp = tempfile.mkdtemp(prefix="pier-crash-")
        self.data = os.path.join(self.tmp, "data")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_kill9_mid_writes(self):
        srv = Server(self.data)
        v1 = os.urandom(3 * 1024 * 1024)
        srv.s3.put_object(Bucket="site", Key="victim", Body=v1)
        srv.s3.put_object(Bucket="site", Key="other", Body=b"other")
        up = srv.s3.create_multipart_upload(Bucket="site", Key="mp")
        part1 = os.urandom(5 * 1024 * 1024)
        e1 = srv.s3.upload_part(Bucket="site", Key="mp", UploadId=up["UploadId"], PartNumber=1,
                                Body=part1)["ETag"]
        # two writers half-way through: a replacement of "victim" and a new key
        socks = [srv.start_put("victim", 40 * 1024 * 1024), srv.start_put("new", 10 * 1024 * 1024)]
        chunk = os.urandom(1024 * 1024)
        for _ in range(8):
            for s in socks:
                s.sendall(chunk)
        time.sleep(0.3)  # let the server write what it has
        tmp_files = os.listdir(os.path.join(self.data, "tmp"))
        self.assertTrue(any(f.startswith("put-") for f in tmp_files), tmp_files)
        srv.kill9()
        for s in socks:
            s.close()

        srv = Server(self.data)
        try:
            self.assertEqual(os.listdir(os.path.join(self.data, "tmp")), [])
            got = srv.s3.get_object(Bucket="site", Key="victim")["Body"].read()
            self.assertEqual(hashlib.md5(got).hexdigest(), hashlib.md5(v1).hexdigest())
            keys = [c["Key"] for c in srv.s3.list_objects_v2(Bucket="site")["Contents"]]
            self.assertEqual(keys, ["other", "victim"])
            with self.assertRaises(srv.s3.exceptions.NoSuchKey):
                srv.s3.get_object(Bucket="site", Key="new")
            # the multipart upload survived the crash
            e2 = srv.s3.upload_part(Bucket="site", Key="mp", UploadId=up["UploadId"],
                                    PartNumber=2, Body=b"end")["ETag"]
            srv.s3.complete_multipart_upload(
                Bucket="site", Key="mp", UploadId=up["UploadId"],
                MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1},
                                           {"PartNumber": 2, "ETag": e2}]})
            self.assertEqual(srv.s3.get_object(Bucket="site", Key="mp")["Body"].read(),
                             part1 + b"end")
        finally:
            self.assertEqual(srv.stop(), 0)

    def test_kill9_during_20_concurrent_uploads(self):
        """20 uploads in flight (single PUTs and multipart), the server killed
        at a random moment, three rounds: after each restart every key holds
        its previous object or the new one whole, never a part of one, and no
        temp file is left."""
        import random
        import threading
        from boto3.s3.transfer import TransferConfig
        seed = int(os.environ.get("PIER_CRASH_SEED", time.time()))
        print("seed", seed)
        rnd = random.Random(seed)
        keys = ["k%02d" % i for i in range(20)]
        versions = {}  # key -> set of md5s that are allowed to be there
        srv = Server(self.data)
        for k in keys:
            body = os.urandom(rnd.randrange(1, 3) * 1024 * 1024)
            srv.s3.put_object(Bucket="site", Key=k, Body=body)
            versions[k] = {hashlib.md5(body).hexdigest()}
        for round_no in range(3):
            bodies = {k: os.urandom(rnd.randrange(2, 12) * 1024 * 1024) for k in keys}
            for k, b in bodies.items():
                versions[k].add(hashlib.md5(b).hexdigest())
            multipart = TransferConfig(multipart_threshold=5 * 1024 * 1024,
                                       multipart_chunksize=5 * 1024 * 1024, max_concurrency=2)

            def upload(k):
                try:
                    if len(bodies[k]) >= 5 * 1024 * 1024 and k.endswith(("0", "5")):
                        import io
                        srv.s3.upload_fileobj(io.BytesIO(bodies[k]), "site", k, Config=multipart)
                    else:
                        srv.s3.put_object(Bucket="site", Key=k, Body=bodies[k])
                except Exception:
                    pass  # the server dies under it: expected

            threads = [threading.Thread(target=upload, args=(k,)) for k in keys]
            for t in threads:
                t.start()
            time.sleep(rnd.uniform(0.05, 1.5))
            srv.kill9()
            for t in threads:
                t.join(60)
            srv = Server(self.data)
            self.assertEqual(os.listdir(os.path.join(self.data, "tmp")), [],
                             "round %d (seed %d)" % (round_no, seed))
            listed = sorted(c["Key"] for c in
                            srv.s3.list_objects_v2(Bucket="site", Prefix="k")["Contents"])
            self.assertEqual(listed, keys, "round %d (seed %d)" % (round_no, seed))
            for k in keys:
                got = srv.s3.get_object(Bucket="site", Key=k)["Body"].read()
                digest = hashlib.md5(got).hexdigest()
                self.assertIn(digest, versions[k],
                              "%s is neither a previous nor a new version (round %d, seed %d)"
                              % (k, round_no, seed))
                versions[k] = {digest}  # what survived is the previous version now
        self.assertEqual(srv.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2, warnings="ignore")
