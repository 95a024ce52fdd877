"""auth_helpers.py -- clients and fixtures for the login tests: a cookie-keeping
HTTPS client that can pick its source address, form parsing (CSRF token,
TOTP secret), TOTP codes from oathtool, and a gateway with a user store and
a policy that asks for MFA.

Test code only; helpers.py and conftest.py are used read-only.
"""

import html
import json
import os
import re
import socket
import subprocess
import threading
import time
import urllib.parse
import uuid

import pytest

from helpers import Client, Gateway, Reader, wait_until

PASSWORD = "correct horse battery staple"
STEP = 30

# /open/ needs nothing, everything else a session with MFA; the gateway's
# own pages must stay reachable.
POLICY = """\
# written by tests/integration/auth_helpers.py
allow path ^/_pbxgate/
allow path ^/open/
mfa   path ^/
default deny
"""


def auth_lines(workdir, port, extra=(), policy=POLICY):
    """Config lines for a gateway with a user store in workdir."""
    pol = os.path.join(workdir, "auth.policy")
    with open(pol, "w") as f:
        f.write(policy)
    return ["user_db %s" % os.path.join(workdir, "users.db"),
            "audit_log %s" % os.path.join(workdir, "audit.log"),
            "public_url https://localhost:%d" % port,
            "policy %s" % pol] + list(extra)


