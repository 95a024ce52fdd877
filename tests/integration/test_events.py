"""test_events.py -- the JSON lines pbxgate writes follow the one event
schema (docs/logging.md, tests/schema/events.schema.json): the access
line's exact fields, and valid UTF-8 and valid JSON whatever bytes a client
sends: valid UTF-8 in a path or a User-Agent is kept as is (not re-encoded
byte by byte as Latin-1 \\u00XX), each byte that is not UTF-8 becomes U+FFFD
(event/event_json.c, the one escaper of every module's log lines).

The audit log: one test per kind (policy deny and audited allow,
desktop-app page refusal, reload ok and failed, enrolment, login success,
failure and ban, account session revoke and password change) with every
field of its record, written by event/event_audit.c. The integrity and
SMTP kinds are checked field by field in test_integrity.py and
test_mail.py, where their fixtures live; every audit line of every suite
is validated against the schema when its gateway stops (conftest.py)."""

import json
import os
import re

import pytest

from auth_helpers import PASSWORD, Browser, enrol, form_with, forms, login
from auth_helpers import make_auth_gateway  # noqa: F401 - a fixture
from conftest import EVENTS, _finish_gateway, invalid_event_lines
from helpers import Client, Gateway, wait_until
from lock_helpers import OFFICE, OUTSIDE, SrcClient, get_from, write_atomic
from lock_helpers import make_lockdown  # noqa: F401 - a fixture

FFFD = "\ufffd"

# (id, raw path bytes sent, path expected in the log, status): the gateway
# forwards a UTF-8 path and refuses one that is not UTF-8 with a 400, and
# logs both.
PATHS = [
    ("utf8", "/caf\u00e9/\u20ac/\U0001f4de".encode("utf-8"), "/caf\u00e9/\u20ac/\U0001f4de", 200),
    ("latin1-byte", b"/caf\xe9", "/caf" + FFFD, 400),
    ("lone-continuation", b"/a\x80b", "/a" + FFFD + "b", 400),
    ("overlong", b"/\xc0\xafx", "/" + FFFD + FFFD + "x", 400),
    ("surrogate", b"/\xed\xa0\x80", "/" + FFFD * 3, 400),
    ("truncated", b"/\xe2\x82", "/" + FFFD * 2, 400),
    ("quote-backslash", b'/q"\\', '/q"\\', 200),
]


def raw_request(port, ctx, path, tag, ua=b"events-test"):
    with Client(port, ctx) as c:
        c.send(b"GET " + path + b" HTTP/1.1\r\nHost: localhost\r\nUser-Agent: " + ua
               + b"\r\nX-Tag: " + tag.encode() + b"\r\n\r\n")
        return c.reader.response()


def log_lines(path):
    """Every line of a log, as bytes (so a bad byte cannot hide)."""
    try:
        with open(path, "rb") as f:
            return [l for l in f.read().split(b"\n") if l]
    except FileNotFoundError:
        return []


def line_with(path, key, value):
    """The first line of a JSON log whose `key` is `value`, parsed from
    bytes that must be UTF-8 (strict) and JSON."""
    def find():
        for raw in log_lines(path):
            rec = json.loads(raw.decode("utf-8"))
            if rec.get(key) == value:
                return rec
        return None
    return wait_until(find, timeout=10, what="%s = %r in %s" % (key, value, path))


@pytest.mark.parametrize("raw,expect,status", [p[1:] for p in PATHS],
                         ids=[p[0] for p in PATHS])
def test_access_log_path_is_utf8(gateway, ctx, raw, expect, status):
    r = raw_request(gateway.port, ctx, raw, "access")
    assert r.status == status, r
    rec = line_with(gateway.access_log, "url.path", expect)
    assert rec["http.response.status_code"] == status, rec
    assert invalid_event_lines(gateway.access_log) == []


# (id, raw User-Agent bytes, as logged): a header value is forwarded as
# received, so each of these reaches the PBX and is logged.
AGENTS = [
    ("utf8", "Softphone/1.0 (\u00e9\u00e8 \u65e5\u672c)".encode("utf-8"),
     "Softphone/1.0 (\u00e9\u00e8 \u65e5\u672c)"),
    ("latin1-byte", b"Softphone/1.0 (\xe9)", "Softphone/1.0 (" + FFFD + ")"),
    ("invalid-sequence", b"UA \xc0\xaf\xff", "UA " + FFFD * 3),
    ("quote-backslash", b'UA "x" \\y', 'UA "x" \\y'),
]


