"""test_sites_run.py -- sites served by `pbxgate run` (issue 17 item 1,
phase 2): the TLS SNI picks the site's certificate, an unknown name is
refused with the alert unrecognized_name (or caught by default_site), a
Host of another site on the connection is 421, each site's requests reach
its own upstream under its own policy and user store, a session cookie of
one site is not a session on another, and a reload that adds a site leaves
an open keep-alive connection to another site working."""

import json
import os
import socket
import ssl
import subprocess
import time
import uuid

import pytest

from auth_helpers import Browser, PASSWORD, form_with
from conftest import _finish_gateway
from helpers import (ConnectionClosed, Gateway, Reader, mkcert, request_bytes,
                     wait_until, ws_frame, ws_handshake_bytes, ws_read)

NAMES = ("a.example", "b.example", "c.example")


@pytest.fixture(scope="module")
def site_certs(workdir):
    d = os.path.join(workdir, "sites-run")
    os.makedirs(d, exist_ok=True)
    pairs = {n: mkcert(d, n.split(".")[0], n) for n in NAMES}
    return d, pairs


@pytest.fixture(scope="module")
def site_ctx(site_certs):
    """Trusts the three sites' self-signed certificates only."""
    ctx = ssl.create_default_context()
    ctx.load_verify_locations(cafile=site_certs[1]["a.example"][0])
    ctx.load_verify_locations(cafile=site_certs[1]["b.example"][0])
    ctx.load_verify_locations(cafile=site_certs[1]["c.example"][0])
    return ctx


def site_block(name, certs, up_port, policy, db=None, extra=()):
    cert, key = certs[name + ".example"]
    lines = ["site %s {" % name, "\tserver_name %s.example" % name,
             "\ttls_cert %s" % cert, "\ttls_key %s" % key,
             "\tupstream http://127.0.0.1:%d" % up_port,
             "\tpolicy %s" % policy]
    if db:   # one key for both stores: only the site binding tells apart
        lines += ["\tuser_db %s" % db, "\tsecret_key %s"
                  % os.path.join(os.path.dirname(db), "secret.key")]
    return lines + ["\t" + e for e in extra] + ["}"]