class AuthGateway(Gateway):
    """A Gateway whose config also names a user store and the MFA policy;
    the store lives in the gateway's own directory."""

    def __init__(self, binary, workdir, certs, upstream_port, auth_extra=(), policy=POLICY,
                 **kw):
        self.auth_extra = list(auth_extra)
        self.policy = policy
        super().__init__(binary, workdir, certs, upstream_port, **kw)

    def config_text(self):
        return super().config_text() + "\n".join(
            auth_lines(self.dir, self.port, self.auth_extra, self.policy)) + "\n"

    @property
    def db(self):
        return os.path.join(self.dir, "users.db")

    def audit(self):
        """The audit log's JSON lines (raw text, for leak checks, and parsed)."""
        try:
            with open(os.path.join(self.dir, "audit.log"), encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            return "", []
        return text, [json.loads(line) for line in text.splitlines() if line.strip()]

    def cli(self, *args, input=b"", timeout=60):
        """Runs `pbxgate user ...` (another process than the gateway)."""
        return subprocess.run([self.binary] + list(args) + ["-c", self.conf],
                              input=input, capture_output=True, timeout=timeout)

    def enrol_link(self, name):
        r = self.cli("user", "add", name, "--enrol")
        assert r.returncode == 0, r
        out = r.stdout.decode().strip()
        assert out.startswith(name.lower() + ","), out  # the CLI prints the folded name
        url = out.split(",", 1)[1]
        u = urllib.parse.urlsplit(url)
        assert u.scheme == "https" and u.port == self.port, url
        return u.path + "?" + u.query


@pytest.fixture
def make_auth_gateway(pbxgate_bin, workdir, certs):
    """Factory for gateways with their own user store; stops what it started
    and checks the exit status and sanitizer output like conftest does."""
    from conftest import _finish_gateway
    made = []

    def make(upstream_port, auth_extra=(), overrides=None, start=True, policy=POLICY):
        gw = AuthGateway(pbxgate_bin, workdir, [certs.main], upstream_port,
                         auth_extra=auth_extra, overrides=overrides, policy=policy,
                         name="gw-auth-%s" % uuid.uuid4().hex[:8])
        made.append(gw)
        if start:
            gw.start()
        return gw

    yield make
    for gw in made:
        _finish_gateway(gw)


# ---------------------------------------------------------------- TOTP

def totp(secret, step):
    """The code of 30-second step `step` (oathtool, the reference)."""
    r = subprocess.run(["oathtool", "--totp", "-b", "-N", "@%d" % (step * STEP), secret],
                       capture_output=True, timeout=10, check=True)
    return r.stdout.decode().strip()


def safe_step(margin=4.0, timeout=STEP + 5):
    """The current step, waiting out the last `margin` seconds of a step so
    that a code computed now is still in the window when the gateway checks
    it (the clock is the thing waited for, not another process)."""
    def ok():
        t = time.time()
        return (int(t // STEP),) if t % STEP < STEP - margin else None
    return wait_until(ok, timeout=timeout, interval=0.2, what="a fresh TOTP step")[0]


# ---------------------------------------------------------------- forms

def forms(body):
    """Every <form> as (action, {name: value}) with hidden/visible inputs."""
    text = body.decode("utf-8", "replace")
    out = []
    for m in re.finditer(r'<form\b([^>]*)>(.*?)</form>', text, re.S):
        act = re.search(r'action="([^"]*)"', m.group(1))
        fields = {}
        for i in re.finditer(r'<input\b([^>]*)>', m.group(2)):
            if 'type="checkbox"' in i.group(1):
                continue  # unticked unless the test ticks it
            n = re.search(r'name="([^"]*)"', i.group(1))
            v = re.search(r'value="([^"]*)"', i.group(1))
            if n:
                fields[html.unescape(n.group(1))] = html.unescape(v.group(1)) if v else ""
        out.append((html.unescape(act.group(1)) if act else "", fields))
    return out


def form_with(body, field):
    for act, fields in forms(body):
        if field in fields:
            return act, fields
    raise AssertionError("no form with field %r in %r" % (field, body[:2000]))


def otp_secret(body):
    m = re.search(rb'otpauth://totp/[^"<]*?[?&](?:amp;)?secret=([A-Z2-7]+)', body)
    assert m, "no otpauth URI in the enrolment page"
    return m.group(1).decode()


# ---------------------------------------------------------------- client

def connect_from(port, ctx, source=None, timeout=10):
    """A TLS socket to 127.0.0.1:port whose source address is `source`
    (Linux loopback accepts any 127/8 source)."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.settimeout(timeout)
    try:
        if source:
            raw.bind((source, 0))
        raw.connect(("127.0.0.1", port))
        return ctx.wrap_socket(raw, server_hostname="localhost")
    except Exception:
        raw.close()
        raise


class Browser:
    """A cookie jar and one connection at a time, like a small browser.
    Requests go out on a fresh connection unless keep=True."""

    def __init__(self, port, ctx, source=None, lang=None):
        self.port, self.ctx, self.source, self.lang = port, ctx, source, lang
        self.jar = {}

    def cookie_header(self):
        return "; ".join("%s=%s" % kv for kv in self.jar.items())

    def take_cookies(self, r):
        for sc in r.get_all("set-cookie"):
            nv = sc.split(";", 1)[0]
            n, _, v = nv.partition("=")
            attrs = sc.lower()
            if v == "" or "max-age=0" in attrs or "expires=thu, 01 jan 1970" in attrs:
                self.jar.pop(n.strip(), None)
            else:
                self.jar[n.strip()] = v.strip()

    def request(self, method, path, headers=(), body=None, source=None):
        hs = list(headers)
        if self.jar:
            hs.append(("Cookie", self.cookie_header()))
        if self.lang:
            hs.append(("Accept-Language", self.lang))
        c = Client.__new__(Client)
        c.sock = connect_from(self.port, self.ctx, source or self.source)
        c.reader = Reader(c.sock)
        with c:
            r = c.request(method, path, headers=hs, body=body)
        self.take_cookies(r)
        return r

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post_form(self, path, fields, headers=(), **kw):
        body = urllib.parse.urlencode(fields).encode()
        return self.request("POST", path, body=body,
                            headers=[("Content-Type", "application/x-www-form-urlencoded")]
                            + list(headers), **kw)


def enrol(gw, ctx, name, source=None, password=PASSWORD):
    """Enrols `name` through the CLI link and the pages; returns
    (browser, secret, step used); browser.recovery holds the ten recovery
    codes shown once at the end."""
    return enrol_with_link(gw, ctx, gw.enrol_link(name), source, password)


def enrol_with_link(gw, ctx, link, source=None, password=PASSWORD):
    b = Browser(gw.port, ctx, source)
    r = b.get(link)
    assert r.status == 200, r
    secret = otp_secret(r.body)
    act, fields = form_with(r.body, "password2")
    step = safe_step()
    fields.update(password=password, password2=password, code=totp(secret, step - 1))
    r = b.post_form(act, fields)
    assert r.status in (200, 303), r
    b.recovery = re.findall(r"\b[a-z2-7]{5}-[a-z2-7]{5}\b", r.body.decode("utf-8", "replace"))
    assert len(b.recovery) == 10, r.body
    return b, secret, step - 1


def login(gw, ctx, name, secret, step=None, source=None, password=PASSWORD, rd="/app",
          browser=None):
    """Password then the code of `step` (a TOTP step, a recovery code string,
    or by default the step current when the
    code form arrives, which is always newer than the one used at
    enrolment); returns (browser, last response)."""
    b = browser or Browser(gw.port, ctx, source)
    r = b.get("/_pbxgate/login?rd=" + urllib.parse.quote(rd, safe="/"))
    assert r.status == 200, r
    act, fields = form_with(r.body, "password")
    fields.update(username=name, password=password)
    r = b.post_form(act or "/_pbxgate/login", fields)
    if r.status != 200 or b'name="code"' not in r.body:
        return b, r
    act, fields = form_with(r.body, "code")
    if isinstance(step, str):
        fields["code"] = step  # a recovery code
    else:
        fields["code"] = totp(secret, safe_step() if step is None else step)
    r = b.post_form(act or "/_pbxgate/login", fields)
    return b, r


# ---------------------------------------------------------------- forwarder

class SourceForwarder:
    """A TCP relay on 127.0.0.1:port whose connections reach the gateway
    from `source`: lets a browser, which cannot choose its source address,
    appear to the gateway as another client. Bytes pass untouched (TLS is
    end to end between the browser and the gateway)."""

    def __init__(self, target_port, source):
        self.target_port, self.source = target_port, source
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.socks = []
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            try:
                u = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                u.bind((self.source, 0))
                u.settimeout(10)
                u.connect(("127.0.0.1", self.target_port))
                u.settimeout(None)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.socks += [c, u]
            threading.Thread(target=self._pump, args=(c, u), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c), daemon=True).start()

    @staticmethod
    def _pump(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        try:
            b.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self):
        self.closed = True
        self.lsock.close()
        with self.lock:
            for s in self.socks:
                try:
                    s.close()
                except OSError:
                    pass
