"""test_integrity.py -- pinned client code (integrity manifest): in enforce
mode a pinned file whose body differs is refused (a small one with the 502
integrity page, a large one cut off before its tail), a file under
integrity_paths that the manifest lacks is refused, and compression, Range
and conditional requests cannot deliver a tampered byte; in monitor mode the
same changes pass and are audited and counted; the manifest reader reports
FILE:LINE:COL.

The upstream is a small mock web client (an entry document, scripts,
styles, a service worker, a web manifest with icons, an installer) served
from memory, so that a test can change one byte of one file.
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

from helpers import body_payload, fetch_until_close, wait_until

INSTALLER = "/electron/windows/3CXDesktopApp-18.12.425.msi"
INSTALLER_SIZE = 50 * 1000 * 1000 + 11   # the 50 MB installer: streamed, tail withheld

INDEX = b"""<!doctype html><html><head><title>Web client</title>
<link rel="stylesheet" href="/webclient/style.css">
<link rel="stylesheet" href="theme.css">
<link rel="manifest" href="/webclient/manifest.json">
<link rel="icon" href="/webclient/icon-192.png">
<script defer src="/webclient/vendor.js"></script>
<script defer src="/webclient/app.js"></script>
</head><body><div id="app">loading</div></body></html>
"""


def site():
    return {
        "/webclient/": ("text/html; charset=utf-8", INDEX),
        "/webclient/style.css": ("text/css", b"body { color: #222 }\n"),
        "/webclient/theme.css": ("text/css", b"#app { font-weight: bold }\n"),
        "/webclient/vendor.js": ("application/javascript", b"window.vendor = 1;\n" * 500),
        "/webclient/app.js": ("application/javascript",
                              b"document.getElementById('app').textContent = 'ready';\n"
                              b"navigator.serviceWorker && navigator.serviceWorker"
                              b".register('/webclient/sw.js');\n"),
        "/webclient/sw.js": ("application/javascript", b"self.addEventListener('fetch', e => {});\n"),
        "/webclient/manifest.json": ("application/manifest+json", json.dumps({
            "name": "Web client", "start_url": "/webclient/",
            "icons": [{"src": "icon-192.png", "sizes": "192x192"},
                      {"src": "/webclient/icon-512.png", "sizes": "512x512"}]}).encode()),
        "/webclient/icon-192.png": ("image/png", b"\x89PNG\r\n\x1a\n" + os.urandom(900)),
        "/webclient/icon-512.png": ("image/png", b"\x89PNG\r\n\x1a\n" + os.urandom(3000)),
        INSTALLER: ("application/octet-stream", os.urandom(INSTALLER_SIZE)),
    }


class SiteHandler(http.server.BaseHTTPRequestHandler):
    """Serves server.files[path] (the query selects a misbehaviour: gzip,
    partial, notmodified, chunked, dies); records each request's headers."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        path, _, mode = self.path.partition("?")
        self.server.seen.append({"path": path, "headers": {k.lower(): v for k, v in
                                                           self.headers.items()}})
        f = self.server.files.get(path)
        if f is None:
            body = b"not here"
            self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        ctype, data = f
        status = 200
        if mode == "gzip":
            data = gzip.compress(data)
        elif mode == "partial":
            status, data = 206, data[:10]
        elif mode == "notmodified" or (mode == "honour" and
                                       "if-none-match" in self.headers):
            self.send_response(304)
            self.send_header("ETag", '"v1"')
            self.end_headers()
            return
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("ETag", '"v1"')
        if mode == "gzip":
            self.send_header("Content-Encoding", "gzip")
        if mode == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if self.command != "HEAD":
                for i in range(0, len(data), 40000):
                    part = data[i:i + 40000]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.write(b"0\r\n\r\n")
            return
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if mode == "dies":      # the PBX fails half-way through the body
            self.wfile.write(data[:len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if self.command != "HEAD":
            self.wfile.write(data)

    do_HEAD = do_GET


class SiteServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), SiteHandler)
        self.genuine = site()
        self.files = dict(self.genuine)
        self.seen = []


def manifest_text(files):
    out = "# pbxgate integrity manifest: SHA256 SIZE PATH CONTENT-TYPE\n"
    for path in sorted(files):
        ctype, data = files[path]
        out += "%s %d %s %s\n" % (hashlib.sha256(data).hexdigest(), len(data), path, ctype)
    return out


