"""Shared by the `pier deploy` integration tests (imported, not a test).

- S3rver: @20minutes/s3rver (tests/node) on a free 127.0.0.1 port in a temp
  directory, with buckets configured at start; credentials S3RVER/S3RVER.
- Serve: `$PIER serve` on a free port (its credentials file, profile pier).
- make_site(): a deterministic site (~200 files: HTML, hashed assets,
  storybook/, two ~12 MiB files for multipart, odd names).
- pier(): runs the binary with a clean environment (no CA variables, no
  AWS keys but the ones given), returns (rc, stdout, stderr).
- s3(): a boto3 client for checking what pier wrote, independently of pier.
"""
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

PIER = os.environ.get("PIER") or sys.exit("PIER must name the pier binary")
SRC = os.environ.get("PIER_SRC") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
S3RVER_CLI = os.path.join(SRC, "tests/node/node_modules/@20minutes/s3rver/lib/cli.js")

CLEAN = ["AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE",
         "SSL_CERT_DIR", "NODE_EXTRA_CA_CERTS", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
         "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL",
         "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_CLOUDFRONT", "AWS_CONFIG_FILE",
         "AWS_SHARED_CREDENTIALS_FILE", "AWS_REGION", "AWS_DEFAULT_REGION",
         "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
         "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "HTTP_PROXY", "HTTPS_PROXY",
         "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"]

for _k in CLEAN:
    os.environ.pop(_k, None)


def base_env(tmp, **extra):
    """The environment for pier and the AWS CLI: S3rver's keys, a region,
    empty config files (nothing from the machine's ~/.aws), IMDS off."""
    env = dict(os.environ)
    cfg = os.path.join(tmp, "aws-config")
    if not os.path.exists(cfg):
        open(cfg, "w").close()
    env.update({"AWS_ACCESS_KEY_ID": "S3RVER", "AWS_SECRET_ACCESS_KEY": "S3RVER",
                "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_CONFIG_FILE": cfg, "AWS_SHARED_CREDENTIALS_FILE": cfg,
                "AWS_EC2_METADATA_DISABLED": "true", "PIER_PROGRESS": "plain",
                "AWS_MAX_ATTEMPTS": "5", "AWS_RETRY_MODE": "standard"})
    env.update(extra)
    return env


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, what, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %s" % (what, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("%s did not listen on %d" % (what, port))


class S3rver:
    """@20minutes/s3rver on 127.0.0.1 (port from its own output: -p 0)."""

    def __init__(self, tmp, buckets=("site",), name="s3rver"):
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        args = ["node", "--openssl-legacy-provider", "-e",
                "require(process.env.S3RVER_CLI).parseAsync("
                "['node','s3rver'].concat(process.argv.slice(1)))",
                "--", "-d", self.dir, "-a", "127.0.0.1", "-p", "0", "--silent"]
        for b in buckets:
            args += ["--configure-bucket", b]
        env = dict(os.environ, S3RVER_CLI=S3RVER_CLI)
        self.log = open(os.path.join(tmp, name + ".log"), "w+")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log, env=env,
                                     start_new_session=True)
        self.port = None
        end = time.time() + 30
        while time.time() < end:
            line = self.proc.stdout.readline().decode()
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
            if not line and self.proc.poll() is not None:
                break
        if not self.port:
            self.stop()
            self.log.seek(0)
            raise RuntimeError("s3rver did not start: " + self.log.read()[-2000:])
        self.url = "http://127.0.0.1:%d" % self.port

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class Serve:
    """`$PIER serve` on a free port; env gets its credentials file."""

    def __init__(self, tmp, bucket="site"):
        self.data = os.path.join(tmp, "serve-data")
        self.out = open(os.path.join(tmp, "serve.out"), "w+")
        self.err = open(os.path.join(tmp, "serve.err"), "w+")
        env = base_env(tmp)
        self.proc = subprocess.Popen([PIER, "serve", "--data", self.data, "--api-listen",
                                      "127.0.0.1:0", "--bucket", bucket],
                                     stdout=self.out, stderr=self.err, env=env)
        self.url = None
        end = time.time() + 20
        while time.time() < end and not self.url:
            self.out.seek(0)
            m = re.search(r"http://127\.0\.0\.1:\d+", self.out.read())
            if m:
                self.url = m.group(0)
                break
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        if not self.url:
            self.stop()
            self.err.seek(0)
            raise RuntimeError("pier serve did not start: " + self.err.read()[-2000:])

    def env(self, tmp):
        e = base_env(tmp)
        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            e.pop(k)
        e["AWS_SHARED_CREDENTIALS_FILE"] = os.path.join(self.data, "credentials")
        e["AWS_PROFILE"] = "pier"
        return e

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def pier(args, env, timeout=300, check=None):
    p = subprocess.run([PIER] + args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    out, err = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
    for bad in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        if bad in err:
            raise AssertionError("pier %s: sanitizer report:\n%s" % (" ".join(args), err[-5000:]))
    if check is not None and p.returncode != check:
        raise AssertionError("pier %s: exit %d, wanted %d\nstdout: %s\nstderr: %s" % (
            " ".join(args), p.returncode, check, out[-3000:], err[-3000:]))
    return p.returncode, out, err


def pier_json(args, env, check=0):
    rc, out, err = pier(args + ["--json"], env, check=check)
    try:
        return json.loads(out), err
    except ValueError:
        raise AssertionError("not JSON: %r\nstderr: %s" % (out[-2000:], err[-2000:]))


def s3(url, env):
    import boto3
    from botocore.config import Config
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id=env.get("S3_KEY", "S3RVER"),
                        aws_secret_access_key=env.get("S3_SECRET", "S3RVER"),
                        config=Config(s3={"addressing_style": "path"},
                                      retries={"max_attempts": 3}))


