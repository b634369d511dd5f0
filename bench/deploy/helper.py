#!/usr/bin/python3
"""Helpers for bench/deploy/run (not a test).

  helper.py site DIR            deterministic site: ~3,000 files, ~150 MiB
  helper.py rebuild DIR         rewrite every file (new mtimes), 3% with new
                                content (deterministic choice)
  helper.py snapshot URL BUCKET FILE
                                {key: [etag, last_modified]} of the bucket
  helper.py uploaded URL BUCKET BEFORE AFTER
                                objects new or rewritten between two
                                snapshots (pier's .pier/ excluded)
"""
import json
import os
import random
import sys
import time

MIB = 1 << 20


def rbytes(rnd, n):
    return rnd.randbytes(n)


def site(root):
    rnd = random.Random(20240830)
    files = {}

    def hx():
        return "%08x" % rnd.getrandbits(32) + "a1"

    # multi-MiB media (multipart for every tool)
    for i, size in enumerate((9 * MIB, 11 * MIB, 13 * MIB, 7 * MIB, 5 * MIB)):
        files["media/clip-%d.mp4" % i] = rbytes(rnd, size)
    # hashed JS chunks
    for i in range(1200):
        files["assets/js/chunk-%d.%s.js" % (i, hx())] = rbytes(rnd, rnd.randrange(4000, 48000))
    # CSS
    for i in range(300):
        files["assets/css/style-%d.%s.css" % (i, hx())] = (
            b"body{margin:0}\n" * rnd.randrange(100, 800))
    # images (random bytes)
    for i in range(690):
        files["images/img-%04d.png" % i] = rbytes(rnd, rnd.randrange(40000, 160000))
    # HTML pages
    for i in range(600):
        files["pages/section-%d/page-%d.html" % (i // 50, i)] = (
            b"<!doctype html><title>page %d</title>" % i + b"<p>lorem ipsum</p>" * rnd.randrange(50, 300))
    files["index.html"] = b"<!doctype html><title>home</title>"
    # storybook
    files["storybook/index.html"] = b"<!doctype html><title>storybook</title>"
    files["storybook/iframe.html"] = b"<!doctype html><title>iframe</title>"
    for i in range(200):
        files["storybook/assets/story-%d.%s.js" % (i, hx())] = rbytes(rnd, rnd.randrange(2000, 30000))
    for rel, data in files.items():
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as fh:
            fh.write(data)
    total = sum(len(d) for d in files.values())
    print("site: %d files, %.1f MiB" % (len(files), total / MIB))


def rebuild(root):
    rnd = random.Random(7)
    paths = []
    for d, _, fs in os.walk(root):
        for f in fs:
            paths.append(os.path.join(d, f))
    paths.sort()
    change = set(rnd.sample(range(len(paths)), max(1, len(paths) * 3 // 100)))
    time.sleep(1.1)
    for i, p in enumerate(paths):
        with open(p, "rb") as fh:
            data = fh.read()
        if i in change:
            data = data + b"\n/* rebuilt */\n"
        with open(p, "wb") as fh:
            fh.write(data)
    print("rebuild: %d files rewritten, %d changed" % (len(paths), len(change)))


def client(url):
    import boto3
    from botocore.config import Config
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id=os.environ.get("BENCH_KEY", "S3RVER"),
                        aws_secret_access_key=os.environ.get("BENCH_SECRET", "S3RVER"),
                        config=Config(s3={"addressing_style": "path"}))


def snapshot(url, bucket, out):
    c = client(url)
    snap = {}
    for page in c.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", []):
            snap[o["Key"]] = [o["ETag"], o["LastModified"].timestamp()]
    with open(out, "w") as fh:
        json.dump(snap, fh)


def uploaded(before, after):
    with open(before) as fh:
        b = json.load(fh)
    with open(after) as fh:
        a = json.load(fh)
    n = sum(1 for k, v in a.items()
            if not k.startswith(".pier/") and (k not in b or b[k] != v))
    print(n)


def main():
    cmd = sys.argv[1]
    if cmd == "site":
        site(sys.argv[2])
    elif cmd == "rebuild":
        rebuild(sys.argv[2])
    elif cmd == "snapshot":
        snapshot(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "uploaded":
        uploaded(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