@pytest.mark.parametrize("raw,expect", [a[1:] for a in AGENTS], ids=[a[0] for a in AGENTS])
def test_access_log_user_agent_is_utf8(gateway, ctx, raw, expect):
    tag = "/ua-" + os.urandom(6).hex()
    r = raw_request(gateway.port, ctx, tag.encode(), "ua", ua=raw)
    assert r.status == 200, r
    rec = line_with(gateway.access_log, "url.path", tag)
    assert rec["user_agent.original"] == expect, rec
    assert invalid_event_lines(gateway.access_log) == []


def test_access_line_fields(gateway, upstream, ctx):
    """Every field of an access line, for one proxied request."""
    tag = "/fields-" + os.urandom(6).hex()
    with Client(gateway.port, ctx) as c:
        r = c.request("GET", tag + "?token=secret", headers=[("User-Agent", "fields/1")])
    assert r.status == 200, r
    rec = line_with(gateway.access_log, "url.path", tag)
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", rec["@timestamp"]), rec
    assert rec["http.request.id"] == r.get("x-request-id"), rec
    assert rec["event.duration"] > 0 and rec["pbxgate.upstream.duration"] > 0, rec
    assert rec["http.response.bytes"] > 0 and rec["http.request.bytes"] > 0, rec
    fixed = {k: rec[k] for k in rec if k not in (
        "@timestamp", "http.request.id", "event.duration", "pbxgate.upstream.duration",
        "http.response.bytes", "http.request.bytes")}
    assert fixed == {
        "event.dataset": "pbxgate.access", "event.module": "http",
        "event.action": "request", "event.outcome": "success",
        "source.ip": "127.0.0.1", "client.ip": "127.0.0.1", "user.name": "",
        "http.request.method": "GET", "url.path": tag, "url.domain": "localhost",
        "user_agent.original": "fields/1", "tls.version": "1.3",
        "http.response.status_code": 200, "destination.address": "127.0.0.1",
        "destination.port": upstream.port}, rec


# ---------------------------------------------------------------- audit log
#
# One test per audit kind with every field of the record (docs/logging.md):
# what varies per run (@timestamp, an id the test reads from the answer) is
# checked by pattern, the rest compared whole, so a field added, renamed or
# dropped fails here.

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")


def audit_records(path):
    """Every record of an audit log (strict UTF-8, JSON)."""
    return [json.loads(raw.decode("utf-8")) for raw in log_lines(path)]


def wait_record(path, pred, what):
    def find():
        got = [r for r in audit_records(path) if pred(r)]
        return got[-1] if got else None
    return wait_until(find, timeout=10, what=what)


def assert_record(rec, want):
    """rec is want plus a well-formed @timestamp, and valid in the schema."""
    assert TIMESTAMP.match(rec.get("@timestamp", "")), rec
    assert {k: v for k, v in rec.items() if k != "@timestamp"} == want, rec
    assert list(rec)[:5] == ["@timestamp", "event.dataset", "event.module",
                             "event.action", "event.outcome"], list(rec)
    assert not [str(e) for e in EVENTS.iter_errors(rec)], rec


def policy_record(action, outcome, src, path, rule, rid, user=""):
    return {"event.dataset": "pbxgate.audit", "event.module": "policy",
            "event.action": action, "event.outcome": outcome, "source.ip": src,
            "client.ip": src, "user.name": user, "http.request.id": rid,
            "http.request.method": "GET", "url.path": path, "rule.name": rule}


LOCK_POLICY = "deny path ^/management(/|$)\nallow path ^/admin/ audit\ndefault allow\n"


@pytest.fixture(scope="module")
def lock(make_lockdown_module, upstream):
    return make_lockdown_module(upstream.port, LOCK_POLICY)


@pytest.fixture(scope="module")
def make_lockdown_module(pbxgate_bin, workdir, certs):
    """make_lockdown for the module: one gateway shared by the policy and
    reload records (each test finds its own record by request id)."""
    from lock_helpers import Lockdown, write_atomic
    made = []

    def make(upstream_port, policy_text):
        d = os.path.join(workdir, "events-lock")
        os.makedirs(d, exist_ok=True)
        pol, audit = os.path.join(d, "lockdown.policy"), os.path.join(d, "audit.log")
        write_atomic(pol, policy_text)
        gw = Gateway(pbxgate_bin, workdir, [certs.main, certs.alt], upstream_port,
                     extra=["policy %s" % pol, "audit_log %s" % audit],
                     name="gw-events-lock")
        made.append(gw)
        gw.start()
        return Lockdown(gw, pol, audit)

    yield make
    for gw in made:
        _finish_gateway(gw)


def test_audit_policy_deny(lock, ctx):
    r = get_from(lock.port, ctx, OUTSIDE, "/management/users?token=secret")
    assert r.status == 403, r
    rid = r.get("x-request-id")
    assert REQUEST_ID.match(rid or ""), r
    rec = wait_record(lock.audit, lambda a: a.get("http.request.id") == rid, "the deny")
    assert_record(rec, policy_record("deny", "failure", OUTSIDE, "/management/users",
                                     "%s:1" % lock.policy, rid))


