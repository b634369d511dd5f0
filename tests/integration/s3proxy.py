#!/usr/bin/python3
"""A small HTTP proxy in front of an S3 endpoint, for the deploy tests and
the deploy benchmark (not a test itself).

- Forwards every request unchanged (Host included, so SigV4 signatures made
  for the proxy's address still verify upstream), one upstream connection
  per client connection.
- Counts requests by method (and PUTs that carry a body), so a benchmark can
  say how many objects a tool uploaded.
- Faults (tests): on the first attempt of every Nth distinct PUT target, it
  answers 503 SlowDown, 500 InternalError, or resets the connection, in
  turn; `hold` blocks the first PUT whose path contains a text until an
  event is set; `delay` sleeps before forwarding each PUT.

As a program: s3proxy.py --upstream PORT [--port 0] [--counts FILE]
prints "listening on PORT" and, on SIGTERM, writes the counts as JSON.
"""
import http.client
import http.server
import json
import signal
import socket
import struct
import sys
import threading
import time

SLOWDOWN = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
            b'<Message>Please reduce your request rate.</Message>'
            b'<RequestId>FAULT</RequestId></Error>')
INTERNAL = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>'
            b'<Message>We encountered an internal error. Please try again.</Message>'
            b'<RequestId>FAULT</RequestId></Error>')
HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
       "proxy-connection"}


class Proxy:
    def __init__(self, upstream_port, fault_every=0, delay=0.0, port=0):
        self.upstream = upstream_port
        self.fault_every = fault_every
        self.delay = delay
        self.lock = threading.Lock()
        self.counts = {}
        self.put_bodies = 0
        self.faults = {"503": 0, "500": 0, "reset": 0}
        self.seen = set()
        self.distinct_puts = 0
        self.hold_text = None
        self.hold_event = threading.Event()
        self.held = threading.Event()
        self.paths = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_any(self):
                proxy.handle(self)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_any

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.hold_event.set()
        self.server.shutdown()
        self.server.server_close()

    def hold(self, text):
        """Blocks the first PUT whose path contains text until release()."""
        self.hold_text = text
        self.hold_event.clear()
        self.held.clear()

    def release(self):
        self.hold_event.set()

    def read_body(self, h):
        n = h.headers.get("Content-Length")
        if n is not None:
            return h.rfile.read(int(n)) if int(n) else b""
        if "chunked" in (h.headers.get("Transfer-Encoding") or "").lower():
            out = b""
            while True:
                size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while h.rfile.readline().strip():
                        pass
                    return out
                out += h.rfile.read(size)
                h.rfile.readline()
        return b""

    def answer(self, h, status, body):
        h.send_response(status)
        h.send_header("Content-Type", "application/xml")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def fault(self, h, method):
        """Which fault this request gets, if any (decided under the lock)."""
        if method != "PUT" or not self.fault_every:
            return None
        with self.lock:
            if h.path in self.seen:
                return None  # a retry: let it through, so the deploy converges
            self.seen.add(h.path)
            self.distinct_puts += 1
            if self.distinct_puts % self.fault_every:
                return None
            kind = ("503", "500", "reset")[(self.distinct_puts // self.fault_every) % 3]
            self.faults[kind] += 1
            return kind

    def handle(self, h):
        method = h.command
        body = self.read_body(h)
        with self.lock:
            self.counts[method] = self.counts.get(method, 0) + 1
            if method == "PUT":
                self.put_bodies += 1
            self.paths.append((method, h.path))
        if method == "PUT" and self.hold_text and self.hold_text in h.path \
                and not self.held.is_set():
            self.held.set()
            self.hold_event.wait(60)
        if method == "PUT" and self.delay:
            time.sleep(self.delay)
        kind = self.fault(h, method)
        if kind == "503":
            return self.answer(h, 503, SLOWDOWN)
        if kind == "500":
            return self.answer(h, 500, INTERNAL)
        if kind == "reset":
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            h.connection.close()
            return
        conn = getattr(h, "_upstream", None)
        for attempt in range(2):
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.upstream, timeout=120)
                h._upstream = conn
            try:
                conn.putrequest(method, h.path, skip_host=True, skip_accept_encoding=True)
                for k, v in h.headers.items():
                    if k.lower() not in HOP and k.lower() != "content-length":
                        conn.putheader(k, v)
                if body or method in ("PUT", "POST"):
                    conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body if body else None)
                resp = conn.getresponse()
                data = resp.read()
                break
            except (http.client.HTTPException, OSError):
                conn.close()
                conn = None
                h._upstream = None
                if attempt:
                    return self.answer(h, 502, INTERNAL)
        h.send_response(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in HOP and k.lower() != "content-length":
                h.send_header(k, v)
        if method != "HEAD":
            h.send_header("Content-Length", str(len(data)))
        elif resp.getheader("Content-Length"):
            h.send_header("Content-Length", resp.getheader("Content-Length"))
        h.end_headers()
        if method != "HEAD" and data:
            h.wfile.write(data)

    def snapshot(self):
        with self.lock:
            return {"counts": dict(self.counts), "puts": self.put_bodies,
                    "faults": dict(self.faults)}


def main():
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", type=int, required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--counts")
    a = ap.parse_args()
    p = Proxy(a.upstream, port=a.port)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    print("listening on %d" % p.port, flush=True)
    done.wait()
    if a.counts:
        with open(a.counts, "w") as fh:
            json.dump(p.snapshot(), fh)
    p.stop()


if __name__ == "__main__":
    sys.exit(main())
