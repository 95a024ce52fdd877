"""helpers.py -- clients and small tools shared by the pbxgate integration tests.

Everything here is test code: a raw TLS client that can send arbitrary bytes,
a minimal HTTP/1.1 response reader (Content-Length, chunked, close-delimited),
WebSocket framing, bounded polling, and the gateway/upstream process wrappers.
"""

import base64
import hashlib
import json
import os
import re
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
PYTHON = "/usr/bin/python3"
IO_TIMEOUT = 10.0


class Timeout(AssertionError):
    pass


class Fatal(AssertionError):
    """Raised by a wait_until predicate to stop polling at once (e.g. the
    process being waited for has exited)."""


def wait_until(pred, timeout=10.0, interval=0.02, what="condition"):
    """Polls pred() until it returns a truthy value; bounded by timeout."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            v = pred()
            if v:
                return v
        except Fatal:
            raise
        except Exception as e:  # noqa: BLE001 - keep polling, report the last
            last_exc = e
        time.sleep(interval)
    raise Timeout("timed out after %.1fs waiting for %s (last error: %r)"
                  % (timeout, what, last_exc))


_ports_given = set()


def free_port():
    """A port free now and not handed out before by this process: the
    kernel may give the same port to two binds in a row once the first
    socket is closed, and a configuration whose listen and admin_listen
    (or smtp_listen) got one port refuses itself (bounded retries)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            _ports_given.add(port)
            return port
    raise RuntimeError("free_port: no unused port in 100 tries")


def free_ports(n):
    """n different free ports."""
    return [free_port() for _ in range(n)]


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def pattern(n):
    """The deterministic bytes the upstream sends for /bytes/N and /chunked/N."""
    block = bytes(range(256)) * 256
    return (block * (n // len(block) + 1))[:n]


# ---------------------------------------------------------------- TLS client

def mkcert(d, name="main", cn="localhost", kind="ec"):
    """A self-signed certificate and key in d (kept if already there):
    ECDSA P-256 or RSA 2048, CN and SAN cn (and 127.0.0.1 for localhost)."""
    cert = os.path.join(d, name + ".pem")
    key = os.path.join(d, name + ".key")
    if os.path.exists(cert) and os.path.exists(key):
        return cert, key
    newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"] if kind == "ec" \
        else ["-newkey", "rsa:2048"]
    san = "subjectAltName=DNS:%s" % cn + (",IP:127.0.0.1" if cn == "localhost" else "")
    subprocess.run(["openssl", "req", "-x509"] + newkey +
                   ["-nodes", "-keyout", key, "-out", cert, "-days", "3",
                    "-subj", "/CN=%s" % cn, "-addext", san,
                    "-addext", "basicConstraints=critical,CA:TRUE"],
                   check=True, capture_output=True, timeout=60)
    os.chmod(key, 0o600)
    return cert, key


def client_context(cafile, minv=None, maxv=None, alpn=None):
    ctx = ssl.create_default_context(cafile=cafile)
    if minv is not None:
        ctx.minimum_version = minv
    if maxv is not None:
        ctx.maximum_version = maxv
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def tls_connect(port, ctx, server_name="localhost", host="127.0.0.1", timeout=IO_TIMEOUT):
    raw = socket.create_connection((host, port), timeout=timeout)
    try:
        return ctx.wrap_socket(raw, server_hostname=server_name)
    except Exception:
        raw.close()
        raise


def fetch_until_close(port, ctx, request, timeout=30):
    """Sends one raw request on a new TLS connection and reads until the
    gateway closes: (status or None without a whole head, headers with
    lower-case names, raw body, whether it closed cleanly)."""
    s = tls_connect(port, ctx)
    s.settimeout(timeout)
    s.sendall(request)
    buf = bytearray()
    clean = True
    while True:
        try:
            b = s.recv(1 << 16)
        except (ssl.SSLError, ConnectionResetError, socket.timeout, OSError):
            clean = False
            break
        if not b:
            break
        buf += b
    s.close()
    head, sep, body = bytes(buf).partition(b"\r\n\r\n")
    if not sep:
        return None, {}, bytes(buf), clean
    lines = head.decode("latin-1").split("\r\n")
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), hdrs, body, clean


def dechunk(body):
    """A chunked body's payload, and whether its zero-size last chunk
    arrived."""
    out, i = bytearray(), 0
    while True:
        j = body.find(b"\r\n", i)
        if j < 0:
            return bytes(out), False
        size = int(body[i:j], 16)
        if size == 0:
            return bytes(out), body[j:j + 4] == b"\r\n\r\n"
        out += body[j + 2:j + 2 + size]
        if len(body) < j + 2 + size + 2:
            return bytes(out), False
        i = j + 2 + size + 2


def body_payload(hdrs, body):
    """(payload, complete?) by the answer's framing; None for a
    close-delimited body, whose end the client cannot tell."""
    if hdrs.get("transfer-encoding") == "chunked":
        return dechunk(body)
    if "content-length" in hdrs:
        return body, len(body) == int(hdrs["content-length"])
    return body, None


class Response:
    def __init__(self, version, status, reason, headers, body):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value)
        self.body = body

    def get(self, name):
        vals = self.get_all(name)
        return vals[0] if vals else None

    def get_all(self, name):
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Response %d %r headers=%r body[:80]=%r>" % (
            self.status, self.reason, self.headers, self.body[:80])