@pytest.fixture(scope="module")
def siteserver():
    srv = SiteServer()
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def tamper(siteserver):
    """tamper(path, data): the upstream serves other bytes until the test ends."""
    def change(path, data, ctype=None):
        old = siteserver.genuine.get(path, ("application/javascript", b""))
        siteserver.files[path] = (ctype or old[0], data)
    yield change
    siteserver.files = dict(siteserver.genuine)


def start_gateway(pbxgate_bin, workdir, certs, siteserver, mode):
    from helpers import Gateway
    man = os.path.join(workdir, "integrity-%s.manifest" % mode)
    with open(man, "w") as f:
        f.write(manifest_text(siteserver.genuine))
    audit = os.path.join(workdir, "audit-%s.log" % mode)
    gw = Gateway(pbxgate_bin, workdir, [certs.main], siteserver.server_address[1],
                 name="gw-pin-" + mode,
                 extra=["integrity %s" % man, "integrity_mode %s" % mode,
                        "integrity_paths /webclient/ /electron/",
                        "audit_log %s" % audit],
                 overrides={"upstream_timeout": "20s", "idle_timeout": "20s"})
    gw.manifest = man
    gw.audit_path = audit
    gw.mode = mode
    return gw.start()


@pytest.fixture(scope="module")
def enforce(pbxgate_bin, workdir, certs, siteserver):
    from conftest import _finish_gateway
    gw = start_gateway(pbxgate_bin, workdir, certs, siteserver, "enforce")
    yield gw
    _finish_gateway(gw)


@pytest.fixture(scope="module")
def monitor(pbxgate_bin, workdir, certs, siteserver):
    from conftest import _finish_gateway
    gw = start_gateway(pbxgate_bin, workdir, certs, siteserver, "monitor")
    yield gw
    _finish_gateway(gw)


def fetch(gw, ctx, target, method="GET", headers=()):
    """One request on a new connection, read until the gateway closes:
    (status, headers, raw body, closed cleanly)."""
    req = "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n" % (method, target)
    for k, v in headers:
        req += "%s: %s\r\n" % (k, v)
    status, hdrs, body, clean = fetch_until_close(gw.port, ctx, (req + "\r\n").encode())
    return (status, hdrs, body, clean) if status is not None else (None, {}, b"", clean)


def payload(hdrs, body):
    return body_payload(hdrs, body)


