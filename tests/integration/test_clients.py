"""test_clients.py -- known-compromised desktop-app builds through the real
gateway with the shipped etc/clients.policy: real User-Agent strings of the
affected builds on Windows and macOS get the compromised-client page (403,
English or Japanese, strict CSP, a reference that the audit record carries)
and never reach the upstream; fixed builds, builds listed for the other OS
only, browsers, the web client and phones pass; a version the gateway cannot
read passes and is audited.
"""

import re
import uuid

import pytest

from auth_helpers import enrol, login
from auth_helpers import make_auth_gateway  # noqa: F401 - a fixture
from helpers import REPO, wait_until
from lock_helpers import OFFICE, entries_before_marker, get_from, wait_target
from lock_helpers import make_lockdown  # noqa: F401 - a fixture

CLIENTS = "%s/etc/clients.policy" % REPO
POLICY = "include %s\ndefault allow\n" % CLIENTS
LINE_WINDOWS, LINE_MACOS = 23, 28   # the rules of etc/clients.policy


def win_ua(v):
    return ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
            "like Gecko) 3CXDesktopApp/%s Chrome/102.0.5005.167 Electron/19.1.9 "
            "Safari/537.36" % v)


def mac_ua(v):
    return ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
            "(KHTML, like Gecko) 3CXDesktopApp/%s Chrome/102.0.5005.167 "
            "Electron/19.1.9 Safari/537.36" % v)


AFFECTED = [("windows", "18.12.407", LINE_WINDOWS), ("windows", "18.12.416", LINE_WINDOWS),
            ("macos", "18.11.1213", LINE_MACOS), ("macos", "18.12.402", LINE_MACOS),
            ("macos", "18.12.407", LINE_MACOS), ("macos", "18.12.416", LINE_MACOS)]

PASSING = {
    "windows-18.12.422": win_ua("18.12.422"),
    "windows-18.12.425": win_ua("18.12.425"),
    "windows-20.0.1": win_ua("20.0.1"),
    "macos-18.12.425": mac_ua("18.12.425"),
    "macos-only-18.11.1213-on-windows": win_ua("18.11.1213"),
    "macos-only-18.12.402-on-windows": win_ua("18.12.402"),
    "chrome-web-client": ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
                          "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"),
    "safari-pwa": ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
                   "(KHTML, like Gecko) Version/17.1 Safari/605.1.15"),
    "firefox": "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "android-app": ("Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 "
                    "(KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36"),
    "desk-phone": "Yealink SIP-T46U 108.86.0.20",
}

TEXT = {
    "en": ("known to be compromised", "Uninstall it now", 'lang="en"'),
    "ja": ("侵害されていることが判明", "アンインストール", 'lang="ja"'),
}
ACCEPT = {"en": "en-US,en;q=0.9", "ja": "ja,en-US;q=0.8,en;q=0.7"}


@pytest.fixture
def clients(make_lockdown, upstream):
    return make_lockdown(upstream.port, POLICY)


def _ua(os_name, version):
    return win_ua(version) if os_name == "windows" else mac_ua(version)


@pytest.mark.parametrize("lang", ["en", "ja"])
@pytest.mark.parametrize("os_name,version,line", AFFECTED,
                         ids=["%s-%s" % (o, v) for o, v, _ in AFFECTED])