class SitesGateway(Gateway):
    """A gateway whose top level carries no site settings of its own: the
    Gateway's certificate lines are inherited by no site (each has its own),
    its upstream line by none (each has its own)."""

    def __init__(self, *a, sites=(), top=(), **kw):
        self.sites = list(sites)
        self.top = list(top)
        super().__init__(*a, **kw)

    def config_text(self):
        lines = [l for l in super().config_text().splitlines()
                 if not l.startswith(("tls_cert", "tls_key", "upstream "))]
        lines += ["audit_log %s" % os.path.join(self.dir, "audit.log")]
        lines += self.top
        for s in self.sites:
            lines += s
        return "\n".join(lines) + "\n"

    def user_add(self, site, name):
        r = subprocess.run([self.binary, "user", "add", name, "-c", self.conf,
                            "--site", site], input=PASSWORD + "\n",
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr


@pytest.fixture
def make_sites(pbxgate_bin, workdir, site_certs):
    made = []

    def make(sites, top=(), start=True):
        gw = SitesGateway(pbxgate_bin, workdir, [], 1, sites=sites, top=top,
                          name="gw-sites-%s" % uuid.uuid4().hex[:8])
        made.append(gw)
        if start:
            gw.start()
        return gw

    yield make
    for gw in made:
        _finish_gateway(gw)


def write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def connect(port, ctx, sni):
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        return ctx.wrap_socket(raw, server_hostname=sni)
    except Exception:
        raw.close()
        raise


class SiteClient:
    """One keep-alive connection with SNI `sni`; Host defaults to it."""

    def __init__(self, port, ctx, sni):
        self.sni = sni
        self.sock = connect(port, ctx, sni)
        self.reader = Reader(self.sock)

    def get(self, path, host=None, headers=()):
        self.sock.sendall(request_bytes("GET", path, list(headers),
                                        host=host or self.sni))
        return self.reader.response("GET")

    def close(self):
        self.sock.close()


class SiteBrowser(Browser):
    """Browser (auth_helpers) speaking to one site: its SNI and Host."""

    def __init__(self, port, ctx, name):
        super().__init__(port, ctx)
        self.name = name

    def request(self, method, path, headers=(), body=None, source=None):
        hs = list(headers)
        if self.jar:
            hs.append(("Cookie", self.cookie_header()))
        if body is not None:
            hs.append(("Content-Length", str(len(body))))
        s = connect(self.port, self.ctx, self.name)
        try:
            s.sendall(request_bytes(method, path, hs, body, host=self.name))
            r = Reader(s).response(method)
        finally:
            s.close()
        self.take_cookies(r)
        return r


def login(b, name):
    r = b.get("/_pbxgate/login?rd=/app/")
    assert r.status == 200, r
    act, fields = form_with(r.body, "password")
    fields.update(username=name, password=PASSWORD)
    return b.post_form(act or "/_pbxgate/login", fields)


@pytest.fixture
def two_sites(make_sites, make_upstream, site_certs, workdir):
    d, certs = site_certs
    up_a, up_b = make_upstream(), make_upstream()
    pol_a = write(os.path.join(d, "a.policy"),
                  "allow path ^/_pbxgate/\nlogin path ^/app/\ndefault allow\n")
    pol_b = write(os.path.join(d, "b.policy"),
                  "allow path ^/_pbxgate/\nlogin path ^/app/\n"
                  "deny path ^/secret/\ndefault allow\n")
    gw = make_sites([], start=False)
    gw.sites = [site_block("a", certs, up_a.port, pol_a,
                           os.path.join(gw.dir, "a.db")),
                site_block("b", certs, up_b.port, pol_b,
                           os.path.join(gw.dir, "b.db"))]
    gw.write_config()
    gw.user_add("a", "alice")
    gw.user_add("b", "bob")
    gw.start()
    return gw, up_a, up_b


def paths(up):
    return [e.get("target") for e in up.requests()]


def log_lines(path):
    try:
        with open(path, encoding="utf-8") as f:
            return [json.loads(l) for l in f if l.strip()]
    except FileNotFoundError:
        return []


def test_each_site_its_certificate_and_upstream(two_sites, site_ctx):
    gw, up_a, up_b = two_sites
    for name, up, other in (("a.example", up_a, up_b), ("b.example", up_b, up_a)):
        c = SiteClient(gw.port, site_ctx, name)
        try:
            cert = c.sock.getpeercert()
            assert dict(x[0] for x in cert["subject"])["commonName"] == name
            r = c.get("/only-%s" % name)
            assert r.status == 200, r
        finally:
            c.close()
        wait_until(lambda: "/only-%s" % name in paths(up),
                   what="the request at %s's upstream" % name)
        assert "/only-%s" % name not in paths(other)


def test_each_site_its_policy(two_sites, site_ctx):
    gw, up_a, up_b = two_sites
    a = SiteClient(gw.port, site_ctx, "a.example")
    b = SiteClient(gw.port, site_ctx, "b.example")
    try:
        assert a.get("/secret/x").status == 200
        assert b.get("/secret/x").status == 403
    finally:
        a.close()
        b.close()
    assert "/secret/x" not in paths(up_b)
    # the access and audit lines name the site (pbxgate.site)
    def logged():
        acc = {(e.get("pbxgate.site"), e["http.response.status_code"])
               for e in log_lines(gw.access_log) if e["url.path"] == "/secret/x"}
        aud = [e for e in log_lines(os.path.join(gw.dir, "audit.log"))
               if e.get("url.path") == "/secret/x"]
        return acc == {("a", 200), ("b", 403)} and len(aud) == 1 and \
            aud[0]["pbxgate.site"] == "b" and aud[0]["event.action"] == "deny"
    wait_until(logged, what="access lines of a and b, b's deny audited")


def test_metrics_by_site(two_sites, site_ctx):
    """pbxgate_site_requests_total{site,class}; each site's certificate in
    the expiry gauge."""
    gw = two_sites[0]
    for name, path, n in (("a.example", "/m", 2), ("b.example", "/secret/m", 1)):
        c = SiteClient(gw.port, site_ctx, name)
        try:
            for _ in range(n):
                c.get(path)
        finally:
            c.close()
    def counts():
        return (gw.metric("pbxgate_site_requests_total", 'site="a",class="2xx"'),
                gw.metric("pbxgate_site_requests_total", 'site="b",class="4xx"'),
                gw.metric("pbxgate_site_requests_total", 'site="b",class="2xx"'))
    wait_until(lambda: counts() == (2, 1, 0), what="site request counters")
    for name in ("a.example", "b.example"):
        assert gw.metric("pbxgate_certificate_not_after_timestamp_seconds",
                         'name="%s",key="ec"' % name) is not None
    # the exposition stays valid with the per-site families (promtool
    # parses it: a family split in two or a HELP twice is an error)
    wait_until(lambda: gw.metric("pbxgate_sessions_active", 'site="b"') is not None,
               what="b's store gauges")
    _, text = gw.admin_get("/metrics")
    r = subprocess.run(["promtool", "check", "metrics"], input=text,
                       capture_output=True, text=True, timeout=30)
    assert "error" not in (r.stdout + r.stderr).lower(), r.stdout + r.stderr


def test_unknown_name_refused_with_unrecognized_name(two_sites, site_ctx):
    gw = two_sites[0]
    with pytest.raises(ssl.SSLError) as e:
        connect(gw.port, site_ctx, "zz.example").close()
    assert "UNRECOGNIZED_NAME" in str(e.value).upper(), e.value


def test_no_sni_without_default_site_refused(two_sites, site_ctx):
    gw = two_sites[0]
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    with pytest.raises(ssl.SSLError) as e:
        ctx.wrap_socket(raw).close()
    raw.close()
    assert "UNRECOGNIZED_NAME" in str(e.value).upper(), e.value


def test_host_of_another_site_is_421(two_sites, site_ctx):
    gw, up_a, up_b = two_sites
    c = SiteClient(gw.port, site_ctx, "a.example")
    try:
        r = c.get("/cross", host="b.example")
    finally:
        c.close()
    assert r.status == 421, r
    assert "/cross" not in paths(up_a) + paths(up_b)


def test_users_and_cookies_are_per_site(two_sites, site_ctx):
    gw, up_a, up_b = two_sites
    a = SiteBrowser(gw.port, site_ctx, "a.example")
    r = login(a, "alice")
    assert r.status in (302, 303), r
    assert a.jar, "no session cookie from a"
    r = a.get("/app/a")
    assert r.status == 200, r
    # the same cookie on b: no session there, the login page's way
    b = SiteBrowser(gw.port, site_ctx, "b.example")
    b.jar = dict(a.jar)
    r = b.get("/app/b-with-a-cookie")
    assert r.status in (302, 303, 401), r
    assert "/app/b-with-a-cookie" not in paths(up_b)
    # alice is a's user only, bob b's only
    nb = SiteBrowser(gw.port, site_ctx, "b.example")
    r = login(nb, "alice")
    assert r.status == 401 and b"password" in r.body, r
    assert nb.get("/app/alice-on-b").status in (302, 303, 401)
    assert "/app/alice-on-b" not in paths(up_b)
    bb = SiteBrowser(gw.port, site_ctx, "b.example")
    r = login(bb, "bob")
    assert r.status in (302, 303), r
    assert bb.get("/app/b").status == 200
    logins = [(e["user.name"], e.get("pbxgate.site"))
              for e in log_lines(os.path.join(gw.dir, "audit.log"))
              if e.get("event.module") == "auth" and
              e["event.action"] == "login_success"]
    assert sorted(logins) == [("alice", "a"), ("bob", "b")], logins
    # each site's store gauges, by site (counted by the 2 s refresh)
    wait_until(lambda: gw.metric("pbxgate_sessions_active", 'site="a"') == 1 and
               gw.metric("pbxgate_sessions_active", 'site="b"') == 1,
               what="one session per site in pbxgate_sessions_active")
    assert gw.metric("pbxgate_bans_active", 'site="a",kind="name"') == 0


def test_default_site_catches_unknown_names(make_sites, make_upstream,
                                            site_certs, site_ctx):
    d, certs = site_certs
    up_a = make_upstream()
    pol = write(os.path.join(d, "open.policy"), "default allow\n")
    gw = make_sites([site_block("a", certs, up_a.port, pol)],
                    top=["default_site a"])
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    c = SiteClient(gw.port, ctx, "zz.example")
    try:
        assert c.get("/caught").status == 200
    finally:
        c.close()
    wait_until(lambda: "/caught" in paths(up_a), what="/caught at a's upstream")


def test_reload_adding_a_site_keeps_other_connections(make_sites, make_upstream,
                                                      site_certs, site_ctx):
    d, certs = site_certs
    up_a, up_c = make_upstream(), make_upstream()
    pol = write(os.path.join(d, "open.policy"), "default allow\n")
    gw = make_sites([site_block("a", certs, up_a.port, pol)])
    c = SiteClient(gw.port, site_ctx, "a.example")
    try:
        assert c.get("/before").status == 200
        gw.sites.append(site_block("c", certs, up_c.port, pol))
        gw.write_config()
        gw.reload()
        # the open connection to a goes on, under the new generation
        assert c.get("/after").status == 200
        n = SiteClient(gw.port, site_ctx, "c.example")
        try:
            assert n.get("/new-site").status == 200
        finally:
            n.close()
    finally:
        c.close()
    wait_until(lambda: "/after" in paths(up_a), what="/after at a's upstream")
    wait_until(lambda: "/new-site" in paths(up_c), what="/new-site at c's upstream")
    assert "/new-site" not in paths(up_a)


def test_reload_adds_a_site_with_its_own_store(make_sites, make_upstream,
                                               site_certs, site_ctx):
    """The new site's store is opened by the reload (the child, after its
    sandbox is up); its user logs in there and reaches its upstream, while
    a's store, opened at start, has no such user."""
    d, certs = site_certs
    up_a, up_c = make_upstream(), make_upstream()
    pol = write(os.path.join(d, "login.policy"),
                "allow path ^/_pbxgate/\nlogin path ^/app/\ndefault allow\n")
    gw = make_sites([], start=False)
    gw.sites = [site_block("a", certs, up_a.port, pol,
                           os.path.join(gw.dir, "a.db"))]
    gw.write_config()
    gw.start()
    gw.sites.append(site_block("c", certs, up_c.port, pol,
                               os.path.join(gw.dir, "c.db")))
    gw.write_config()
    gw.user_add("c", "carol")
    gw.reload()
    cb = SiteBrowser(gw.port, site_ctx, "c.example")
    r = login(cb, "carol")
    assert r.status in (302, 303), r
    assert cb.get("/app/c").status == 200
    wait_until(lambda: "/app/c" in paths(up_c), what="/app/c at c's upstream")
    r = login(SiteBrowser(gw.port, site_ctx, "a.example"), "carol")
    assert r.status == 401, r


def test_reload_removing_a_site_answers_421(make_sites, make_upstream,
                                            site_certs, site_ctx):
    """A keep-alive connection whose site a reload removed: its next request
    is 421 (no site serves its SNI any more), nothing reaches an upstream;
    the remaining site still serves."""
    d, certs = site_certs
    up_a, up_b = make_upstream(), make_upstream()
    pol = write(os.path.join(d, "open.policy"), "default allow\n")
    gw = make_sites([site_block("a", certs, up_a.port, pol),
                     site_block("b", certs, up_b.port, pol)])
    c = SiteClient(gw.port, site_ctx, "a.example")
    try:
        assert c.get("/before").status == 200
        gw.sites = gw.sites[1:]
        gw.write_config()
        gw.reload()
        r = c.get("/gone")
        assert r.status == 421, r
    finally:
        c.close()
    b = SiteClient(gw.port, site_ctx, "b.example")
    try:
        assert b.get("/still").status == 200
    finally:
        b.close()
    with pytest.raises(ssl.SSLError):
        connect(gw.port, site_ctx, "a.example").close()
    assert "/gone" not in paths(up_a) + paths(up_b)


def open_ws(port, ctx, name):
    c = SiteClient(port, ctx, name)
    req, _ = ws_handshake_bytes("/ws", host=name)
    c.sock.sendall(req)
    r = c.reader.response()
    assert r.status == 101, r
    c.sock.sendall(ws_frame(0x1, b"before"))
    assert ws_read(c.reader) == (0x1, b"before")
    return c


def closed_within(c, timeout):
    """True when the gateway ends the tunnel (close frame or EOF) within
    `timeout` (bounded polling, 0.5 s reads)."""
    deadline = time.monotonic() + timeout
    c.sock.settimeout(0.5)
    while time.monotonic() < deadline:
        try:
            op, _ = ws_read(c.reader)
        except ConnectionClosed:
            return True
        except (TimeoutError, OSError):
            continue
        if op == 0x8:
            return True
    return False


def test_reload_rechecks_tunnels_under_their_own_sites_policy(
        make_sites, make_upstream, site_certs, site_ctx):
    """A reload re-judges open WebSocket tunnels by the new policy of their
    own site: b's new policy denies /ws and closes b's tunnel; a's tunnel,
    under a's unchanged policy, keeps echoing."""
    d, certs = site_certs
    up = make_upstream()
    pol_a = write(os.path.join(d, "ws-a.policy"), "default allow\n")
    pol_b = write(os.path.join(d, "ws-b.policy"), "default allow\n")
    gw = make_sites([site_block("a", certs, up.port, pol_a),
                     site_block("b", certs, up.port, pol_b)])
    ta = open_ws(gw.port, site_ctx, "a.example")
    tb = open_ws(gw.port, site_ctx, "b.example")
    try:
        write(pol_b, "deny path ^/ws$\ndefault allow\n")
        gw.reload()
        assert closed_within(tb, 10), "b's denied tunnel is still open"
        ta.sock.sendall(ws_frame(0x1, b"after"))
        assert ws_read(ta.reader) == (0x1, b"after")
    finally:
        ta.close()
        tb.close()


def test_sni_with_a_final_dot_is_no_sites_name(make_sites, make_upstream,
                                               site_certs):
    """SNI "a.example." (RFC 6066 has no final dot) is no site's name: with
    default_site b the handshake gets b's certificate, and the request is
    b's too, so its Host a.example. (a's name) is 421, never served by a
    under b's certificate."""
    d, certs = site_certs
    up_a, up_b = make_upstream(), make_upstream()
    pol = write(os.path.join(d, "open.policy"), "default allow\n")
    gw = make_sites([site_block("a", certs, up_a.port, pol),
                     site_block("b", certs, up_b.port, pol)],
                    top=["default_site b"])
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    c = SiteClient(gw.port, ctx, "a.example.")
    try:
        der = c.sock.getpeercert(binary_form=True)
        with open(certs["b.example"][0], "rb") as f:
            assert der == ssl.PEM_cert_to_DER_cert(f.read().decode())
        assert c.get("/dot").status == 421
    finally:
        c.close()
    assert "/dot" not in paths(up_a) + paths(up_b)


def test_readyz_503_when_a_sites_store_is_unreadable(make_sites, make_upstream,
                                                     site_certs):
    """/readyz answers for every site's store: b's losing the table each
    refresh reads makes the gateway not ready (a's is fine)."""
    import sqlite3
    import urllib.error
    d, certs = site_certs
    up = make_upstream()
    pol = write(os.path.join(d, "open.policy"), "default allow\n")
    gw = make_sites([], start=False)
    gw.sites = [site_block("a", certs, up.port, pol, os.path.join(gw.dir, "a.db")),
                site_block("b", certs, up.port, pol, os.path.join(gw.dir, "b.db"))]
    gw.write_config()
    gw.start()

    def readyz():
        try:
            return gw.admin_get("/readyz")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
    wait_until(lambda: readyz()[0] == 200, what="ready")
    db = sqlite3.connect(os.path.join(gw.dir, "b.db"))
    db.execute("DROP TABLE meta")
    db.commit()
    db.close()
    wait_until(lambda: readyz()[0] == 503, timeout=15, what="b's store seen unreadable")
    assert readyz() == (503, "user store unreadable: see the error log\n")
    assert "site b: " in gw.stderr(), gw.stderr()[-2000:]
