"""test_known_bad.py -- known_bad: a response body whose SHA-256 is on a list
never reaches the client whole, whatever the framing (Content-Length,
chunked, close-delimited, an HTTP/1.0 client); bodies not on the list pass
byte for byte; Range and Content-Encoding cannot deliver a listed body in
parts or encoded; the list reloads; `check` reads the shipped list.

The upstream here serves files from a directory (it must send exact bytes
in each framing on request, which the recording upstream does not do).
"""

import gzip
import hashlib
import http.server
import json
import os
import re
import ssl
import subprocess
import threading

import pytest

from helpers import REPO, body_payload, fetch_until_close, tls_connect, wait_until

SIZE_BIG = 3 * 1024 * 1024 + 17   # beyond the held tail and the high-water mark
SIZE_SMALL = 1000                 # shorter than the held tail


class FileHandler(http.server.BaseHTTPRequestHandler):
    """GET /<any path>/<name>?mode: the file <name> of the server's dir.
    Modes: cl (Content-Length), chunked (in odd-sized chunks), close (no
    length, ends by closing), gzip (Content-Encoding: gzip whatever was
    asked), partial (a 206 of the first 100 bytes whatever was asked)."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        path, _, mode = self.path.partition("?")
        self.server.seen.append({"path": path, "headers": [[k.lower(), v] for k, v in
                                                            self.headers.items()]})
        name = path.rsplit("/", 1)[1]
        try:
            with open(os.path.join(self.server.dir, name), "rb") as f:
                data = f.read()
        except OSError:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if mode == "gzip":
            data = gzip.compress(data)
        if self.command == "HEAD":
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            return
        status = 206 if mode == "partial" else 200
        if mode == "partial":
            data = data[:100]
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        if mode == "gzip":
            self.send_header("Content-Encoding", "gzip")
        if mode == "partial":
            self.send_header("Content-Range", "bytes 0-99/%d" % SIZE_BIG)
        if mode == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            step = 65521
            for i in range(0, len(data), step):
                part = data[i:i + step]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        if mode == "close":
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
            self.close_connection = True
            return
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_HEAD = do_GET


class FileServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, d):
        super().__init__(("127.0.0.1", 0), FileHandler)
        self.dir = d
        self.seen = []


@pytest.fixture(scope="module")
def files(workdir):
    d = os.path.join(workdir, "files")
    os.makedirs(d, exist_ok=True)
    out = {}
    for name, size in (("bad.msi", SIZE_BIG), ("good.msi", SIZE_BIG),
                       ("small-bad.dmg", SIZE_SMALL), ("later-bad.zip", SIZE_BIG)):
        data = os.urandom(size)
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
        out[name] = data
    return d, out


@pytest.fixture(scope="module")
def fileserver(files):
    srv = FileServer(files[0])
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def write_list(path, blobs):
    with open(path, "w") as f:
        for name, data in blobs:
            f.write("# test entry: %s\n%s  %s\n" % (name, hashlib.sha256(data).hexdigest(), name))


@pytest.fixture(scope="module")
def kb_gateway(pbxgate_bin, workdir, certs, files, fileserver):
    from conftest import _finish_gateway
    from helpers import Gateway
    lst = os.path.join(workdir, "test-known-bad.sha256")
    blobs = files[1]
    write_list(lst, [("bad.msi", blobs["bad.msi"]), ("small-bad.dmg", blobs["small-bad.dmg"])])
    audit = os.path.join(workdir, "audit.log")
    gw = Gateway(pbxgate_bin, workdir, [certs.main], fileserver.server_address[1],
                 name="gw-kb", extra=["known_bad %s" % lst,
                                      "known_bad %s/etc/known-bad.sha256" % REPO,
                                      "audit_log %s" % audit],
                 overrides={"upstream_timeout": "20s", "idle_timeout": "20s"})
    gw.list_path = lst
    gw.audit_path = audit
    gw.start()
    yield gw
    _finish_gateway(gw)


def fetch(gw, ctx, target, version="HTTP/1.1", headers=()):
    """One request on a new connection; reads until the gateway closes.
    Returns (status, headers dict, raw body bytes, closed cleanly)."""
    req = "GET %s %s\r\nHost: localhost\r\nConnection: close\r\n" % (target, version)
    for k, v in headers:
        req += "%s: %s\r\n" % (k, v)
    status, hdrs, body, clean = fetch_until_close(gw.port, ctx, (req + "\r\n").encode())
    assert status is not None, "no complete response head: %r" % body[:200]
    return status, hdrs, body, clean


def payload(status, hdrs, body):
    return body_payload(hdrs, body)


FRAMINGS = [("cl", "HTTP/1.1"), ("chunked", "HTTP/1.1"), ("close", "HTTP/1.1"),
            ("cl", "HTTP/1.0"), ("chunked", "HTTP/1.0"), ("close", "HTTP/1.0")]


def audit_events(gw):
    try:
        with open(gw.audit_path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


@pytest.mark.parametrize("mode,version", FRAMINGS)
def test_listed_file_never_arrives_whole(kb_gateway, ctx, files, mode, version):
    data = files[1]["bad.msi"]
    before = kb_gateway.metric("pbxgate_integrity_known_bad_blocked_total") or 0
    status, hdrs, body, clean = fetch(kb_gateway, ctx, "/electron/windows/bad.msi?" + mode,
                                      version)
    assert status == 200
    got, complete = payload(status, hdrs, body)
    assert complete is not True, "the framing says the body is complete"
    assert len(got) < len(data), "the whole file arrived (%d bytes)" % len(got)
    assert len(data) - len(got) >= 16 * 1024, "less than the held tail was withheld"
    assert data.startswith(got), "what arrived is not the file's prefix"
    assert hashlib.sha256(got).digest() != hashlib.sha256(data).digest()
    wait_until(lambda: (kb_gateway.metric("pbxgate_integrity_known_bad_blocked_total") or 0)
               > before, what="the blocked counter to grow")
    ev = [e for e in audit_events(kb_gateway) if e.get("event.action") == "known-bad"
          and e.get("url.path") == "/electron/windows/bad.msi"]
    assert ev and ev[-1]["rule.name"] == "%s:2" % kb_gateway.list_path


@pytest.mark.parametrize("mode,version", FRAMINGS)
def test_unlisted_file_passes_byte_for_byte(kb_gateway, ctx, files, mode, version):
    data = files[1]["good.msi"]
    status, hdrs, body, clean = fetch(kb_gateway, ctx, "/electron/windows/good.msi?" + mode,
                                      version)
    assert status == 200
    got, complete = payload(status, hdrs, body)
    assert complete is not False
    assert got == data
    assert clean


def test_listed_file_shorter_than_the_tail_sends_nothing(kb_gateway, ctx, files):
    # the whole body is the held tail: at most the head leaves before the abort
    s = tls_connect(kb_gateway.port, ctx)
    s.settimeout(30)
    s.sendall(b"GET /electron/osx/small-bad.dmg?cl HTTP/1.1\r\nHost: localhost\r\n\r\n")
    buf = b""
    while True:
        try:
            b = s.recv(65536)
        except (ssl.SSLError, ConnectionResetError, OSError):
            break
        if not b:
            break
        buf += b
    s.close()
    assert files[1]["small-bad.dmg"][:16] not in buf
    head, _, body = buf.partition(b"\r\n\r\n")
    assert body == b""


def test_listed_file_outside_the_covered_paths_is_not_judged(kb_gateway, ctx, files):
    # what the lists cover is a set of paths: documented, and kept narrow
    status, hdrs, body, _ = fetch(kb_gateway, ctx, "/webclient/bad.msi?cl")
    assert status == 200 and body == files[1]["bad.msi"]


@pytest.mark.parametrize("rng", ["bytes=0-99", "bytes=-20000", "bytes=%d-" % (SIZE_BIG - 1),
                                 "bytes=0-10,%d-" % (SIZE_BIG - 100)])
def test_range_is_not_forwarded_on_covered_paths(kb_gateway, ctx, files, fileserver, rng):
    n = len(fileserver.seen)
    status, hdrs, body, _ = fetch(kb_gateway, ctx, "/electron/windows/bad.msi?cl",
                                  headers=[("Range", rng), ("If-Range", '"x"')])
    assert status == 200
    got, complete = payload(status, hdrs, body)
    assert not complete and len(got) < SIZE_BIG
    seen = fileserver.seen[n:]
    assert len(seen) == 1
    names = [k for k, _ in seen[0]["headers"]]
    assert "range" not in names and "if-range" not in names


@pytest.mark.parametrize("ae", ["gzip", "gzip, deflate, br", "br;q=1, identity;q=0"])
def test_identity_asked_for_on_covered_paths(kb_gateway, ctx, fileserver, ae):
    n = len(fileserver.seen)
    status, _, _, _ = fetch(kb_gateway, ctx, "/electron/windows/good.msi?cl",
                            headers=[("Accept-Encoding", ae)])
    assert status == 200
    hs = fileserver.seen[n]["headers"]
    assert [v for k, v in hs if k == "accept-encoding"] == ["identity"]


def test_encoded_answer_on_a_covered_path_is_refused(kb_gateway, ctx):
    # an upstream that compresses anyway: the client would decode the listed file
    status, _, body, _ = fetch(kb_gateway, ctx, "/electron/windows/bad.msi?gzip")
    assert status == 502
    assert b"\x1f\x8b" not in body


def test_partial_answer_on_a_covered_path_is_refused(kb_gateway, ctx):
    status, _, body, _ = fetch(kb_gateway, ctx, "/electron/windows/bad.msi?partial")
    assert status == 502


def test_encoding_outside_covered_paths_untouched(kb_gateway, ctx, fileserver):
    n = len(fileserver.seen)
    status, hdrs, _, _ = fetch(kb_gateway, ctx, "/webclient/good.msi?cl",
                               headers=[("Accept-Encoding", "gzip"), ("Range", "bytes=0-9")])
    assert status == 200
    hs = dict(fileserver.seen[n]["headers"])
    assert hs.get("accept-encoding") == "gzip" and hs.get("range") == "bytes=0-9"


def test_head_on_a_covered_path(kb_gateway, ctx):
    s = tls_connect(kb_gateway.port, ctx)
    s.settimeout(10)
    s.sendall(b"HEAD /electron/windows/bad.msi?cl HTTP/1.1\r\nHost: localhost\r\n"
              b"Connection: close\r\n\r\n")
    buf = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        buf += b
    s.close()
    assert buf.startswith(b"HTTP/1.1 200 ")
    assert buf.endswith(b"\r\n\r\n")
    assert b"\r\ncontent-length: %d\r\n" % SIZE_BIG in buf.lower()


def test_list_reloads(kb_gateway, ctx, files):
    data = files[1]["later-bad.zip"]
    status, hdrs, body, _ = fetch(kb_gateway, ctx, "/electron/osx/later-bad.zip?cl")
    assert body == data
    blobs = files[1]
    write_list(kb_gateway.list_path, [("bad.msi", blobs["bad.msi"]),
                                      ("small-bad.dmg", blobs["small-bad.dmg"]),
                                      ("later-bad.zip", data)])
    kb_gateway.reload()
    status, hdrs, body, _ = fetch(kb_gateway, ctx, "/electron/osx/later-bad.zip?cl")
    got, complete = payload(status, hdrs, body)
    assert not complete and len(got) < len(data)


def test_broken_list_keeps_the_running_one(kb_gateway, ctx, files):
    good = open(kb_gateway.list_path).read()
    with open(kb_gateway.list_path, "a") as f:
        f.write("not-a-hash  x\n")
    try:
        kb_gateway.reload(expect="error")
        status, hdrs, body, _ = fetch(kb_gateway, ctx, "/electron/windows/bad.msi?cl")
        got, complete = payload(status, hdrs, body)
        assert not complete and len(got) < SIZE_BIG
    finally:
        with open(kb_gateway.list_path, "w") as f:
            f.write(good)
        kb_gateway.reload()


def check(pbxgate_bin, conf):
    return subprocess.run([pbxgate_bin, "check", "-c", conf], capture_output=True, text=True,
                          timeout=30)


def test_check_reads_the_shipped_list(pbxgate_bin, kb_gateway):
    r = check(pbxgate_bin, kb_gateway.conf)
    assert r.returncode == 0, r.stderr


def test_check_reports_a_bad_list_line_and_column(pbxgate_bin, workdir, kb_gateway):
    lst = os.path.join(workdir, "broken.sha256")
    with open(lst, "w") as f:
        f.write("# ok\n" + "ab" * 32 + "  fine\n" + "ab" * 31 + "zz  broken\n")
    conf = os.path.join(workdir, "broken.conf")
    with open(conf, "w") as f:
        f.write(open(kb_gateway.conf).read() + "known_bad %s\n" % lst)
    r = check(pbxgate_bin, conf)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert re.search(re.escape(lst) + r":3:63: (error: )?expected the 64 hex digits of a "
                     r"SHA-256, found another character after 62", r.stderr), r.stderr


@pytest.mark.parametrize("line,msg", [
    ("known_bad_paths electron/", 'known_bad_paths: "electron/" is not a path prefix'),
    ("known_bad /nonexistent/list.sha256", "known_bad: /nonexistent/list.sha256: "),
])
def test_check_reports_bad_keywords(pbxgate_bin, workdir, kb_gateway, line, msg):
    conf = os.path.join(workdir, "kw.conf")
    with open(conf, "w") as f:
        f.write(open(kb_gateway.conf).read() + line + "\n")
    r = check(pbxgate_bin, conf)
    assert r.returncode == 1
    assert msg in r.stderr, r.stderr


@pytest.mark.parametrize("target", [
    "/%65lectron/windows/bad.msi?cl",      # percent-encoded letter
    "/ELECTRON/windows/bad.msi?cl",        # case (a Windows PBX serves it)
    "/x/../electron/windows/bad.msi?cl",   # dot segment
    "/./electron/windows/bad.msi?cl",
    "//electron/windows/bad.msi?cl",       # empty segment
    "/electron/windows/bad.msi;x=1?cl",    # path parameter
])
def test_other_spellings_of_a_covered_path(kb_gateway, ctx, fileserver, target):
    # whatever spelling reaches the upstream as a covered path is judged as one
    n = len(fileserver.seen)
    status, hdrs, body, _ = fetch(kb_gateway, ctx, target)
    seen = fileserver.seen[n:]
    if status != 200:
        assert status in (400, 404), status
        return
    got, complete = payload(status, hdrs, body)
    assert not complete and len(got) < SIZE_BIG, (target, seen[0]["path"] if seen else None)
