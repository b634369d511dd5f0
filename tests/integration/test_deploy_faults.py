#!/usr/bin/python3
"""pier deploy through a faulty proxy in front of s3rver.

1. Every 4th distinct PUT (UploadPart included) gets 503 SlowDown, 500 or a
   reset connection on its first attempt: the deploy still ends with exactly
   the folder's content (checked with boto3 directly against s3rver).
2. A file vanishes mid-deploy: that upload fails naming the file, the run
   stops before the HTML and the deletions (old index.html still served,
   pier's manifest untouched), and the next deploy converges.
3. kill -9 during the uploads of a new version whose assets all have new
   names: the old HTML still references assets that exist; the next deploy
   converges and removes the old assets.
4. A file changes (same size) mid-deploy against pier serve, which checks
   Content-MD5 as S3 does: the upload is refused naming the file.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploy_lib as L  # noqa: E402
from s3proxy import Proxy  # noqa: E402

T = L.Checks()
TMP = L.tempdir("deploy-faults")
srv = None
proxies = []
servers = []


def versioned_site(root, version, n_assets=40):
    """index.html listing its assets; every asset name carries the version."""
    if os.path.exists(root):
        shutil.rmtree(root)
    os.makedirs(os.path.join(root, "assets"))
    names = []
    for i in range(n_assets):
        name = "assets/chunk-%d.v%04dab%02d.js" % (i, version, i)
        with open(os.path.join(root, name), "wb") as fh:
            fh.write(os.urandom(2000 + i * 100))
        names.append(name)
    html = "<html>v%d\n%s\n</html>" % (version, "\n".join(
        '<script src="/%s"></script>' % n for n in names))
    with open(os.path.join(root, "index.html"), "w") as fh:
        fh.write(html)
    return names


def referenced(html):
    return re.findall(r'src="/([^"]+)"', html)


try:
    srv = L.S3rver(TMP, buckets=("site", "kill", "gone"))
    env = L.base_env(TMP, AWS_MAX_ATTEMPTS="5")
    client = L.s3(srv.url, env)

    # 1. faults on every 4th distinct PUT
    px = Proxy(srv.port, fault_every=4)
    proxies.append(px)
    site = os.path.join(TMP, "site")
    files = L.make_site(site, seed=3, files=120)
    base = ["deploy", site, "--to", "s3://site/", "--endpoint-url", px.url]
    rc, out, err = L.pier(base + ["--jobs", "8"], env)
    T.eq(rc, 0, "deploy through 503 / 500 / resets succeeds: " + (err.strip().splitlines() or [""])[-1])
    snap = px.snapshot()
    T.ok(snap["faults"]["503"] > 0 and snap["faults"]["500"] > 0 and snap["faults"]["reset"] > 0,
         "the proxy injected every kind of fault: %s" % snap["faults"])
    T.eq(L.remote_hashes(client, "site"), L.local_hashes(site),
         "after the faults the bucket holds exactly the folder")
    # rebuild with changes, still through faults
    for f in files[::10]:
        with open(os.path.join(site, f), "ab") as fh:
            fh.write(b"changed")
    os.remove(os.path.join(site, files[1]))
    r, err = L.pier_json(base, env)
    T.eq((r["summary"]["uploaded"], r["summary"]["deleted"]), (len(files[::10]), 1),
         "rebuild through faults: exact counts")
    T.eq(L.remote_hashes(client, "site"), L.local_hashes(site),
         "rebuild through faults: exact content")
    r, err = L.pier_json(base, env)
    T.eq(r["summary"]["uploaded"], 0, "and then nothing left to do")
    px.stop()

    # 2. a file vanishes mid-deploy
    px = Proxy(srv.port)
    proxies.append(px)
    gone = os.path.join(TMP, "gone-site")
    versioned_site(gone, 1, n_assets=10)
    gbase = ["deploy", gone, "--to", "s3://gone/", "--endpoint-url", px.url, "--jobs", "1"]
    L.pier(gbase, env, check=0)
    old_index = client.get_object(Bucket="gone", Key="index.html")["Body"].read()
    old_manifest = client.get_object(Bucket="gone", Key=".pier/manifest.json")["Body"].read()
    versioned_site(gone, 2, n_assets=10)
    with open(os.path.join(gone, "assets", "zz-late.css"), "w") as fh:
        fh.write("body{}")
    px.hold("chunk-0.")
    proc = subprocess.Popen([L.PIER] + gbase, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    T.ok(px.held.wait(30), "the first upload reached the proxy")
    os.remove(os.path.join(gone, "assets", "zz-late.css"))
    px.release()
    out, err = proc.communicate(timeout=120)
    err = err.decode()
    T.eq(proc.returncode, 1, "a vanished file fails the deploy")
    T.ok("zz-late.css" in err and "vanished" in err, "the message names the file: "
         + err.strip().splitlines()[-1][:300])
    T.eq(client.get_object(Bucket="gone", Key="index.html")["Body"].read(), old_index,
         "the old index.html is still served (HTML phase never started)")
    T.eq(client.get_object(Bucket="gone", Key=".pier/manifest.json")["Body"].read(),
         old_manifest, "pier's manifest was not rewritten")
    old_assets = referenced(old_index.decode())
    keys = L.listing(client, "gone")
    T.ok(all(a in keys for a in old_assets), "every asset the old page names is still there")
    r, err = L.pier_json(gbase + ["--max-deletes", "100"], env)
    T.ok(r["ok"], "the next deploy succeeds")
    T.eq(L.remote_hashes(client, "gone"), L.local_hashes(gone), "and converges")
    px.stop()

    # 3. kill -9 mid-deploy
    px = Proxy(srv.port, delay=0.05)
    proxies.append(px)
    ks = os.path.join(TMP, "kill-site")
    versioned_site(ks, 1)
    kbase = ["deploy", ks, "--to", "s3://kill/", "--endpoint-url", px.url, "--jobs", "2"]
    L.pier(kbase, env, check=0)
    v1_index = client.get_object(Bucket="kill", Key="index.html")["Body"].read().decode()
    versioned_site(ks, 2)
    # Ctrl-C first: stops starting transfers, exits 1 naming the interrupt
    proc = subprocess.Popen([L.PIER] + kbase + ["--max-deletes", "100", "--json"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    start = px.snapshot()["puts"]
    end = time.time() + 30
    while time.time() < end and px.snapshot()["puts"] - start < 5:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    res = json.loads(out.decode())
    T.ok(proc.returncode == 1 and "interrupted" in err.decode(),
         "Ctrl-C: exit 1, 'interrupted': " + err.decode().strip().splitlines()[-1][:200])
    T.ok(res["interrupted"] and res["summary"]["not_started"] > 0 and not res["state_written"],
         "Ctrl-C: --json says interrupted, work not started, no manifest")
    T.eq(client.get_object(Bucket="kill", Key="index.html")["Body"].read().decode(), v1_index,
         "after Ctrl-C the old index.html is still served")
    # then kill -9
    proc = subprocess.Popen([L.PIER] + kbase + ["--max-deletes", "100"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    start = px.snapshot()["puts"]
    end = time.time() + 30
    while time.time() < end and px.snapshot()["puts"] - start < 10:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    T.ok(px.snapshot()["puts"] - start >= 10, "pier was killed after 10 uploads")
    index_now = client.get_object(Bucket="kill", Key="index.html")["Body"].read().decode()
    T.eq(index_now, v1_index, "after kill -9 the old index.html is still served")
    keys = L.listing(client, "kill")
    missing = [a for a in referenced(index_now) if a not in keys]
    T.eq(missing, [], "every asset the served page references exists")
    T.ok(any("v0002" in k for k in keys), "some new assets were already uploaded")
    r, err = L.pier_json(kbase + ["--max-deletes", "100"], env)
    T.ok(r["ok"], "the next deploy succeeds")
    T.eq(r["summary"]["deleted"], 40, "it removes the 40 old assets")
    T.eq(L.remote_hashes(client, "kill"), L.local_hashes(ks), "and the bucket equals v2")
    T.eq(referenced(client.get_object(Bucket="kill", Key="index.html")["Body"].read().decode()),
         referenced(open(os.path.join(ks, "index.html")).read()), "v2's page is served")
    srv.stop()
    srv = None

    # 4. a file changes (same size) mid-deploy: pier serve checks Content-MD5
    #    as S3 does (s3rver does not), so the upload is refused by name
    serve = L.Serve(TMP, bucket="site")
    servers.append(serve)
    senv = serve.env(TMP)
    px = Proxy(int(serve.url.rsplit(":", 1)[1]))
    proxies.append(px)
    cs = os.path.join(TMP, "change-site")
    versioned_site(cs, 1, n_assets=5)
    cbase = ["deploy", cs, "--to", "s3://site/", "--endpoint-url", px.url, "--jobs", "1"]
    L.pier(cbase, senv, check=0)
    late = os.path.join(cs, "assets", "zz-late.css")
    with open(late, "w") as fh:
        fh.write("body{color:red}")
    with open(os.path.join(cs, "index.html"), "a") as fh:
        fh.write("<!-- v1.1 -->")
    px.hold("chunk-0.")
    chunk0 = [f for f in os.listdir(os.path.join(cs, "assets")) if f.startswith("chunk-0.")][0]
    with open(os.path.join(cs, "assets", chunk0), "ab") as fh:
        fh.write(b"x")  # something to upload before zz-late.css
    proc = subprocess.Popen([L.PIER] + cbase, env=senv, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    held = px.held.wait(30)
    with open(late, "w") as fh:
        fh.write("body{color:RED}")  # same size, other bytes
    px.release()
    out, err = proc.communicate(timeout=120)
    err = err.decode()
    T.ok(held, "pier serve: the first upload reached the proxy")
    T.eq(proc.returncode, 1, "pier serve: a file changed mid-deploy fails the deploy")
    T.ok("zz-late.css" in err and "changed during the deploy" in err,
         "the message names the changed file: " + err.strip().splitlines()[-1][:300])
    r, err = L.pier_json(cbase, senv)
    T.ok(r["ok"] and "assets/zz-late.css" in r["uploaded"] and "index.html" in r["uploaded"],
         "the next deploy uploads it and the page")
finally:
    for p in proxies:
        try:
            p.stop()
        except Exception:
            pass
    if srv:
        srv.stop()
    for s_ in servers:
        s_.stop()
    shutil.rmtree(TMP, ignore_errors=True)

T.finish()
