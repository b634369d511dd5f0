#!/usr/bin/python3
"""pier deploy against @20minutes/s3rver (and the same sequence against
`pier serve`): first deploy, no-op, fresh rebuild with 3% changed,
deletions, --no-delete, --dry-run, what was written (AWS CLI head-object
and cp of odd names), and bad input (too-long name, missing and empty
folder, no such bucket, wrong keys, nothing listening)."""
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploy_lib as L  # noqa: E402

T = L.Checks()
TMP = L.tempdir("deploy-s3rver")
servers = []


def aws(env, url, *args):
    p = subprocess.run(["aws", "--endpoint-url", url] + list(args), env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    if p.returncode != 0:
        raise AssertionError("aws %s: %s" % (" ".join(args), p.stderr.decode()[-1000:]))
    return p.stdout


def rewrite_all(site, change):
    """A fresh build: every file rewritten (new mtime), `change` of them
    with new content. Returns the changed relative paths."""
    changed = []
    time.sleep(1.1)  # mtimes move even on coarse file systems
    for d, _, files in os.walk(site):
        for f in sorted(files):
            p = os.path.join(d, f)
            rel = os.path.relpath(p, site)
            with open(p, "rb") as fh:
                data = fh.read()
            if rel in change:
                data = data + b"\n/* changed */"
                changed.append(rel)
            with open(p, "wb") as fh:
                fh.write(data)
    return changed


def sequence(name, url, env, bucket, client, site_dir, extra=()):
    """first / no-op / rebuild, as for both servers; returns the file list."""
    files = L.make_site(site_dir, seed=7, extra=extra)
    n = len(files)
    base = ["deploy", site_dir, "--to", "s3://%s/" % bucket, "--endpoint-url", url]
    r, _ = L.pier_json(base, env)
    T.eq(r["summary"]["uploaded"], n, "%s: first deploy uploads every file (%d)" % (name, n))
    T.eq(r["summary"]["skipped"], 0, "%s: first deploy skips nothing" % name)
    T.eq(r["summary"]["multipart"], 1, "%s: the 12 MiB file goes multipart" % name)
    T.ok(r["state_written"], "%s: pier's manifest written" % name)
    T.eq(L.remote_hashes(client, bucket), L.local_hashes(site_dir),
         "%s: bucket content equals the folder, byte for byte" % name)
    T.ok(".pier/manifest.json" in L.listing(client, bucket), "%s: .pier/manifest.json" % name)

    r, _ = L.pier_json(base, env)
    T.eq((r["summary"]["uploaded"], r["summary"]["skipped"], r["summary"]["deleted"]),
         (0, n, 0), "%s: no-op deploy uploads nothing" % name)

    # fresh rebuild: all mtimes new, 3% of contents changed
    pick = [f for f in files if f.endswith((".js", ".html", ".png", ".json"))][::16][:6]
    pick_rel = [p.replace("/", os.sep) for p in pick]
    changed = rewrite_all(site_dir, set(pick_rel))
    T.eq(len(changed), 6, "%s: 6 files (3%%) changed" % name)
    r, _ = L.pier_json(base, env)
    T.eq(sorted(r["uploaded"]), sorted(pick), "%s: rebuild uploads exactly the changed files" % name)
    T.eq(r["summary"]["skipped"], n - 6, "%s: rebuild skips the rest" % name)
    T.eq(L.remote_hashes(client, bucket), L.local_hashes(site_dir),
         "%s: bucket equals the rebuilt folder" % name)
    return files


try:
    # ---------------------------------------------------------------- s3rver
    srv = L.S3rver(TMP, buckets=("site", "long", "empty"))
    servers.append(srv)
    env = L.base_env(TMP)
    client = L.s3(srv.url, env)
    site = os.path.join(TMP, "site")
    files = sequence("s3rver", srv.url, env, "site", client, site)
    base = ["deploy", site, "--to", "s3://site/", "--endpoint-url", srv.url]

    # what pier wrote, seen by the AWS CLI
    css = next(f for f in files if f.endswith(".css"))
    h = json.loads(aws(env, srv.url, "s3api", "head-object", "--bucket", "site", "--key", css))
    T.eq(h.get("ContentType"), "text/css; charset=utf-8", "aws head-object: CSS Content-Type")
    T.eq(h.get("CacheControl"), "public, max-age=31536000, immutable",
         "aws head-object: hashed CSS is immutable")
    h = json.loads(aws(env, srv.url, "s3api", "head-object", "--bucket", "site", "--key",
                       "index.html"))
    T.eq(h.get("ContentType"), "text/html; charset=utf-8", "aws head-object: HTML Content-Type")
    T.eq(h.get("CacheControl"), "no-cache", "aws head-object: HTML is no-cache")
    h = json.loads(aws(env, srv.url, "s3api", "head-object", "--bucket", "site", "--key",
                       "img/photo-2.png"))
    T.eq((h.get("ContentType"), h.get("CacheControl")), ("image/png", "public, max-age=300"),
         "aws head-object: unhashed image, short cache")
    for name in L.ODD_NAMES:
        dst = os.path.join(TMP, "down")
        aws(env, srv.url, "s3", "cp", "s3://site/" + name, dst)
        with open(dst, "rb") as a, open(os.path.join(site, name), "rb") as b:
            T.ok(a.read() == b.read(), "aws s3 cp of %r gives the same bytes" % name)

    # flags: --cache-control and --header; a changed rule re-uploads (metadata)
    flags = ["--cache-control", "img/**=public, max-age=60",
             "--header", "data/**:Content-Disposition=attachment",
             "--header", "data/**:x-amz-meta-owner=web"]
    r, _ = L.pier_json(base + flags, env)
    imgs = sorted(f for f in files if f.startswith("img/"))
    datas = sorted(f for f in files if f.startswith("data/"))
    T.eq(sorted(r["uploaded"]), sorted(imgs + datas),
         "new rules re-upload exactly the objects whose metadata changed")
    T.eq(r["summary"]["metadata"], len(imgs) + len(datas), "reason: metadata")
    h = json.loads(aws(env, srv.url, "s3api", "head-object", "--bucket", "site", "--key",
                       imgs[0]))
    T.eq(h.get("CacheControl"), "public, max-age=60", "--cache-control applied")
    h = json.loads(aws(env, srv.url, "s3api", "head-object", "--bucket", "site", "--key",
                       datas[0]))
    T.eq((h.get("ContentDisposition"), h.get("Metadata")), ("attachment", {"owner": "web"}),
         "--header applied (Content-Disposition, x-amz-meta-owner)")
    r, _ = L.pier_json(base + flags, env)
    T.eq(r["summary"]["uploaded"], 0, "same rules again: nothing to do")
    r, _ = L.pier_json(base, env)
    T.eq(r["summary"]["metadata"], len(imgs) + len(datas), "rules removed: back to defaults")
    rc, out, err = L.pier(base + ["--header", "x=y"], env)
    T.eq(rc, 2, "--header without GLOB:NAME=VALUE: usage error")
    rc, out, err = L.pier(base + ["--header", "*:X-Frame-Options=DENY"], env)
    T.ok(rc == 2 and "X-Frame-Options" in err, "a header S3 cannot store: " + err.strip()[:150])

    # deletions
    gone = [f for f in files if f.startswith("data/")][:5]
    for f in gone:
        os.remove(os.path.join(site, f))
    r, _ = L.pier_json(base, env)
    T.eq(sorted(r["deleted"]), sorted(gone), "deleted exactly the 5 removed files")
    T.eq((r["summary"]["deleted"], r["summary"]["uploaded"]), (5, 0), "delete counts")
    left = L.listing(client, "site")
    T.ok(not any(f in left for f in gone), "the removed files are gone from the bucket")

    # --no-delete
    gone2 = [f for f in files if f.startswith("data/")][5:8]
    for f in gone2:
        os.remove(os.path.join(site, f))
    r, _ = L.pier_json(base + ["--no-delete"], env)
    T.eq(r["summary"]["deleted"], 0, "--no-delete deletes nothing")
    T.eq(r["summary"]["kept"], 3, "--no-delete reports 3 kept")
    T.ok(all(f in L.listing(client, "site") for f in gone2), "--no-delete: objects still there")

    # --dry-run changes nothing
    with open(os.path.join(site, "index.html"), "ab") as fh:
        fh.write(b"<!-- dry -->")
    before = L.listing(client, "site")
    rc, out, err = L.pier(base + ["--dry-run"], env, check=0)
    T.ok("index.html" in out and "upload" in out, "--dry-run prints the upload of index.html")
    T.ok("delete" in out, "--dry-run prints the pending deletions")
    r, _ = L.pier_json(base + ["--dry-run"], env)
    T.ok(any(a["key"] == "index.html" for a in r["actions"]), "--dry-run --json lists the action")
    T.eq(L.listing(client, "site"), before, "--dry-run changed nothing in the bucket")
    r, _ = L.pier_json(base, env)
    T.eq((r["uploaded"], sorted(r["deleted"])), (["index.html"], sorted(gone2)),
         "the real deploy then uploads index.html and deletes the kept three")

    # summary line
    rc, out, err = L.pier(base, env, check=0)
    T.ok(out.startswith("uploaded 0 (0.0 MiB), skipped ") and " requests, " in out,
         "summary line: %s" % out.strip())

    # too-long name: refused before any upload
    longsite = os.path.join(TMP, "longsite")
    os.makedirs(longsite)
    with open(os.path.join(longsite, "a.css"), "w") as fh:
        fh.write("x")
    deep = os.path.join(longsite, *(["d" * 200] * 5))
    os.makedirs(deep)
    with open(os.path.join(deep, "f" * 100 + ".html"), "w") as fh:
        fh.write("x")
    rc, out, err = L.pier(["deploy", longsite, "--to", "s3://long/", "--endpoint-url", srv.url],
                          env)
    T.eq(rc, 1, "a key over 1,024 bytes: exit 1")
    T.ok("1024" in err.replace(",", "") or "1,024" in err, "the message names the limit: "
         + err.strip()[:200])
    T.eq(L.listing(client, "long"), {}, "nothing uploaded when a name is too long")

    # missing folder, empty folder
    rc, out, err = L.pier(["deploy", os.path.join(TMP, "nope"), "--to", "s3://site/",
                           "--endpoint-url", srv.url], env)
    T.ok(rc == 1 and "nope" in err, "missing folder: exit 1 naming it: " + err.strip())
    empty = os.path.join(TMP, "emptydir")
    os.makedirs(empty)
    rc, out, err = L.pier(["deploy", empty, "--to", "s3://site/", "--endpoint-url", srv.url], env)
    T.ok(rc == 1 and "empty" in err, "empty folder refused: " + err.strip())
    T.ok("index.html" in L.listing(client, "site"), "and nothing was deleted")
    rc, out, err = L.pier(["deploy", empty, "--to", "s3://empty/", "--endpoint-url", srv.url,
                           "--allow-empty"], env)
    T.eq(rc, 0, "--allow-empty on an empty bucket works")

    # usage errors
    rc, out, err = L.pier(["deploy", site], env)
    T.ok(rc == 2 and "--to" in err, "no --to: usage error (2)")
    rc, out, err = L.pier(["deploy", site, "--to", "s3://site/", "--jobs", "0"], env)
    T.eq(rc, 2, "--jobs 0: usage error")
    rc, out, err = L.pier(["deploy", site, "--to", "http://x"], env)
    T.eq(rc, 2, "--to not s3://: usage error")

    # no such bucket
    rc, out, err = L.pier(["deploy", site, "--to", "s3://no-such-bucket/", "--endpoint-url",
                           srv.url], env)
    T.ok(rc == 1 and "no such bucket" in err.lower() and "no-such-bucket" in err,
         "NoSuchBucket: " + err.strip())

    rc, out, err = L.pier(["deploy", site, "--to", "s3://no-such-bucket/", "--endpoint-url",
                           srv.url, "--json"], env)
    T.ok(rc == 1 and json.loads(out)["ok"] is False and json.loads(out)["code"] == "not found",
         "--json failure: {ok: false, code} on stdout")

    # wrong secret key: denied, nothing written
    bad = dict(env, AWS_SECRET_ACCESS_KEY="wrong")
    before = L.listing(client, "site")
    rc, out, err = L.pier(base, bad)
    T.ok(rc == 1 and ("signature" in err.lower() or "denied" in err.lower()),
         "wrong secret key: " + err.strip()[:200])
    T.eq(L.listing(client, "site"), before, "nothing changed with the wrong key")

    # nothing listening: connection refused after retries
    port = L.free_port()
    rc, out, err = L.pier(["deploy", site, "--to", "s3://site/", "--endpoint-url",
                           "http://127.0.0.1:%d" % port], dict(env, AWS_MAX_ATTEMPTS="2"))
    T.ok(rc == 1 and "127.0.0.1:%d" % port in err, "connection refused names the endpoint: "
         + err.strip()[:200])

    # a wrong region and denied access, from a server answering as S3 does
    import http.server
    import threading

    class Fake(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        mode = "region"

        def log_message(self, *a):
            pass

        def do_GET(self):
            if Fake.mode == "region":
                status, body = 400, (b"<Error><Code>AuthorizationHeaderMalformed</Code><Message>"
                                     b"the region 'us-east-1' is wrong; expecting 'eu-west-1'"
                                     b"</Message><Region>eu-west-1</Region></Error>")
            else:
                status, body = 403, b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            if Fake.mode == "region":
                self.send_header("x-amz-bucket-region", "eu-west-1")
            self.end_headers()
            self.wfile.write(body)

    fake = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Fake)
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    furl = "http://127.0.0.1:%d" % fake.server_address[1]
    rc, out, err = L.pier(["deploy", site, "--to", "s3://site/", "--endpoint-url", furl], env)
    T.ok(rc == 1 and "eu-west-1" in err, "wrong region: the message names the right one: "
         + err.strip()[:200])
    Fake.mode = "denied"
    rc, out, err = L.pier(["deploy", site, "--to", "s3://site/", "--endpoint-url", furl], env)
    T.ok(rc == 1 and "denied" in err.lower() and "site" in err,
         "access denied names the bucket: " + err.strip()[:200])
    fake.shutdown()
    fake.server_close()

    # unreadable file (only meaningful when not root)
    if os.geteuid() != 0:
        p = os.path.join(site, "secret.txt")
        with open(p, "w") as fh:
            fh.write("x")
        os.chmod(p, 0)
        before = L.listing(client, "site")
        rc, out, err = L.pier(base, env)
        T.ok(rc == 1 and "secret.txt" in err, "unreadable file refused: " + err.strip())
        T.eq(L.listing(client, "site"), before, "nothing uploaded with an unreadable file")
        os.remove(p)
    else:
        print("# skipped: unreadable file (root reads everything)")

    srv.stop()

    # ---------------------------------------------------------- pier serve
    serve = L.Serve(TMP, bucket="site")
    servers.append(serve)
    senv = serve.env(TMP)
    import configparser
    cp = configparser.ConfigParser()
    cp.read(os.path.join(serve.data, "credentials"))
    skey = dict(senv, S3_KEY=cp["pier"]["aws_access_key_id"],
                S3_SECRET=cp["pier"]["aws_secret_access_key"])
    sclient = L.s3(serve.url, skey)
    sequence("pier serve", serve.url, senv, "site", sclient, os.path.join(TMP, "site2"),
             extra=L.XML_NAMES)
    serve.stop()
finally:
    for s in servers:
        try:
            s.stop()
        except Exception:
            pass
    shutil.rmtree(TMP, ignore_errors=True)

T.finish()