def test_audit_policy_audited_allow(lock, ctx):
    r = get_from(lock.port, ctx, OFFICE, "/admin/x")
    assert r.status == 200, r
    rid = r.get("x-request-id")
    rec = wait_record(lock.audit, lambda a: a.get("http.request.id") == rid, "the allow")
    assert_record(rec, policy_record("allow", "success", OFFICE, "/admin/x",
                                     "%s:2" % lock.policy, rid))


def test_audit_policy_non_ascii_path_as_judged(lock, ctx):
    """A UTF-8 path is logged as the policy judged it: in its normal form,
    non-ASCII bytes percent-encoded (relay_gate.c), so the record and the
    rule that matched read the same text."""
    with SrcClient(lock.port, ctx, OUTSIDE) as c:
        c.send("GET /management/caf\u00e9/\u65e5 HTTP/1.1\r\nHost: localhost\r\n"
               "\r\n".encode("utf-8"))
        r = c.reader.response()
    assert r.status == 403, r
    rid = r.get("x-request-id")
    rec = wait_record(lock.audit, lambda a: a.get("http.request.id") == rid, "the deny")
    assert rec["url.path"] == "/management/caf%C3%A9/%E6%97%A5", rec
    assert not [str(e) for e in EVENTS.iter_errors(rec)], rec


def config_records(lk):
    return [r for r in audit_records(lk.audit) if r.get("event.module") == "config"]


def test_audit_reload_ok_then_failed(lock):
    gw = lock.gw
    n0 = len(config_records(lock))
    gw.reload("ok")
    gen = int(gw.generation())
    rec = wait_until(lambda: config_records(lock)[n0:] or None, timeout=10,
                     what="the reload's record")[0]
    assert_record(rec, {"event.dataset": "pbxgate.audit", "event.module": "config",
                        "event.action": "reload", "event.outcome": "success",
                        "file.path": gw.conf, "pbxgate.config.generation": gen})
    write_atomic(lock.policy, "deny path (\n")
    try:
        gw.reload("error")
        rec = wait_until(lambda: config_records(lock)[n0 + 1:] or None, timeout=10,
                         what="the failed reload's record")[0]
        msg = rec.get("error.message", "")
        # the first error, FILE:LINE:COL (the rest are in error_log)
        assert re.match(re.escape(lock.policy) + r":1:\d+: ", msg), rec
        assert_record(rec, {"event.dataset": "pbxgate.audit", "event.module": "config",
                            "event.action": "reload", "event.outcome": "failure",
                            "file.path": gw.conf, "pbxgate.config.generation": gen,
                            "error.message": msg})
    finally:
        write_atomic(lock.policy, LOCK_POLICY)
        gw.reload("ok")


def test_audit_desktop_app_page_refusal(make_lockdown, upstream, ctx):
    from test_clients import CLIENTS, LINE_WINDOWS, POLICY, win_ua
    lk = make_lockdown(upstream.port, POLICY)
    r = get_from(lk.port, ctx, OFFICE, "/webclient/api/MyPhone/session",
                 headers=[("User-Agent", win_ua("18.12.416"))])
    assert r.status == 403, r
    rid = r.get("x-request-id")
    rec = wait_record(lk.audit, lambda a: a.get("http.request.id") == rid, "the refusal")
    want = policy_record("deny", "failure", OFFICE, "/webclient/api/MyPhone/session",
                         "%s:%d" % (CLIENTS, LINE_WINDOWS), rid)
    want.update({"pbxgate.page": "compromised-client", "user_agent.version": "18.12.416",
                 "user_agent.os.name": "windows"})
    assert_record(rec, want)


# the login, enrolment and account records: one gateway and one story
# (enrol, log in twice, revoke a session, change the password, fail, get
# banned); each test checks its record of the story.

@pytest.fixture(scope="module")
def auth_story(pbxgate_bin, workdir, certs, upstream, ctx):
    from auth_helpers import AuthGateway
    gw = AuthGateway(pbxgate_bin, workdir, [certs.main], upstream.port,
                     name="gw-events-auth")
    gw.start()
    story = {"gw": gw, "audit": os.path.join(gw.dir, "audit.log")}
    try:
        eb, secret, _ = enrol(gw, ctx, "alice", source="127.0.5.1")
        a, r = login(gw, ctx, "alice", secret, source="127.0.5.1")
        assert r.status == 303, r
        story["login"] = r.get("x-request-id")
        b, r = login(gw, ctx, "alice", secret, eb.recovery[0], source="127.0.5.1")
        assert r.status == 303, r
        page = a.get("/_pbxgate/account")
        revoke = [f for _, f in forms(page.body) if f.get("action") == "revoke"]
        assert len(revoke) == 2, page.body
        r = a.post_form("/_pbxgate/account", revoke[0])
        assert r.status in (200, 303), r
        story["revoke"] = r.get("x-request-id")
        a, r = login(gw, ctx, "alice", secret, eb.recovery[1], source="127.0.5.1")
        assert r.status == 303, r
        page = a.get("/_pbxgate/account")
        pw = [f for _, f in forms(page.body) if f.get("action") == "password"]
        assert pw, page.body
        r = a.post_form("/_pbxgate/account", dict(
            pw[0], current=PASSWORD, new="a brand new password",
            new2="a brand new password", code=eb.recovery[2]))
        assert r.status in (200, 303), r
        story["password"] = r.get("x-request-id")
        yield story
    finally:
        _finish_gateway(gw)