class ConnectionClosed(Exception):
    pass


class Reader:
    """Buffered reader over a (TLS) socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.eof = False

    def _fill(self):
        if self.eof:
            raise ConnectionClosed("peer closed")
        try:
            data = self.sock.recv(262144)
        except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            data = b""
        if not data:
            self.eof = True
            raise ConnectionClosed("peer closed")
        self.buf += data

    def readline(self, limit=65536):
        while b"\n" not in self.buf:
            if len(self.buf) > limit:
                raise AssertionError("response line too long")
            self._fill()
        line, _, self.buf = self.buf.partition(b"\n")
        assert line.endswith(b"\r"), "response line without CRLF: %r" % line[:80]
        return line[:-1]

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_to_eof(self):
        while True:
            try:
                self._fill()
            except ConnectionClosed:
                out, self.buf = self.buf, b""
                return out

    def at_eof(self, timeout=5.0):
        """True when the peer closes (clean EOF or reset) within timeout."""
        if self.buf:
            return False
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            self._fill()
            return False
        except ConnectionClosed:
            return True
        except (socket.timeout, TimeoutError):
            return False
        except OSError:
            return True
        finally:
            try:
                self.sock.settimeout(old)
            except OSError:
                pass

    def response(self, method="GET"):
        line = self.readline()
        m = re.match(rb"^(HTTP/1\.[01]) (\d{3}) ?(.*)$", line)
        assert m, "bad status line %r" % line[:100]
        version, status, reason = m.group(1).decode(), int(m.group(2)), m.group(3).decode("latin-1")
        headers = []
        while True:
            h = self.readline()
            if h == b"":
                break
            n, sep, v = h.partition(b":")
            assert sep, "bad response header %r" % h[:100]
            headers.append((n.decode("latin-1"), v.strip().decode("latin-1")))
        r = Response(version, status, reason, headers, b"")
        if status == 101 or (100 <= status < 200):
            return r
        if method == "HEAD" or status in (204, 304):
            return r
        te = r.get("transfer-encoding")
        cl = r.get("content-length")
        if te is not None:
            assert te.lower() == "chunked", "response TE %r" % te
            body = []
            while True:
                size = int(self.readline().split(b";")[0], 16)
                if size == 0:
                    while self.readline() != b"":
                        pass
                    break
                body.append(self.read_exact(size))
                assert self.read_exact(2) == b"\r\n"
            r.body = b"".join(body)
        elif cl is not None:
            r.body = self.read_exact(int(cl))
        else:
            r.body = self.read_to_eof()
        return r


def request_bytes(method, path, headers=None, body=None, host="localhost"):
    hs = [("Host", host)]
    if headers:
        hs += list(headers)
    if body is not None and not any(n.lower() in ("content-length", "transfer-encoding")
                                    for n, _ in hs):
        hs.append(("Content-Length", str(len(body))))
    out = "%s %s HTTP/1.1\r\n" % (method, path) + "".join("%s: %s\r\n" % h for h in hs) + "\r\n"
    return out.encode("latin-1") + (body or b"")


class Client:
    """One keep-alive TLS connection to the gateway."""

    def __init__(self, port, ctx, server_name="localhost"):
        self.sock = tls_connect(port, ctx, server_name)
        self.reader = Reader(self.sock)

    def send(self, data):
        self.sock.sendall(data)

    def request(self, method, path, headers=None, body=None):
        self.send(request_bytes(method, path, headers, body))
        return self.reader.response(method)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def raw_exchange(port, ctx, data, timeout=IO_TIMEOUT):
    """Sends raw bytes on a fresh TLS connection; returns (response or None,
    closed_after). closed_after is True when the gateway closed the socket
    after its response."""
    with Client(port, ctx) as c:
        c.sock.settimeout(timeout)
        try:
            c.send(data)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass
        try:
            r = c.reader.response()
        except ConnectionClosed:
            return None, True
        return r, c.reader.at_eof(5)


# ---------------------------------------------------------------- WebSocket

def ws_frame(op, data, masked=True, fin=True):
    head = bytes([(0x80 if fin else 0) | op])
    mbit = 0x80 if masked else 0
    n = len(data)
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", n)
    if masked:
        key = os.urandom(4)
        m = (key * (n // 4 + 1))[:n]
        data = (int.from_bytes(data, "big") ^ int.from_bytes(m, "big")).to_bytes(n, "big") \
            if n else b""
        head += key
    return head + data


def ws_read(reader):
    b0, b1 = reader.read_exact(2)
    op = b0 & 0x0F
    assert not b1 & 0x80, "server frames must not be masked"
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", reader.read_exact(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", reader.read_exact(8))[0]
    return op, reader.read_exact(n)


def ws_handshake_bytes(path="/ws", host="localhost"):
    key = base64.b64encode(os.urandom(16)).decode()
    req = ("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, host, key))
    want = base64.b64encode(hashlib.sha1(
        key.encode() + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()).decode()
    return req.encode(), want


# ---------------------------------------------------------------- processes

class Upstream:
    """The recording upstream (upstream.py) as a subprocess."""

    def __init__(self, workdir, port=None, name="upstream"):
        self.port = port or free_port()
        self.log = os.path.join(workdir, name + ".jsonl")
        self.errlog = os.path.join(workdir, name + ".stderr")
        self.proc = None

    def start(self):
        with open(self.errlog, "ab") as err:
            self.proc = subprocess.Popen(
                [PYTHON, os.path.join(HERE, "upstream.py"),
                 "--listen", "127.0.0.1:%d" % self.port, "--log", self.log],
                stdout=subprocess.DEVNULL, stderr=err)
        wait_until(self._accepts, timeout=15, what="upstream on port %d" % self.port)
        return self

    def _accepts(self):
        if self.proc.poll() is not None:
            raise Fatal("upstream exited: %s" % open(self.errlog).read())
        with socket.create_connection(("127.0.0.1", self.port), timeout=1):
            return True

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def entries(self):
        try:
            with open(self.log, encoding="utf-8") as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def requests(self):
        return [e for e in self.entries() if "violation" not in e]

    def violations(self):
        return [e for e in self.entries() if "violation" in e]


DEFAULTS = [
    ("workers", "1"),
    ("header_timeout", "2s"),
    ("idle_timeout", "5s"),
    ("upstream_timeout", "2s"),
    ("upstream_connect_timeout", "1s"),
    ("max_request_line", "8k"),
    ("max_header_size", "8k"),
    ("max_headers", "100"),
    ("max_body_size", "100m"),
    ("max_connections", "1000"),
    ("max_connections_per_ip", "100"),
    ("shutdown_timeout", "5s"),
]


class Gateway:
    """build/pbxgate run -c CONF as a subprocess, with its admin endpoint."""

    def __init__(self, binary, workdir, certs, upstream_port, extra=(), name="gw",
                 overrides=None):
        self.binary = binary
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port, self.admin_port = free_ports(2)
        self.conf = os.path.join(self.dir, "pbxgate.conf")
        self.access_log = os.path.join(self.dir, "access.log")
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.certs = certs
        self.upstream_port = upstream_port
        self.extra = list(extra)
        self.overrides = dict(overrides or {})
        self.proc = None
        self.write_config()

    def config_text(self):
        lines = ["# written by tests/integration/helpers.py",
                 "listen 127.0.0.1:%d" % self.port,
                 "admin_listen 127.0.0.1:%d" % self.admin_port]
        for cert, key in self.certs:
            lines += ["tls_cert %s" % cert, "tls_key %s" % key]
        lines += ["upstream http://127.0.0.1:%d" % self.upstream_port,
                  "access_log %s" % self.access_log]
        for k, v in DEFAULTS:
            lines.append("%s %s" % (k, self.overrides.get(k, v)))
        for k, v in self.overrides.items():
            if k not in dict(DEFAULTS):
                lines.append("%s %s" % (k, v))
        lines += list(self.extra)
        return "\n".join(lines) + "\n"

    def write_config(self):
        with open(self.conf, "w") as f:
            f.write(self.config_text())

    def start(self):
        # free_port() can race with other programs on a shared machine: when
        # the bind fails, take new ports and try again (bounded).
        for attempt in range(3):
            self.err = open(self.stderr_path, "ab")
            self.proc = subprocess.Popen([self.binary, "run", "-c", self.conf],
                                         stdin=subprocess.DEVNULL, stdout=self.err,
                                         stderr=self.err, cwd=self.dir)
            try:
                wait_until(self.healthy, timeout=20,
                           what="pbxgate /healthz on 127.0.0.1:%d" % self.admin_port)
                return self
            except AssertionError:
                if self.proc.poll() is None or "in use" not in self.stderr() or attempt == 2:
                    raise
                self.err.close()
                self.port, self.admin_port = free_ports(2)
                self.write_config()
        return self

    def _children(self):
        """(start time, pid, seccomp mode) of each child of the parent."""
        out = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    fields = f.read().rpartition(")")[2].split()
                with open("/proc/%s/status" % d) as f:
                    seccomp = [l.split()[1] for l in f if l.startswith("Seccomp:")]
            except (OSError, ValueError, IndexError):
                continue
            if int(fields[1]) == self.proc.pid:
                out.append((int(fields[19]), int(d), seccomp[0] if seccomp else "?"))
        return sorted(out)

    def child_pid(self, other_than=None, timeout=10):
        """The pid of the unprivileged child that serves (gateway/privsep.c:
        signals go to the parent, self.proc; the workers run in its child,
        the one under a seccomp filter; the other child is the key
        process). other_than: wait for a child with another pid (a restart)."""
        def find():
            for _, pid, seccomp in self._children():
                if pid != other_than and seccomp == "2":
                    return pid
            return None
        return wait_until(find, timeout=timeout, what="the child of pbxgate %d" % self.proc.pid)

    def key_pid(self, timeout=10):
        """The key process (certs/cert_keyproc.c): the parent's first child,
        forked before the network child, with no seccomp filter."""
        def find():
            kids = [pid for _, pid, seccomp in self._children() if seccomp == "0"]
            return kids[0] if kids else None
        return wait_until(find, timeout=timeout, what="the key process of pbxgate %d" % self.proc.pid)

    def stderr(self):
        try:
            with open(self.stderr_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def admin_get(self, path, timeout=5):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.admin_port, path),
                                    timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")

    def healthy(self):
        if self.proc.poll() is not None:
            raise Fatal("pbxgate exited with %s; stderr:\n%s"
                                 % (self.proc.returncode, self.stderr()[-4000:]))
        status, body = self.admin_get("/healthz", timeout=1)
        return status == 200 and body == "ok\n"

    def metric(self, name, labels=None):
        """The value of one metric sample from /metrics, or None."""
        _, text = self.admin_get("/metrics")
        want = name + ("{%s}" % labels if labels else "")
        for line in text.splitlines():
            if line.startswith("#"):
                continue
            key, _, val = line.rpartition(" ")
            if key.replace(" ", "") == want.replace(" ", ""):
                return float(val)
        return None

    def generation(self):
        return self.metric("pbxgate_config_generation")

    def reload(self, expect="ok", timeout=10):
        """SIGHUP, then wait until the reload counter for `expect` moves."""
        label = 'result="%s"' % expect
        before = self.metric("pbxgate_config_reloads_total", label) or 0
        self.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: (self.metric("pbxgate_config_reloads_total", label) or 0) > before,
                   timeout=timeout, what="pbxgate_config_reloads_total{%s} to grow" % label)

    def stop(self, timeout=15):
        """SIGTERM; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError("pbxgate did not exit within %ss of SIGTERM" % timeout)
        self.err.close()
        rc = self.proc.returncode
        return rc

    def sanitizer_reports(self):
        text = self.stderr()
        return [line for line in text.splitlines()
                if "ERROR: AddressSanitizer" in line or "runtime error:" in line
                or "ERROR: LeakSanitizer" in line]


def openssl(*args, env=None, input=b"", timeout=20):
    e = dict(os.environ)
    if env:
        e.update(env)
    return subprocess.run(["openssl"] + list(args), input=input, capture_output=True,
                          env=e, timeout=timeout)


def log(msg):
    print(msg, file=sys.stderr)