def listing(client, bucket, prefix=""):
    """{key: (size, etag, last_modified)} of the bucket."""
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            out[o["Key"]] = (o["Size"], o["ETag"].strip('"'), o["LastModified"])
    return out


def remote_hashes(client, bucket, prefix=""):
    """{key: sha256 hex} of every object but pier's own."""
    out = {}
    for key in listing(client, bucket, prefix):
        if "/.pier/" in "/" + key:
            continue
        h = hashlib.sha256()
        try:
            body = client.get_object(Bucket=bucket, Key=key)["Body"]
        except client.exceptions.NoSuchKey:
            out[key] = "listed but GetObject says NoSuchKey"
            continue
        for chunk in body.iter_chunks(1 << 20):
            h.update(chunk)
        out[key] = h.hexdigest()
    return out


def local_hashes(root, prefix=""):
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            rel = os.path.relpath(p, root).replace(os.sep, "/")
            with open(p, "rb") as fh:
                out[prefix + rel] = hashlib.sha256(fh.read()).hexdigest()
    return out


ODD_NAMES = ["odd/with space.txt", "odd/plus+sign.txt", "odd/100%.txt", "odd/hash#tag.txt",
             "odd/what?.txt", "odd/ünïcødé.txt", "odd/日本語.html", "odd/a=b;c,d@e.txt"]
# s3rver 4.0.4 escapes '&' and "'" twice in its listings ("a&amp;amp;b",
# "&amp;#x27;"): S3 and pier serve list them right, so these names are only
# used against those.
XML_NAMES = ("odd/a&b.txt", "odd/it's.txt")


def make_site(root, seed=1, files=200, big=(12 << 20,), extra=()):
    """A deterministic site of about `files` files (plus `extra` names)."""
    rnd = random.Random(seed)
    if os.path.exists(root):
        shutil.rmtree(root)
    os.makedirs(root)
    paths = {}

    def put(rel, data):
        paths[rel] = data

    def hexh(n=8):
        return "".join(rnd.choice("0123456789abcdef") for _ in range(n - 2)) + "a1"

    put("index.html", b"<html><script src=/assets/app.js></script>index %d</html>" % seed)
    put("about.html", b"<html>about</html>")
    put("404.html", b"<html>not found</html>")
    put("robots.txt", b"User-agent: *\n")
    put("favicon.ico", rnd.randbytes(800))
    put("storybook/index.html", b"<html>storybook %d</html>" % seed)
    put("storybook/iframe.html", b"<html>iframe</html>")
    for i in range(len(big)):
        put("media/video%d.mp4" % (i + 1), rnd.randbytes(big[i] + rnd.randrange(1 << 16)))
    for name in list(ODD_NAMES) + list(extra):
        put(name, ("odd file %s\n" % name).encode())
    n = 0
    while len(paths) < files:
        kind = n % 6
        if kind == 0:
            put("assets/chunk-%d.%s.js" % (n, hexh()), rnd.randbytes(rnd.randrange(200, 20000)))
        elif kind == 1:
            put("assets/style-%d.%s.css" % (n, hexh()), b"body{color:#%06x}" % rnd.randrange(1 << 24))
        elif kind == 2:
            put("img/photo-%d.png" % n, rnd.randbytes(rnd.randrange(1000, 60000)))
        elif kind == 3:
            put("docs/page-%d.html" % n, b"<html>page %d</html>" % n)
        elif kind == 4:
            put("storybook/assets/story-%d.%s.js" % (n, hexh()), rnd.randbytes(rnd.randrange(100, 5000)))
        else:
            put("data/item-%d.json" % n, b'{"n": %d}' % n)
        n += 1
    for rel, data in paths.items():
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as fh:
            fh.write(data)
    return sorted(paths)


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def ok(self, cond, what, detail=""):
        if cond:
            self.passed += 1
            print("ok - " + what, flush=True)
        else:
            self.failed += 1
            print("FAIL - %s %s" % (what, detail), flush=True)
        return cond

    def eq(self, got, want, what):
        return self.ok(got == want, what, "(got %r, want %r)" % (got, want))

    def finish(self):
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        sys.exit(1 if self.failed else 0)


def tempdir(name):
    return tempfile.mkdtemp(prefix="pier-%s-" % name)
