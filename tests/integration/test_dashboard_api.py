#!/usr/bin/python3
"""The dashboard's JSON API on `pier up` (a copy of the example monorepo):
shapes, pagination, `pier status --json` == GET /api/status, logs as text
(a `<script>` line comes back verbatim inside JSON / SSE data), no secret in
any answer, security headers, same-origin POSTs (403 without), run now and
redeploy (a redeploy of the deployed commit builds instead of Skipping), the
loopback Host check; then bound on 0.0.0.0: no token -> 401, Bearer or the
cookie from /?token= -> 200, the token file 0600."""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

PIER = os.environ["PIER"]
SRC = os.environ["PIER_SRC"]
for v in ("AWS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "AWS_PROFILE",
          "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
    os.environ.pop(v, None)
SECRET = "dash-s3cr3t-%d" % os.getpid()
os.environ["PIER_TEST_TOKEN"] = SECRET
tmp = tempfile.mkdtemp()
repo = os.path.join(tmp, "repo")
proc = None
failures = 0


def fail(msg):
    print("FAIL:", msg, file=sys.stderr)
    if os.path.exists(os.path.join(tmp, "up.log")):
        print(open(os.path.join(tmp, "up.log")).read()[-3000:], file=sys.stderr)
    stop()
    shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def sh(*args, cwd=None):
    return subprocess.run(args, cwd=cwd or repo, check=True, capture_output=True, text=True).stdout


def start(listen):
    global proc
    log = open(os.path.join(tmp, "up.log"), "w")
    proc = subprocess.Popen([PIER, "up", repo, "--api-listen", "127.0.0.1:0", "--edge-listen", "127.0.0.1:0",
                             "--dashboard-listen", listen], stdout=log, stderr=subprocess.STDOUT)
    for _ in range(100):
        text = open(os.path.join(tmp, "up.log")).read()
        m = re.search(r"^dashboard: http://[^:]+:(\d+)/", text, re.M)
        if m:
            return int(m.group(1)), text
        check(proc.poll() is None, "pier up exited")
        time.sleep(0.1)
    fail("no dashboard line")


def stop():
    global proc
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.returncode != 0:
            rc, proc = proc.returncode, None
            fail("pier up exited with %d on SIGTERM (a sanitizer report is in up.log)" % rc)
    proc = None


def req(port, method, path, headers=None, host=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    h = {"Host": host or "127.0.0.1:%d" % port}
    h.update(headers or {})
    c.request(method, path, headers=h)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, body


def get_json(port, path, headers=None):
    st, h, body = req(port, "GET", path, headers)
    check(st == 200, "GET %s: %d %s" % (path, st, body[:200]))
    check(h.get("content-type", "").startswith("application/json"), "GET %s: content type %s" % (path, h.get("content-type")))
    check(SECRET.encode() not in body, "the secret in GET %s" % path)
    return json.loads(body)


def wait_idle(port):
    for _ in range(600):
        runs = get_json(port, "/api/runs?limit=50")["runs"]
        if runs and all(r["status"] not in ("InProgress", "Queued") for r in runs):
            return runs
        time.sleep(0.1)
    fail("runs did not end")


def origin(port):
    return {"Origin": "http://127.0.0.1:%d" % port}


try:
    subprocess.run([SRC + "/examples/monorepo/create.sh", repo, "300ms"], check=True, capture_output=True)
    # the dev build echoes a secret and an HTML line
    p = os.path.join(repo, "pier.yml")
    s = open(p).read()
    s = s.replace('      env:\n        STORYBOOK: "1"\n',
                  '      env:\n        STORYBOOK: "1"\n      secrets:\n        DEMO_TOKEN: {env: PIER_TEST_TOKEN}\n', 1)
    open(p, "w").write(s)
    b = os.path.join(repo, "buildspec.yml")
    s = open(b).read()
    check("      - ./build.sh" in s, "buildspec has no ./build.sh line")
    s = s.replace("      - ./build.sh", "      - echo \"token is $DEMO_TOKEN\"\n      - echo '<script>alert(1)</script><b>x</b>'\n      - ./build.sh", 1)
    open(b, "w").write(s)
    sh("git", "commit", "-qam", "secret and html in the log")
    sh("git", "checkout", "-q", "main")
    sh("git", "merge", "-q", "develop")
    sh("git", "checkout", "-q", "develop")

    port, banner = start("127.0.0.1:0")
    check("token" not in banner.split("dashboard:")[1].split("\n")[0], "a loopback dashboard asked for a token")
    runs = wait_idle(port)
    check(len(runs) == 2 and all(r["status"] == "Succeeded" for r in runs), "first runs: %s" % [(r["id"], r["status"]) for r in runs])

    # shapes
    pipes = get_json(port, "/api/pipelines")["pipelines"]
    check([p["name"] for p in pipes] == ["dev", "prod"], "pipelines %s" % [p["name"] for p in pipes])
    keys = {"name", "branch", "paths", "exclude", "poll_ms", "webhook", "host", "site_url", "bucket", "prefix",
            "distribution", "last_deployed", "latest_run"}
    dev = get_json(port, "/api/pipelines/dev")
    check(set(dev) == keys, "pipeline keys %s" % sorted(dev))
    check(dev["branch"] == "develop" and dev["paths"] == ["frontend/**", "buildspec.yml"], "dev %s" % dev)
    check(re.match(r"^http://web-dev\.localhost:\d+/$", dev["site_url"] or ""), "site_url %s" % dev["site_url"])
    ld = dev["last_deployed"]
    check(set(ld) == {"sha", "short_sha", "message", "author", "time_ms", "run_id"} and ld["message"] == "secret and html in the log"
          and ld["author"] == "pier example" and len(ld["sha"]) == 40, "last_deployed %s" % ld)
    run_keys = {"id", "pipeline", "trigger", "status", "reason", "from_commit", "to_commit", "created_ms", "started_ms",
                "ended_ms", "duration_ms", "stages", "changed_files", "deploy", "invalidation", "has_log"}
    lr = dev["latest_run"]
    check(set(lr) == run_keys, "run keys %s" % sorted(lr))
    one = get_json(port, "/api/runs/%d" % lr["id"])
    check(set(one) == run_keys | {"commit"} and one["commit"]["sha"] == one["to_commit"], "run %s" % sorted(one))
    check([s["name"] for s in one["stages"]] == ["source", "build", "deploy", "invalidate", "actions"], "stages %s" % one["stages"])
    check(set(one["stages"][0]) == {"name", "status", "started_ms", "ended_ms", "duration_ms", "message"}, "stage keys")
    check(set(one["deploy"]) == {"uploaded", "skipped", "deleted", "bytes"} and one["deploy"]["uploaded"] > 0, "deploy %s" % one["deploy"])
    check(one["invalidation"]["id"] and "/index.html" in one["invalidation"]["paths"], "invalidation %s" % one["invalidation"])
    check(req(port, "GET", "/api/runs/99999")[0] == 404, "unknown run not 404")
    check(req(port, "GET", "/api/runs/abc")[0] == 404, "bad run id not 404")
    check(req(port, "GET", "/api/pipelines/nope")[0] == 404, "unknown pipeline not 404")
    check(req(port, "GET", "/api/nothing")[0] == 404, "unknown path not 404")
    print("ok: shapes of pipelines, runs, a run with stages, deploy and invalidation; 404s")

    # the log: text, verbatim, masked
    lg = get_json(port, "/api/runs/%d/log?offset=0" % lr["id"])
    check("<script>alert(1)</script><b>x</b>" in lg["text"], "html line not verbatim in the log JSON")
    check("token is ***" in lg["text"], "masked line missing")
    check(lg["done"] is True and lg["next_offset"] == len(lg["text"].encode()), "log offsets %s" % {k: lg[k] for k in ("offset", "next_offset", "done")})
    tail = get_json(port, "/api/runs/%d/log?offset=%d" % (lr["id"], lg["next_offset"] - 10))
    check(tail["text"] == lg["text"].encode()[-10:].decode(errors="replace") and tail["offset"] == lg["next_offset"] - 10, "log from an offset")
    st, h, body = req(port, "GET", "/api/runs/%d/log/stream" % lr["id"])
    check(st == 200 and h["content-type"].startswith("text/event-stream"), "stream %d %s" % (st, h.get("content-type")))
    text = body.decode()
    check("data: " in text and "event: end\ndata: Succeeded" in text and "<script>alert(1)</script>" in text, "stream body %s" % text[-300:])
    check(SECRET not in text, "secret in the stream")
    st, h, body = req(port, "GET", "/api/runs/%d/log/stream" % lr["id"], {"Last-Event-ID": str(lg["next_offset"])})
    check(body.decode().count("data: ") == 1 and "event: end" in body.decode(), "stream resumed at the end: %s" % body[:300])
    print("ok: logs as text (<script> verbatim in JSON and SSE), masked, offsets, Last-Event-ID")

    # headers and assets
    st, h, body = req(port, "GET", "/")
    check(st == 200 and b"<!doctype html>" in body and h["content-type"].startswith("text/html"), "index")
    for k, v in (("content-security-policy", "default-src 'self'"), ("x-content-type-options", "nosniff"), ("x-frame-options", "DENY")):
        check(v in h.get(k, ""), "header %s: %s" % (k, h.get(k)))
        check(v in req(port, "GET", "/api/pipelines")[1].get(k, ""), "API header %s" % k)
    check(req(port, "GET", "/", {"If-None-Match": h["etag"]})[0] == 304, "no 304 for the ETag")
    check(h.get("cache-control") == "no-cache", "assets cache-control")
    check(req(port, "GET", "/runs/1")[0] == 200 and req(port, "GET", "/app.js")[0] == 200, "client routes / app.js")
    check(req(port, "GET", "/nope.txt")[0] == 404, "unknown asset not 404")
    check(req(port, "GET", "/api/pipelines", host="evil.example")[0] == 403, "a foreign Host on loopback not refused")
    check(req(port, "DELETE", "/api/runs/1")[0] == 405, "DELETE not 405")
    print("ok: CSP, nosniff, DENY, ETag/304, client routes, Host check")

    # same origin for POSTs
    check(req(port, "POST", "/api/pipelines/dev/runs")[0] == 403, "POST without Origin not 403")
    check(req(port, "POST", "/api/pipelines/dev/runs", {"Origin": "http://evil.example"})[0] == 403, "cross-origin POST not 403")
    check(req(port, "POST", "/api/pipelines/dev/runs", {"Sec-Fetch-Site": "cross-site"})[0] == 403, "cross-site POST not 403")
    check(req(port, "POST", "/api/pipelines/nope/runs", origin(port))[0] == 404, "run now of an unknown pipeline")
    # pagination: three more runs of dev (run now: nothing changed -> Skipped)
    for i in range(3):
        st, h, body = req(port, "POST", "/api/pipelines/dev/runs", origin(port))
        check(st == 202, "run now: %d %s" % (st, body))
        rid = json.loads(body)["id"]
        for _ in range(300):
            if get_json(port, "/api/runs/%d" % rid)["status"] not in ("Queued", "InProgress"):
                break
            time.sleep(0.1)
        check(get_json(port, "/api/runs/%d" % rid)["status"] == "Skipped", "run now %d not Skipped" % rid)
    all_dev = [r["id"] for r in get_json(port, "/api/pipelines/dev/runs?limit=100")["runs"]]
    check(len(all_dev) == 4 and all_dev == sorted(all_dev, reverse=True), "dev runs %s" % all_dev)
    seen, before, pages = [], 0, 0
    while True:
        page = get_json(port, "/api/pipelines/dev/runs?limit=3" + ("&before=%d" % before if before else ""))
        check(len(page["runs"]) <= 3, "page larger than limit")
        seen += [r["id"] for r in page["runs"]]
        pages += 1
        if page["next_before"] is None:
            break
        before = page["next_before"]
        check(before == seen[-1], "next_before is not the last id of the page")
    check(seen == all_dev and pages == 2, "paged %s in %d pages, want %s" % (seen, pages, all_dev))
    allruns = get_json(port, "/api/runs?limit=2")
    check(len(allruns["runs"]) == 2 and allruns["next_before"] == allruns["runs"][1]["id"], "all runs page")
    print("ok: same-origin POSTs (403 without), run now, pagination (limit, before, next_before)")

    # redeploy the deployed commit: builds (forced) instead of Skipping
    deployed_run = dev["last_deployed"]["run_id"]
    st, h, body = req(port, "POST", "/api/runs/%d/redeploy" % deployed_run, origin(port))
    check(st == 202, "redeploy: %d %s" % (st, body))
    rid = json.loads(body)["id"]
    for _ in range(300):
        r = get_json(port, "/api/runs/%d" % rid)
        if r["status"] not in ("Queued", "InProgress"):
            break
        time.sleep(0.1)
    check(r["status"] == "Succeeded" and r["trigger"] == "redeploy" and r["stages"][1]["status"] == "Succeeded",
          "redeploy run %s %s" % (r["status"], [(s["name"], s["status"]) for s in r["stages"]]))
    check("regardless" in (r["stages"][0]["message"] or ""), "redeploy source message %s" % r["stages"][0]["message"])
    check(req(port, "POST", "/api/runs/99999/retry", origin(port))[0] == 404, "retry of an unknown run")
    st, h, body = req(port, "POST", "/api/runs/%d/retry" % rid, origin(port))
    check(st == 202 and json.loads(body)["trigger"] == "retry", "retry %d %s" % (st, body))
    wait_idle(port)
    print("ok: redeploy of the deployed commit builds and deploys (forced), retry")

    # pier status --json == GET /api/status
    for args, q in ((["--limit", "5"], "?limit=5"), (["dev", "--limit", "3"], "?pipeline=dev&limit=3")):
        cli = json.loads(sh(PIER, "status", "--dir", repo, "--json", *args))
        apis = get_json(port, "/api/status" + q)
        check(cli == apis, "pier status --json %s differs from /api/status%s:\n%s\n%s" % (args, q, json.dumps(cli)[:600], json.dumps(apis)[:600]))
    check(SECRET not in sh(PIER, "status", "--dir", repo, "--json"), "secret in pier status --json")
    print("ok: pier status --json equals GET /api/status")
    stop()

    # bound on 0.0.0.0: the token
    port, banner = start("0.0.0.0:0")
    tokfile = os.path.join(repo, ".pier", "dashboard.token")
    token = open(tokfile).read().strip()
    check(stat.S_IMODE(os.stat(tokfile).st_mode) == 0o600, "token file mode %o" % os.stat(tokfile).st_mode)
    check(len(token) == 64 and token in banner and "shown once" in banner, "token not shown at first start")
    check(req(port, "GET", "/api/pipelines")[0] == 401, "no token not 401")
    check(req(port, "GET", "/")[0] == 401, "page without token not 401")
    check(req(port, "GET", "/api/pipelines", {"Authorization": "Bearer " + "0" * 64})[0] == 401, "wrong token not 401")
    auth = {"Authorization": "Bearer " + token}
    check(req(port, "GET", "/api/pipelines", auth)[0] == 200, "Bearer token not 200")
    check(req(port, "GET", "/api/pipelines", host="dash.example:%d" % port, headers=auth)[0] == 200, "any Host with the token")
    st, h, body = req(port, "GET", "/?token=" + token)
    check(st == 303 and h.get("location") == "/" and "HttpOnly" in h.get("set-cookie", ""), "?token= %d %s" % (st, h))
    cookie = h["set-cookie"].split(";")[0]
    check(req(port, "GET", "/api/pipelines", {"Cookie": "a=b; " + cookie})[0] == 200, "cookie not accepted")
    check(req(port, "POST", "/api/pipelines/dev/runs", auth)[0] == 403, "POST with token, no Origin not 403")
    check(req(port, "POST", "/api/pipelines/dev/runs", origin(port))[0] == 401, "POST with Origin, no token not 401")
    st, h, body = req(port, "POST", "/api/pipelines/dev/runs", dict(auth, **origin(port)))
    check(st == 202, "POST with token and Origin: %d %s" % (st, body))
    stop()
    port, banner = start("0.0.0.0:0")
    check(token not in banner and "dashboard.token" in banner, "token shown again at the second start")
    stop()
    print("ok: on 0.0.0.0: 401 without token, Bearer and cookie 200, POST needs token and Origin, file 0600, shown once")
finally:
    stop()
    shutil.rmtree(tmp, ignore_errors=True)