def auth_record(action, outcome, user, ip, rid=None, reason=None):
    rec = {"event.dataset": "pbxgate.audit", "event.module": "auth",
           "event.action": action, "event.outcome": outcome, "client.ip": ip,
           "user.name": user}
    if rid is not None:
        rec["http.request.id"] = rid
    if reason is not None:
        rec["event.reason"] = reason
    return rec


def story_record(story, action):
    return wait_record(story["audit"], lambda a: a.get("event.action") == action,
                       "the %s record" % action)


def test_audit_enrolment(auth_story):
    rec = story_record(auth_story, "enrol")
    assert REQUEST_ID.match(rec.get("http.request.id", "")), rec
    assert_record(rec, auth_record("enrol", "success", "alice", "127.0.5.1",
                                   rec["http.request.id"]))


def test_audit_login_success(auth_story):
    rec = story_record(auth_story, "login_success")
    assert REQUEST_ID.match(rec.get("http.request.id", "")), rec
    assert_record(rec, auth_record("login_success", "success", "alice", "127.0.5.1",
                                   rec["http.request.id"], "mfa"))


def test_audit_account_session_revoke(auth_story):
    rec = story_record(auth_story, "session_revoke")
    assert_record(rec, auth_record("session_revoke", "success", "alice", "127.0.5.1",
                                   auth_story["revoke"]))


def test_audit_account_password_change(auth_story):
    rec = story_record(auth_story, "password_change")
    assert_record(rec, auth_record("password_change", "success", "alice", "127.0.5.1",
                                   auth_story["password"]))


def failed_login(gw, ctx, name, source):
    b = Browser(gw.port, ctx, source)
    r = b.get("/_pbxgate/login")
    act, fields = form_with(r.body, "password")
    fields.update(username=name, password="wrong password")
    r = b.post_form(act or "/_pbxgate/login", fields)
    assert r.status == 401, r
    return r.get("x-request-id")


def test_audit_login_failure(auth_story, ctx):
    rid = failed_login(auth_story["gw"], ctx, "alice", "127.0.5.2")
    rec = wait_record(auth_story["audit"], lambda a: a.get("http.request.id") == rid,
                      "the failure")
    assert_record(rec, auth_record("login_failure", "failure", "alice", "127.0.5.2", rid))


def test_audit_login_ban(auth_story, ctx):
    """Five failures from one address ban it (auth settings' default)."""
    for i in range(5):
        rid = failed_login(auth_story["gw"], ctx, "ghost%d" % i, "127.0.5.3")
    rec = wait_record(auth_story["audit"], lambda a: a.get("event.action") == "login_ban",
                      "the ban")
    assert_record(rec, auth_record("login_ban", "failure", "ghost4", "127.0.5.3", rid,
                                   "address"))


# Names typed at the login form that the store cannot hold (not ASCII
# after folding, or not UTF-8): the record says "-invalid-" instead of
# echoing them (auth_page_login.c), and the line stays valid UTF-8. The
# writer's own U+FFFD replacement is covered by tests/unit/event and
# fuzz_event_audit: every input channel of pbxgate refuses or folds such
# bytes before they reach an audit record.
NAMES = [
    ("utf8", "j\u00fcrgen-\u7530\u4e2d".encode("utf-8")),
    ("latin1-byte", b"j\xfcrgen"),
    ("truncated", b"ab\xe2\x82"),
]


@pytest.mark.parametrize("typed", [n[1] for n in NAMES], ids=[n[0] for n in NAMES])
def test_audit_user_name_not_ascii(auth_story, ctx, typed):
    rid = failed_login(auth_story["gw"], ctx, typed, "127.0.5.4")
    rec = wait_record(auth_story["audit"], lambda a: a.get("http.request.id") == rid,
                      "the failure")
    assert_record(rec, auth_record("login_failure", "failure", "-invalid-", "127.0.5.4",
                                   rid))
    assert invalid_event_lines(auth_story["audit"]) == []