def audit_events(gw, decision):
    try:
        with open(gw.audit_path) as f:
            evs = [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []
    return [e for e in evs if e.get("event.action") == decision]


def metric(gw, cls, mode=None):
    return gw.metric("pbxgate_integrity_mismatch_total",
                     'class="%s",mode="%s"' % (cls, mode or gw.mode)) or 0


def assert_integrity_page(status, hdrs, body, reqid_pattern=r"[A-Za-z0-9_-]+"):
    assert status == 502
    rid = hdrs.get("x-request-id")
    assert rid and re.fullmatch(reqid_pattern, rid)
    assert b'<code id="reference">' + rid.encode() + b"</code>" in body
    assert b"This file was blocked" in body


PATHS = sorted(site())


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("mode", ["", "chunked"])
def test_genuine_files_pass_byte_for_byte(enforce, ctx, siteserver, path, mode):
    status, hdrs, body, clean = fetch(enforce, ctx, path + ("?" + mode if mode else ""))
    assert status == 200
    got, complete = payload(hdrs, body)
    assert complete and got == siteserver.genuine[path][1]
    assert clean


def flip(data, at):
    b = bytearray(data)
    b[at] ^= 0x01
    return bytes(b)


@pytest.mark.parametrize("how", ["first-byte", "middle-byte", "last-byte", "appended",
                                 "truncated", "empty", "much-longer"])
@pytest.mark.parametrize("mode", ["", "chunked"])
def test_changed_script_gets_the_page(enforce, ctx, tamper, siteserver, how, mode):
    genuine = siteserver.genuine["/webclient/app.js"][1]
    evil = {"first-byte": flip(genuine, 0), "middle-byte": flip(genuine, len(genuine) // 2),
            "last-byte": flip(genuine, -1), "appended": genuine + b"window.pwned=1;",
            "truncated": genuine[:-1], "empty": b"",
            "much-longer": genuine + b"/*" + b"x" * (5 << 20) + b"*/"}[how]
    tamper("/webclient/app.js", evil)
    before = metric(enforce, "changed")
    status, hdrs, body, _ = fetch(enforce, ctx, "/webclient/app.js" + ("?" + mode if mode else ""))
    assert_integrity_page(status, hdrs, body)
    assert genuine[:40] not in body
    wait_until(lambda: metric(enforce, "changed") > before, what="the changed counter")
    ev = audit_events(enforce, "integrity-refused")
    assert ev and ev[-1]["url.path"] == "/webclient/app.js"
    assert ev[-1]["rule.name"].startswith(enforce.manifest + ":")
    assert ev[-1]["http.request.id"] == hdrs["x-request-id"]


def test_upstream_failing_mid_held_body_is_a_502(enforce, ctx):
    """Enforce holds a small pinned body whole with its head: when the PBX
    fails half-way, nothing has reached the client, which gets a 502
    rather than a cut connection."""
    status, hdrs, body, clean = fetch(enforce, ctx, "/webclient/app.js?dies")
    assert status == 502, (status, hdrs)
    assert b"window" not in body
    assert clean


def test_upstream_failing_mid_body_in_monitor_cuts_the_transfer(monitor, ctx, siteserver):
    """Monitor sends the head before the body is judged: a PBX failing
    half-way cuts the transfer (a reset, which may also discard the head
    the client had not read yet), as without pinning; never a whole file."""
    genuine = siteserver.genuine["/webclient/app.js"][1]
    status, hdrs, body, clean = fetch(monitor, ctx, "/webclient/app.js?dies")
    assert status in (None, 200), (status, hdrs)
    assert genuine not in body
    assert not clean or len(body) < len(genuine)


def test_new_script_is_refused_without_asking_upstream(enforce, ctx, tamper, siteserver):
    tamper("/webclient/new.js", b"window.pwned = 1;\n")
    n = len(siteserver.seen)
    before = metric(enforce, "unpinned")
    status, hdrs, body, _ = fetch(enforce, ctx, "/webclient/new.js")
    assert_integrity_page(status, hdrs, body)
    assert b"pwned" not in body
    assert not [s for s in siteserver.seen[n:] if s["path"] == "/webclient/new.js"]
    wait_until(lambda: metric(enforce, "unpinned") > before, what="the unpinned counter")
    ev = audit_events(enforce, "integrity-unpinned-refused")
    assert ev and ev[-1]["url.path"] == "/webclient/new.js"


@pytest.mark.parametrize("target", ["/WEBCLIENT/app.js", "/webclient/App.js",
                                    "/webclient/%61pp2.js", "/webclient/x/../new.js"])
def test_other_spellings_are_judged(enforce, ctx, tamper, target):
    tamper("/webclient/new.js", b"window.pwned = 1;\n")
    tamper("/webclient/app2.js", b"window.pwned = 1;\n")
    status, hdrs, body, _ = fetch(enforce, ctx, target)
    assert b"pwned" not in body
    assert status in (502, 404, 400), status


def test_file_outside_integrity_paths_passes(enforce, ctx, tamper):
    tamper("/api/status", b'{"ok":true}', "application/json")
    status, _, body, _ = fetch(enforce, ctx, "/api/status")
    assert status == 200 and body == b'{"ok":true}'


@pytest.mark.parametrize("mode", ["", "chunked"])
def test_installer_with_last_byte_flipped_arrives_incomplete(enforce, ctx, tamper,
                                                              siteserver, mode):
    genuine = siteserver.genuine[INSTALLER][1]
    evil = flip(genuine, -1)
    tamper(INSTALLER, evil)
    status, hdrs, body, _ = fetch(enforce, ctx, INSTALLER + ("?" + mode if mode else ""))
    assert status == 200
    got, complete = payload(hdrs, body)
    assert complete is False
    assert len(evil) - len(got) >= 16 * 1024
    assert evil.startswith(got)
    assert hashlib.sha256(got).digest() != hashlib.sha256(evil).digest()
    ev = audit_events(enforce, "integrity-refused")
    assert ev and ev[-1]["url.path"] == INSTALLER


@pytest.mark.parametrize("path", ["/webclient/app.js", INSTALLER])
def test_compressed_answer_is_refused(enforce, ctx, siteserver, path):
    # the upstream compresses although identity was asked for: the client
    # would decode bytes that were never judged
    n = len(siteserver.seen)
    status, _, body, _ = fetch(enforce, ctx, path + "?gzip",
                               headers=[("Accept-Encoding", "gzip, br")])
    assert status == 502
    assert b"\x1f\x8b" not in body
    assert siteserver.seen[n]["headers"].get("accept-encoding") == "identity"


@pytest.mark.parametrize("rng", ["bytes=0-9", "bytes=-1", "bytes=100-", "bytes=0-1,5-9"])
def test_range_is_served_from_a_verified_whole(enforce, ctx, siteserver, rng):
    n = len(siteserver.seen)
    status, hdrs, body, _ = fetch(enforce, ctx, "/webclient/vendor.js",
                                  headers=[("Range", rng), ("If-Range", '"v1"')])
    assert status == 200 and body == siteserver.genuine["/webclient/vendor.js"][1]
    seen = siteserver.seen[n]["headers"]
    assert "range" not in seen and "if-range" not in seen


def test_partial_answer_is_refused(enforce, ctx):
    status, _, _, _ = fetch(enforce, ctx, "/webclient/vendor.js?partial",
                            headers=[("Range", "bytes=0-9")])
    assert status == 502


@pytest.mark.parametrize("hdr", [("If-None-Match", '"v1"'),
                                 ("If-Modified-Since", "Sat, 01 Jan 2000 00:00:00 GMT"),
                                 ("If-Match", '"v1"'),
                                 ("If-Unmodified-Since", "Sat, 01 Jan 2000 00:00:00 GMT")])
def test_conditionals_are_not_forwarded(enforce, ctx, siteserver, hdr):
    n = len(siteserver.seen)
    status, _, body, _ = fetch(enforce, ctx, "/webclient/app.js?honour", headers=[hdr])
    assert status == 200 and body == siteserver.genuine["/webclient/app.js"][1]
    assert hdr[0].lower() not in siteserver.seen[n]["headers"]


def test_not_modified_anyway_is_refused(enforce, ctx):
    status, _, _, _ = fetch(enforce, ctx, "/webclient/app.js?notmodified")
    assert status == 502


def test_head_of_a_changed_file_sends_no_body(enforce, ctx, tamper, siteserver):
    tamper("/webclient/app.js", b"window.pwned = 1;\n")
    status, hdrs, body, _ = fetch(enforce, ctx, "/webclient/app.js", method="HEAD")
    assert status == 200 and body == b""


@pytest.mark.parametrize("path,evil", [
    ("/webclient/app.js", b"window.pwned = 1;\n"),
    (INSTALLER, None),
])
def test_monitor_passes_changed_files_and_audits_them(monitor, ctx, tamper, siteserver,
                                                      path, evil):
    evil = evil if evil is not None else flip(siteserver.genuine[path][1], -1)
    tamper(path, evil)
    before = metric(monitor, "changed")
    status, hdrs, body, _ = fetch(monitor, ctx, path)
    assert status == 200
    got, complete = payload(hdrs, body)
    assert complete and got == evil
    wait_until(lambda: metric(monitor, "changed") > before, what="the changed counter")
    ev = audit_events(monitor, "integrity-mismatch")
    assert ev and ev[-1]["url.path"] == path and ev[-1]["pbxgate.integrity.mode"] == "monitor"
    assert ev[-1]["file.hash.sha256"] == hashlib.sha256(evil).hexdigest()


def test_monitor_passes_new_files_and_audits_them(monitor, ctx, tamper):
    tamper("/webclient/new.js", b"window.pwned = 1;\n")
    before = metric(monitor, "unpinned")
    status, _, body, _ = fetch(monitor, ctx, "/webclient/new.js")
    assert status == 200 and body == b"window.pwned = 1;\n"
    wait_until(lambda: metric(monitor, "unpinned") > before, what="the unpinned counter")
    assert audit_events(monitor, "integrity-unpinned")[-1]["url.path"] == "/webclient/new.js"


def test_checked_counter_by_mode(enforce, monitor, ctx):
    for gw in (enforce, monitor):
        before = gw.metric("pbxgate_integrity_pinned_checked_total",
                           'mode="%s"' % gw.mode) or 0
        status, _, _, _ = fetch(gw, ctx, "/webclient/style.css")
        assert status == 200
        wait_until(lambda: (gw.metric("pbxgate_integrity_pinned_checked_total",
                                      'mode="%s"' % gw.mode) or 0) > before,
                   what="the checked counter")


def test_mode_and_manifest_reload(monitor, ctx, tamper, siteserver):
    tamper("/webclient/app.js", b"window.pwned = 1;\n")
    conf = open(monitor.conf).read()
    try:
        with open(monitor.conf, "w") as f:
            f.write(conf.replace("integrity_mode monitor", "integrity_mode enforce"))
        monitor.reload()
        status, _, body, _ = fetch(monitor, ctx, "/webclient/app.js")
        assert status == 502 and b"pwned" not in body
        # the re-recorded manifest pins the new file: it passes
        files = dict(siteserver.genuine)
        files["/webclient/app.js"] = siteserver.files["/webclient/app.js"]
        good = open(monitor.manifest).read()
        with open(monitor.manifest, "w") as f:
            f.write(manifest_text(files))
        monitor.reload()
        status, _, body, _ = fetch(monitor, ctx, "/webclient/app.js")
        assert status == 200 and body == b"window.pwned = 1;\n"
    finally:
        with open(monitor.conf, "w") as f:
            f.write(conf)
        with open(monitor.manifest, "w") as f:
            f.write(good)
        monitor.reload()


def check(pbxgate_bin, conf):
    return subprocess.run([pbxgate_bin, "check", "-c", conf], capture_output=True, text=True,
                          timeout=30)


H = "ab" * 32


@pytest.mark.parametrize("line,where,msg", [
    ("AB" * 32 + " 1 /a x", "1:1", "expected the 64 lower-case hex digits of a SHA-256, "
                                   "found another character after 0"),
    ("ab" * 31 + " 1 /a x", "1:63", "found another character after 62"),
    ("ab" * 31, "1:63", "found the line's end after 62"),
    (H + "  1 /a x", "1:66", "expected the size in bytes"),
    (H + "\t1 /a x", "1:65", "expected one space and the size after the hash"),
    (H + " 01 /a x", "1:66", "without leading zeros"),
    (H + " 1x /a x", "1:67", "the size must be a decimal number"),
    (H + " 99999999999999999999 /a x", "1:", "the size must be"),
    (H + " 1 a x", "1:68", "expected one space and the path"),
    (H + " 1 /a\x01b x", "1:68", "expected one space and the path"),
    (H + " 1 /a", "1:70", "expected one space and the content type"),
    (H + " 1 /a ", "1:70", "expected one space and the content type"),
    (H + " 1 /a text/\x7f", "1:76", "control or non-ASCII byte"),
    (H + " 1 /a x\ry", "1:72", "control or non-ASCII byte"),
    (H + " 1 /a x\n" + H + " 2 /A y", "2:1", "path listed twice (also at line 1)"),
    (H + " 1 /a x\x00", "1:72", "NUL byte"),
])
def test_check_reports_manifest_errors(pbxgate_bin, workdir, enforce, line, where, msg):
    man = os.path.join(workdir, "broken.manifest")
    with open(man, "w", newline="") as f:
        f.write(line + "\n")
    conf = os.path.join(workdir, "broken.conf")
    with open(conf, "w") as f:
        f.write(open(enforce.conf).read().replace(enforce.manifest, man))
    r = check(pbxgate_bin, conf)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert re.search(re.escape(man + ":" + where) + r"[0-9]*: .*" + re.escape(msg),
                     r.stderr), r.stderr


@pytest.mark.parametrize("line,msg", [
    ("integrity_mode block", '"block" is not a mode: expected monitor or enforce'),
    ("integrity_paths webclient/", '"webclient/" is not a path prefix'),
    ("integrity /nonexistent/manifest", "integrity: /nonexistent/manifest: "),
    ("integrity_entry webclient/", 'integrity_entry: "webclient/": path does not start'),
    ("integrity_download /a/%2F", 'integrity_download: "/a/%2F": encoded \'/\' (%2F)'),
])
def test_check_reports_bad_keywords(pbxgate_bin, workdir, enforce, line, msg):
    conf = os.path.join(workdir, "kw.conf")
    kw = line.split()[0]
    with open(conf, "w") as f:
        f.write("\n".join(l for l in open(enforce.conf).read().splitlines()
                          if l.split()[:1] != [kw]) + "\n" + line + "\n")
    r = check(pbxgate_bin, conf)
    assert r.returncode == 1
    assert msg in r.stderr, r.stderr


def test_check_accepts_the_manifest(pbxgate_bin, enforce):
    r = check(pbxgate_bin, enforce.conf)
    assert r.returncode == 0, r.stderr


def test_check_accepts_a_manifest_with_crlf_lines(pbxgate_bin, workdir, enforce):
    """An editor on Windows writes CRLF; list files (known_bad lists too)
    read one line ending, whichever it is."""
    man = os.path.join(workdir, "crlf.manifest")
    with open(enforce.manifest, newline="") as src, open(man, "w", newline="") as f:
        f.write(src.read().replace("\n", "\r\n"))
    conf = os.path.join(workdir, "crlf.conf")
    with open(conf, "w") as f:
        f.write(open(enforce.conf).read().replace(enforce.manifest, man))
    r = check(pbxgate_bin, conf)
    assert r.returncode == 0, r.stderr


def test_integrity_paths_without_a_manifest(pbxgate_bin, workdir, enforce):
    conf = os.path.join(workdir, "nomanifest.conf")
    with open(conf, "w") as f:
        f.write("\n".join(l for l in open(enforce.conf).read().splitlines()
                          if not l.startswith("integrity ")) + "\n")
    r = check(pbxgate_bin, conf)
    assert r.returncode == 1
    assert "integrity_paths without an integrity manifest" in r.stderr, r.stderr


# ---- pbxgate integrity record / diff ---------------------------------------

RECORD_LINES = ["integrity_entry /webclient/",
                "integrity_entry /webclient/sw.js",   # registered from a script
                "integrity_download " + INSTALLER]


def record_conf(gw, workdir, name, extra=()):
    conf = os.path.join(workdir, name)
    with open(conf, "w") as f:
        f.write(open(gw.conf).read() + "\n".join(RECORD_LINES + list(extra)) + "\n")
    return conf


def run_cli(pbxgate_bin, *args):
    return subprocess.run([pbxgate_bin] + list(args), capture_output=True, text=True,
                          timeout=120)


def entries(text):
    return [l for l in text.splitlines() if l and not l.startswith("#")]


def test_record_finds_every_file(pbxgate_bin, workdir, enforce, siteserver):
    conf = record_conf(enforce, workdir, "record.conf")
    out = os.path.join(workdir, "recorded.manifest")
    r = run_cli(pbxgate_bin, "integrity", "record", "-c", conf, "-o", out)
    assert r.returncode == 0, r.stderr
    assert entries(open(out).read()) == entries(manifest_text(siteserver.genuine))
    assert oct(os.stat(out).st_mode & 0o777) == "0o644"


@pytest.fixture(scope="module")
def tls_siteserver(certs):
    """The same web client served over https with the `main` certificate
    (localhost, 127.0.0.1): a PBX is usually reached that way."""
    srv = SiteServer()
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(*certs.main)
    srv.socket = tls.wrap_socket(srv.socket, server_side=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def https_record_conf(gw, workdir, name, port, ca):
    conf = record_conf(gw, workdir, name)
    text = "".join("upstream https://127.0.0.1:%d\nupstream_ca %s\n" % (port, ca)
                   if l.startswith("upstream ") else l
                   for l in open(conf).read().splitlines(keepends=True))
    with open(conf, "w") as f:
        f.write(text)
    return conf


def test_record_over_https_verifies_the_upstream(pbxgate_bin, workdir, enforce, certs,
                                                 tls_siteserver):
    conf = https_record_conf(enforce, workdir, "https.conf",
                             tls_siteserver.server_address[1], certs.main[0])
    out = os.path.join(workdir, "https.manifest")
    r = run_cli(pbxgate_bin, "integrity", "record", "-c", conf, "-o", out)
    assert r.returncode == 0, r.stderr
    assert entries(open(out).read()) == entries(manifest_text(tls_siteserver.genuine))


def test_record_over_https_refuses_an_untrusted_upstream(pbxgate_bin, workdir, enforce,
                                                         certs, tls_siteserver):
    port = tls_siteserver.server_address[1]
    conf = https_record_conf(enforce, workdir, "https-alt.conf", port, certs.alt[0])
    out = os.path.join(workdir, "never-https.manifest")
    r = run_cli(pbxgate_bin, "integrity", "record", "-c", conf, "-o", out)
    assert r.returncode == 1
    assert "GET https://127.0.0.1:%d/webclient/: " % port in r.stderr, r.stderr
    assert "certificate" in r.stderr.lower(), r.stderr
    assert not os.path.exists(out)


def test_diff_of_an_unchanged_pbx_is_empty(pbxgate_bin, workdir, enforce):
    conf = record_conf(enforce, workdir, "diff.conf")
    r = run_cli(pbxgate_bin, "integrity", "diff", "-c", conf)
    assert (r.returncode, r.stdout) == (0, ""), r.stderr


def test_diff_output_after_an_update(pbxgate_bin, workdir, enforce, siteserver, tamper):
    g = siteserver.genuine
    new_app = b"window.app = 2;\n"
    tamper("/webclient/app.js", new_app)
    tamper("/webclient/new.js", b"window.added = 1;\n")
    tamper("/webclient/", g["/webclient/"][1].replace(
        b'<script defer src="/webclient/vendor.js"></script>', b'<script src="new.js"></script>'))
    man = json.loads(g["/webclient/manifest.json"][1])
    man["icons"] = man["icons"][1:]     # icon-192 stays: the index links it
    tamper("/webclient/manifest.json", json.dumps(man).encode())
    conf = record_conf(enforce, workdir, "diff2.conf")
    r = run_cli(pbxgate_bin, "integrity", "diff", "-c", conf)
    assert r.returncode == 1, r.stderr

    def line(sign, path, data):
        return "%s %s %d %s" % (sign, path, len(data), hashlib.sha256(data).hexdigest())
    index = siteserver.files["/webclient/"][1]
    mj = siteserver.files["/webclient/manifest.json"][1]
    assert r.stdout.splitlines() == [
        line("~", "/webclient/", g["/webclient/"][1]) + " -> " + line("", "/webclient/", index).split(" ", 2)[2],
        line("~", "/webclient/app.js", g["/webclient/app.js"][1]) + " -> " +
        line("", "/webclient/app.js", new_app).split(" ", 2)[2],
        line("~", "/webclient/manifest.json", g["/webclient/manifest.json"][1]) + " -> " +
        line("", "/webclient/manifest.json", mj).split(" ", 2)[2],
        line("+", "/webclient/new.js", b"window.added = 1;\n"),
        line("-", "/webclient/vendor.js", g["/webclient/vendor.js"][1]),
    ]


def test_record_fails_whole_on_a_missing_file(pbxgate_bin, workdir, enforce):
    conf = record_conf(enforce, workdir, "missing.conf", ["integrity_entry /webclient/gone.html"])
    out = os.path.join(workdir, "never.manifest")
    r = run_cli(pbxgate_bin, "integrity", "record", "-c", conf, "-o", out)
    assert r.returncode == 1
    assert "GET http://127.0.0.1:%d/webclient/gone.html: status 404" % \
        enforce.upstream_port in r.stderr
    assert not os.path.exists(out)


@pytest.mark.parametrize("args,rc", [
    (["integrity", "record", "--help"], 0),
    (["integrity", "diff", "--help"], 0),
    (["integrity", "--help"], 0),
    (["integrity", "record"], 2),
    (["integrity", "record", "-o"], 2),
    (["integrity", "diff", "extra"], 2),
    (["integrity", "frobnicate"], 2),
])
def test_integrity_command_usage(pbxgate_bin, enforce, args, rc):
    r = run_cli(pbxgate_bin, *(args + ["-c", enforce.conf] if "--help" not in args else args))
    assert r.returncode == rc, (r.stdout, r.stderr)
    if rc == 0:
        assert "usage: pbxgate integrity" in r.stdout


# ---- a real browser --------------------------------------------------------

def browser_load(gw):
    from test_browser import BROWSER_DIR, _require
    _require()
    p = subprocess.run(["node", os.path.join(BROWSER_DIR, "integrity.mjs"),
                        "https://localhost:%d/webclient/" % gw.port],
                       cwd=BROWSER_DIR, capture_output=True, timeout=120)
    out = p.stdout.decode("utf-8", "replace").strip().splitlines()
    assert out, "integrity.mjs printed nothing; stderr:\n%s" % p.stderr.decode()[-3000:]
    res = json.loads(out[-1])
    assert res["ok"], res
    return res


def test_browser_runs_the_genuine_client(enforce):
    res = browser_load(enforce)
    assert res["app"] == "ready" and not res["pwned"], res
    for path in ("/webclient/", "/webclient/app.js", "/webclient/vendor.js",
                 "/webclient/style.css", "/webclient/theme.css"):
        assert res["responses"].get(path) == 200, res


def test_browser_never_runs_a_tampered_script(enforce, tamper, siteserver):
    genuine = siteserver.genuine["/webclient/app.js"][1]
    tamper("/webclient/app.js", b"window.pwned = 1;\n" + genuine)
    res = browser_load(enforce)
    assert res["responses"].get("/webclient/app.js") == 502, res
    assert not res["pwned"] and res["app"] == "loading", res


def test_browser_in_monitor_runs_it(monitor, tamper, siteserver):
    # the contrast: the marker is the tampered script's, and monitor lets it run
    genuine = siteserver.genuine["/webclient/app.js"][1]
    tamper("/webclient/app.js", b"window.pwned = 1;\n" + genuine)
    res = browser_load(monitor)
    assert res["pwned"] and res["app"] == "ready", res


def manifest_line(gw, path):
    """FILE:LINE of path's pin in the gateway's manifest."""
    with open(gw.manifest) as f:
        for no, line in enumerate(f, 1):
            if path in line.split():
                return "%s:%d" % (gw.manifest, no)
    raise AssertionError("%s not in %s" % (path, gw.manifest))


def integrity_record(action, outcome, path, rid, rule, size, mode="enforce"):
    return {"event.dataset": "pbxgate.audit", "event.module": "integrity",
            "event.action": action, "event.outcome": outcome, "source.ip": "127.0.0.1",
            "client.ip": "127.0.0.1", "user.name": "", "http.request.id": rid,
            "http.request.method": "GET", "url.path": path, "rule.name": rule,
            "pbxgate.integrity.mode": mode, "file.size": size}


def test_audit_record_of_a_refused_script(enforce, ctx, tamper, siteserver):
    """Every field of the integrity-refused record (docs/logging.md)."""
    evil = flip(siteserver.genuine["/webclient/app.js"][1], 7)
    tamper("/webclient/app.js", evil)
    status, hdrs, _, _ = fetch(enforce, ctx, "/webclient/app.js")
    assert status == 502
    rid = hdrs["x-request-id"]
    rec = wait_until(lambda: [e for e in audit_events(enforce, "integrity-refused")
                              if e["http.request.id"] == rid], what="the record")[0]
    want = integrity_record("integrity-refused", "failure", "/webclient/app.js", rid,
                            manifest_line(enforce, "/webclient/app.js"), len(evil))
    want["file.hash.sha256"] = hashlib.sha256(evil).hexdigest()
    assert {k: v for k, v in rec.items() if k != "@timestamp"} == want, rec


def test_audit_record_of_a_refused_unpinned_file(enforce, ctx, tamper):
    """An unpinned file is refused before its body: no hash, size 0, no
    manifest line."""
    tamper("/webclient/unpinned-audit.js", b"window.pwned = 1;\n")
    status, hdrs, _, _ = fetch(enforce, ctx, "/webclient/unpinned-audit.js")
    assert status == 502
    rid = hdrs["x-request-id"]
    rec = wait_until(lambda: [e for e in audit_events(enforce, "integrity-unpinned-refused")
                              if e["http.request.id"] == rid], what="the record")[0]
    assert {k: v for k, v in rec.items() if k != "@timestamp"} == integrity_record(
        "integrity-unpinned-refused", "failure", "/webclient/unpinned-audit.js", rid,
        "(default)", 0), rec
