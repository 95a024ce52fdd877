#!/usr/bin/python3
"""login_storm.py -- keeps pbxgate's login pool busy: C clients, each on its
own keep-alive TLS connection, fetch the login form once (CSRF cookie and
token) and then post the right password again and again for D seconds.
Each post costs the gateway one Argon2id verification at its configured
cost. Used by tests/bench/login_storm.sh; prints one JSON line:
{"seconds", "ok", "busy", "other", "rate"} (rate = successful logins/s).

--ready FILE is created after the first successful login, so that the
caller can start measuring once the storm is really on.
"""

import argparse
import json
import re
import socket
import ssl
import threading
import time
import urllib.parse


def connect(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def read_response(sock, buf):
    """(status, headers dict of lists, body, rest of buffer); Content-Length only."""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("closed")
        buf += data
    head, _, buf = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hs = {}
    for line in lines[1:]:
        n, _, v = line.partition(":")
        hs.setdefault(n.strip().lower(), []).append(v.strip())
    n = int(hs.get("content-length", ["0"])[0])
    while len(buf) < n:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("closed")
        buf += data
    return status, hs, buf[:n], buf[n:]


class Client:
    def __init__(self, port):
        self.port = port
        self.sock = None
        self.buf = b""
        self.cookie = ""

    def request(self, method, path, body=b"", ctype=None):
        if self.sock is None:
            self.sock, self.buf = connect(self.port), b""
        hs = "Host: localhost\r\n"
        if self.cookie:
            hs += "Cookie: %s\r\n" % self.cookie
        if method == "POST":
            hs += "Content-Type: %s\r\nContent-Length: %d\r\n" % (ctype, len(body))
        self.sock.sendall(("%s %s HTTP/1.1\r\n%s\r\n" % (method, path, hs)).encode() + body)
        status, h, b, self.buf = read_response(self.sock, self.buf)
        if any(v.lower() == "close" for v in h.get("connection", [])):
            self.close()
        return status, h, b

    def close(self):
        if self.sock is not None:
            self.sock.close()
        self.sock = None


def worker(args, stop, counts, lock, ready):
    c = Client(args.port)
    body = None
    while not stop.is_set():
        try:
            if body is None:
                status, h, b = c.request("GET", "/_pbxgate/login")
                for sc in h.get("set-cookie", []):
                    if sc.startswith("__Host-pbxgate-csrf="):
                        c.cookie = sc.split(";", 1)[0]
                tok = re.search(rb'name="csrf" value="([0-9a-f]+)"', b).group(1).decode()
                body = urllib.parse.urlencode({"csrf": tok, "rd": "/", "username": args.user,
                                               "password": args.password}).encode()
            status, _, _ = c.request("POST", "/_pbxgate/login", body,
                                     "application/x-www-form-urlencoded")
        except (OSError, ConnectionError, AttributeError, ValueError):
            c.close()
            body = None
            with lock:
                counts["other"] += 1
            time.sleep(0.05)  # do not spin on a refused connection
            continue
        key = "ok" if status == 303 else "busy" if status == 503 else "other"
        with lock:
            counts[key] += 1
        if key == "ok" and args.ready and not ready.is_set():
            ready.set()
            open(args.ready, "w").close()
    c.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--ready")
    args = ap.parse_args()
    stop, ready, lock = threading.Event(), threading.Event(), threading.Lock()
    counts = {"ok": 0, "busy": 0, "other": 0}
    threads = [threading.Thread(target=worker, args=(args, stop, counts, lock, ready),
                                daemon=True) for _ in range(args.clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(args.duration)
    with lock:
        at_stop = dict(counts)  # logins still in flight are not counted
    secs = time.monotonic() - t0
    stop.set()
    for t in threads:
        t.join(30)
    print(json.dumps(dict(at_stop, seconds=round(secs, 2), rate=round(at_stop["ok"] / secs, 2))))


if __name__ == "__main__":
    main()
