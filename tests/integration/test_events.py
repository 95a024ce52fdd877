"""test_events.py -- the JSON lines pbxgate writes follow the one event
schema (docs/logging.md, tests/schema/events.schema.json): the access
line's exact fields, and valid UTF-8 and valid JSON whatever bytes a client
sends: valid UTF-8 in a path or a User-Agent is kept as is (not re-encoded
byte by byte as Latin-1 \\u00XX), each byte that is not UTF-8 becomes U+FFFD
(event/event_json.c, the one escaper of every module's log lines)."""

import json
import os
import re

import pytest

from conftest import invalid_event_lines
from helpers import Client, wait_until

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