def test_affected_build_gets_the_page(clients, upstream, ctx, os_name, version, line,
                                      lang):
    tag = uuid.uuid4().hex
    r = get_from(clients.port, ctx, OFFICE, "/webclient/api/MyPhone/session",
                 headers=[("User-Agent", _ua(os_name, version)),
                          ("Accept-Language", ACCEPT[lang]), ("X-Test-Tag", tag)])
    assert r.status == 403, r
    body = r.body.decode("utf-8")
    for want in TEXT[lang]:
        assert want in body, body
    assert "18.12.425" in body
    assert "3CXDesktopApp %s (%s)" % (version, os_name) in body
    ref = re.search(r'<code id="reference">([0-9a-f]{32})</code>', body)
    assert ref, body
    assert r.get("x-request-id") == ref.group(1)
    assert r.get("content-type") == "text/html; charset=utf-8"
    csp = r.get("content-security-policy")
    assert csp.startswith("default-src 'none'; style-src 'sha256-"), csp
    assert "frame-ancestors 'none'" in csp
    assert r.get("cache-control") == "no-store"
    # never forwarded
    before = entries_before_marker(upstream, clients.port, ctx, OFFICE)
    assert [e for e in before if any(tag in v for _, v in e.get("headers", []))] == []
    # the audit record: the page's reference, version, OS, rule
    rec = clients.wait_audit(lambda a: a.get("http.request.id") == ref.group(1),
                             "the audit record of the page")
    assert rec["event.module"] == "policy"
    assert rec["event.action"] == "deny"
    assert rec["pbxgate.page"] == "compromised-client"
    assert rec["user_agent.version"] == version
    assert rec["user_agent.os.name"] == os_name
    assert rec["rule.name"] == "%s:%d" % (CLIENTS, line)
    assert rec["user.name"] == ""
    assert rec["url.path"] == "/webclient/api/MyPhone/session"


def test_head_gets_the_page_headers_only(clients, ctx):
    r = get_from(clients.port, ctx, OFFICE, "/", method="HEAD",
                 headers=[("User-Agent", win_ua("18.12.416"))])
    assert r.status == 403, r
    assert r.body == b""


def test_every_reference_is_new(clients, ctx):
    refs = set()
    for _ in range(3):
        r = get_from(clients.port, ctx, OFFICE, "/",
                     headers=[("User-Agent", mac_ua("18.12.407"))])
        refs.add(re.search(rb'id="reference">([0-9a-f]{32})<', r.body).group(1))
    assert len(refs) == 3


@pytest.mark.parametrize("name", sorted(PASSING))
def test_others_pass(clients, upstream, ctx, name):
    tag = uuid.uuid4().hex
    r = get_from(clients.port, ctx, OFFICE, "/webclient/?t=" + tag,
                 headers=[("User-Agent", PASSING[name])])
    assert r.status == 200, r
    wait_target(upstream, "/webclient/?t=" + tag)


@pytest.mark.parametrize("version,shown", [("18.12.416beta", "18.12.416beta"),
                                           ("18.12.x", "18.12.x"),
                                           ("18.12.4\"16", "18.12.4?16")])
def test_unreadable_version_passes_and_is_audited(clients, upstream, ctx, version, shown):
    tag = uuid.uuid4().hex
    r = get_from(clients.port, ctx, OFFICE, "/webclient/?t=" + tag,
                 headers=[("User-Agent", win_ua(version))])
    assert r.status == 200, r
    wait_target(upstream, "/webclient/?t=" + tag)
    rec = clients.wait_audit(lambda a: tag in a.get("url.path", "") or
                             (a.get("event.action") == "client-version-unparsable" and
                              a.get("user_agent.version") == shown),
                             "the audit record of the unreadable version")
    assert rec["event.action"] == "client-version-unparsable"
    assert rec["user_agent.os.name"] == "windows"
    assert rec["rule.name"] == "(default)" or rec["rule.name"].endswith(":2"), rec


def test_audit_names_the_user_when_known(make_auth_gateway, upstream, ctx):
    """A session's user is in the record: enrolled and logged in with a
    browser, then the same cookie from the compromised app."""
    gw = make_auth_gateway(upstream.port, policy="include %s\n" % CLIENTS +
                           "allow path ^/_pbxgate/\nmfa path ^/\ndefault deny\n")
    _, secret, step = enrol(gw, ctx, "alice")
    b, r = login(gw, ctx, "alice", secret)
    assert b.jar, r
    r = b.get("/app", headers=[("User-Agent", win_ua("18.12.416"))])
    assert r.status == 403, r
    ref = re.search(rb'id="reference">([0-9a-f]{32})<', r.body).group(1).decode()

    def record():
        return [e for e in gw.audit()[1] if e.get("http.request.id") == ref]
    rec = wait_until(record, what="the audit record with the user")[0]
    assert rec["user.name"] == "alice"
    assert rec["user_agent.version"] == "18.12.416" and rec["user_agent.os.name"] == "windows"
