"""test_events.py -- the JSON lines pbxgate writes (access and audit logs)
are valid UTF-8 and valid JSON whatever bytes a client sends: valid UTF-8
in a path is kept as is (not re-encoded byte by byte as Latin-1 \\u00XX),
each byte that is not UTF-8 becomes U+FFFD (gateway event/event_json.c, the
one escaper of every module's log lines)."""

import json

import pytest

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


def raw_request(port, ctx, path, tag):
    with Client(port, ctx) as c:
        c.send(b"GET " + path + b" HTTP/1.1\r\nHost: localhost\r\nX-Tag: "
               + tag.encode() + b"\r\n\r\n")
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
    rec = line_with(gateway.access_log, "path", expect)
    assert rec["status"] == status, rec
