#!/usr/bin/python3
"""pier deploy --cdn and pier invalidate against a small CloudFront-protocol
server (CreateInvalidation answers 201 + XML; GetInvalidation says
InProgress, then Completed; it records every request's paths and
CallerReference), with s3rver as the S3 side.

- a deploy that changed index.html and storybook/index.html, with the
  rewrite /storybook -> /storybook/index.html, invalidates /, /index.html,
  /storybook, /storybook/ and /storybook/index.html, and waits (polls);
- a no-op deploy sends no invalidation;
- --no-wait returns without polling;
- a 500 on the first create: the retry carries the same CallerReference
  and only one invalidation exists;
- more than 15 changed paths collapse to wildcards;
- pier invalidate by hand, and with a reused --caller-reference.
"""
import http.server
import json
import os
import re
import shutil
import sys
import threading
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploy_lib as L  # noqa: E402

NS = "{http://cloudfront.amazonaws.com/doc/2020-05-31/}"
T = L.Checks()
TMP = L.tempdir("deploy-cdn")


class CloudFront:
    def __init__(self):
        self.lock = threading.Lock()
        self.invalidations = {}  # id -> dict(paths, ref, polls)
        self.creates = []        # (ref, paths) of every POST
        self.fail_next_create = False
        self.gets = []           # GetDistribution ids
        cf = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def reply(self, status, body, extra=()):
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(data)))
                for k, v in extra:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                m = re.match(r"^/2020-05-31/distribution/([A-Z0-9]+)/invalidation$", self.path)
                if not m or "Authorization" not in self.headers:
                    return self.reply(400, "<ErrorResponse><Error><Code>InvalidArgument</Code>"
                                      "</Error></ErrorResponse>")
                root = ET.fromstring(body)
                ref = root.findtext(NS + "CallerReference")
                paths = [p.text for p in root.iter(NS + "Path")]
                with cf.lock:
                    cf.creates.append((ref, paths))
                    existing = [i for i, v in cf.invalidations.items() if v["ref"] == ref]
                    if existing:
                        inv_id = existing[0]
                        if cf.invalidations[inv_id]["paths"] != paths:
                            return self.reply(409, "<ErrorResponse><Error><Code>"
                                              "InvalidationBatchAlreadyExists</Code></Error>"
                                              "</ErrorResponse>")
                    else:
                        inv_id = "I%05d" % (len(cf.invalidations) + 1)
                        cf.invalidations[inv_id] = {"paths": paths, "ref": ref, "polls": 0,
                                                    "dist": m.group(1)}
                    fail = cf.fail_next_create
                    cf.fail_next_create = False
                if fail:  # created, but the answer is lost
                    return self.reply(500, "<ErrorResponse><Error><Code>ServiceUnavailable"
                                      "</Code></Error></ErrorResponse>")
                self.reply(201, cf.xml(inv_id, "InProgress"),
                           [("Location", "http://%s/2020-05-31/distribution/%s/invalidation/%s"
                             % (self.headers.get("Host"), m.group(1), inv_id))])

            def do_GET(self):
                d = re.match(r"^/2020-05-31/distribution/([A-Z0-9]+)$", self.path)
                if d:  # GetDistribution: the origin in front of bucket "site"
                    cf.gets.append(d.group(1))
                    if d.group(1) == "ENOREAD":
                        return self.reply(403, "<ErrorResponse><Error><Code>AccessDenied</Code>"
                                          "</Error></ErrorResponse>")
                    path = {"ESUBPATH": "/sub"}.get(d.group(1), "")
                    return self.reply(200, (
                        '<?xml version="1.0"?><Distribution xmlns="%s"><Id>%s</Id>'
                        "<DistributionConfig><Origins><Quantity>2</Quantity><Items>"
                        "<Origin><Id>api</Id><DomainName>api.example.com</DomainName>"
                        "<OriginPath>/v1</OriginPath></Origin>"
                        "<Origin><Id>s3-site</Id><DomainName>site.s3.us-east-1.amazonaws.com"
                        "</DomainName><OriginPath>%s</OriginPath></Origin></Items></Origins>"
                        "<DefaultCacheBehavior><TargetOriginId>api</TargetOriginId>"
                        "</DefaultCacheBehavior></DistributionConfig></Distribution>")
                        % (NS[1:-1], d.group(1), path))
                m = re.match(r"^/2020-05-31/distribution/([A-Z0-9]+)/invalidation/(\w+)$",
                             self.path)
                with cf.lock:
                    inv = cf.invalidations.get(m.group(2)) if m else None
                    if not inv:
                        return self.reply(404, "<ErrorResponse><Error><Code>NoSuchInvalidation"
                                          "</Code></Error></ErrorResponse>")
                    inv["polls"] += 1
                    # the first invalidation takes two polls (pier keeps polling);
                    # the others complete at the first, to keep the test short
                    need = 2 if m.group(2) == "I00001" else 1
                    status = "Completed" if inv["polls"] >= need else "InProgress"
                self.reply(200, cf.xml(m.group(2), status))

        class S(http.server.ThreadingHTTPServer):
            daemon_threads = True

        self.server = S(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def xml(self, inv_id, status):
        inv = self.invalidations[inv_id]
        items = "".join("<Path>%s</Path>" % p.replace("&", "&amp;").replace("<", "&lt;")
                        for p in inv["paths"])
        return ('<?xml version="1.0" encoding="UTF-8"?>\n<Invalidation xmlns="%s"><Id>%s</Id>'
                '<Status>%s</Status><CreateTime>2024-08-30T12:36:00.000Z</CreateTime>'
                '<InvalidationBatch><Paths><Quantity>%d</Quantity><Items>%s</Items></Paths>'
                '<CallerReference>%s</CallerReference></InvalidationBatch></Invalidation>'
                % (NS[1:-1], inv_id, status, len(inv["paths"]), items, inv["ref"]))

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def touch(site, rel, text=b"<!-- changed -->"):
    with open(os.path.join(site, rel), "ab") as fh:
        fh.write(text)


srv = cf = None
try:
    srv = L.S3rver(TMP, buckets=("site",))
    cf = CloudFront()
    env = L.base_env(TMP)
    site = os.path.join(TMP, "site")
    files = L.make_site(site, seed=5, files=120, big=())
    rules = os.path.join(TMP, "rules.yml")
    with open(rules, "w") as fh:
        fh.write("rewrites:\n  - from: /storybook\n    to: /storybook/index.html\n")
    base = ["deploy", site, "--to", "s3://site/", "--endpoint-url", srv.url, "--cdn",
            "cloudfront://E2ABCDEF", "--cdn-endpoint-url", cf.url, "--rules", rules]

    r, _ = L.pier_json(base, env)
    T.eq(len(cf.invalidations), 1, "first deploy: one invalidation")
    first = cf.invalidations["I00001"]
    T.ok(len(first["paths"]) <= 15, "first deploy: 120 new keys collapse to <= 15 paths: %s"
         % first["paths"])
    T.eq(r["invalidation"]["status"], "Completed", "pier waited until Completed")
    T.ok(first["polls"] >= 2, "GetInvalidation was polled until Completed")

    # index.html and storybook/index.html changed
    touch(site, "index.html")
    touch(site, "storybook/index.html")
    r, _ = L.pier_json(base, env)
    T.eq(len(cf.invalidations), 2, "second deploy: one more invalidation")
    got = cf.invalidations["I00002"]
    T.eq(sorted(got["paths"]),
         sorted(["/", "/index.html", "/storybook", "/storybook/", "/storybook/index.html"]),
         "paths: the pages, their folders and the rewrite's viewer path")
    T.eq(got["ref"], r["invalidation"]["caller_reference"], "CallerReference is the plan's")
    T.eq(r["invalidation"]["id"], "I00002", "--json reports the invalidation id")

    # no-op: nothing sent
    n = len(cf.creates)
    r, _ = L.pier_json(base, env)
    T.eq((len(cf.creates), r["invalidation"]["id"]), (n, None), "no-op deploy: no invalidation")

    # --no-wait: no poll
    touch(site, "about.html")
    r, _ = L.pier_json(base + ["--no-wait"], env)
    inv = cf.invalidations[r["invalidation"]["id"]]
    T.eq((inv["polls"], r["invalidation"]["status"]), (0, "InProgress"),
         "--no-wait: created, never polled")

    # 500 on the first create: the retry reuses the reference; one invalidation
    touch(site, "404.html")
    cf.fail_next_create = True
    n_inv, n_creates = len(cf.invalidations), len(cf.creates)
    r, err = L.pier_json(base, env)
    T.ok(r["ok"], "a 500 on CreateInvalidation is retried")
    new = cf.creates[n_creates:]
    T.eq(len(new), 2, "two CreateInvalidation requests")
    T.ok(len(new) == 2 and new[0] == new[1], "with the same CallerReference and paths")
    T.eq(len(cf.invalidations), n_inv + 1, "and only one invalidation exists")

    # more than 15 paths collapse to wildcards
    docs = [f for f in files if f.startswith("docs/")]
    for f in docs:
        touch(site, f)
    touch(site, "robots.txt", b"# x\n")
    r, _ = L.pier_json(base, env)
    paths = cf.invalidations[r["invalidation"]["id"]]["paths"]
    T.ok(len(docs) > 15, "%d docs pages changed" % len(docs))
    T.ok("/docs/*" in paths and len(paths) <= 15,
         "collapsed to a wildcard within the budget: %s" % paths)
    T.ok("/robots.txt" in paths, "paths outside the collapsed folder are kept")
    r, _ = L.pier_json(base + ["--max-paths", "1", "--dry-run"], env)
    r, _ = L.pier_json(base + ["--max-paths", "1"], env)
    T.eq(r["invalidation"]["paths"], [], "nothing changed: nothing to invalidate")
    touch(site, "index.html")
    touch(site, "data/item-5.json", b" ")
    r, _ = L.pier_json(base + ["--max-paths", "1"], env)
    T.eq(cf.invalidations[r["invalidation"]["id"]]["paths"], ["/*"],
         "--max-paths 1: the root wildcard")

    # the origin path comes from the distribution (GetDistribution)
    sub = os.path.join(TMP, "sub")
    os.makedirs(sub)
    for name in ("index.html", "a.css"):
        with open(os.path.join(sub, name), "w") as fh:
            fh.write("v1 " + name)
    sbase = ["deploy", sub, "--to", "s3://site/sub/", "--endpoint-url", srv.url,
             "--cdn-endpoint-url", cf.url]
    L.pier_json(sbase + ["--cdn", "cloudfront://ESUBPATH"], env)
    touch(sub, "index.html")
    r, _ = L.pier_json(sbase + ["--cdn", "cloudfront://ESUBPATH"], env)
    T.ok("ESUBPATH" in cf.gets, "GetDistribution was asked for the origin path")
    T.eq(sorted(cf.invalidations[r["invalidation"]["id"]]["paths"]), ["/", "/index.html"],
         "origin path /sub: paths relative to it (the S3 origin, not the default one)")
    touch(sub, "index.html")
    r, _ = L.pier_json(sbase + ["--cdn", "cloudfront://ESUBPATH", "--origin-path", "/"], env)
    T.eq(sorted(cf.invalidations[r["invalidation"]["id"]]["paths"]),
         ["/sub", "/sub/", "/sub/index.html"], "--origin-path overrides the distribution")
    touch(sub, "index.html")
    rc, out, err = L.pier(sbase + ["--cdn", "cloudfront://ENOREAD", "--json"], env, check=0)
    T.ok("origin path" in err and "--origin-path" in err,
         "GetDistribution denied: a warning, then the bucket root: " + err.strip()[:200])
    T.eq(sorted(json.loads(out)["invalidation"]["paths"]), ["/sub", "/sub/", "/sub/index.html"],
         "and paths from the bucket root")

    # pier invalidate by hand
    inv_args = ["invalidate", "--cdn", "cloudfront://E2ABCDEF", "--endpoint-url", cf.url]
    rc, out, err = L.pier(inv_args + ["/a b.html", "/docs/*"], env, check=0)
    last = cf.creates[-1]
    T.eq(last[1], ["/a%20b.html", "/docs/*"], "pier invalidate: paths encoded, wildcard kept")
    T.ok("Completed" in out, "pier invalidate waits: " + out.strip())
    rc, out, err = L.pier(inv_args + ["--no-wait", "--caller-reference", "ref-1", "/x"], env,
                          check=0)
    n_inv = len(cf.invalidations)
    rc, out, err = L.pier(inv_args + ["--no-wait", "--caller-reference", "ref-1", "/x", "--json"],
                          env, check=0)
    T.eq(len(cf.invalidations), n_inv, "a reused CallerReference creates nothing new")
    T.eq(json.loads(out)["id"], [k for k, v in cf.invalidations.items() if v["ref"] == "ref-1"][0],
         "and answers with the same invalidation")
    rc, out, err = L.pier(inv_args + ["x"], env)
    T.eq(rc, 2, "a path without '/' is a usage error")
    rc, out, err = L.pier(["invalidate", "/x"], env)
    T.eq(rc, 2, "no --cdn is a usage error")
finally:
    if cf:
        cf.stop()
    if srv:
        srv.stop()
    shutil.rmtree(TMP, ignore_errors=True)

T.finish()
