"""test_adversarial.py -- replays the request smuggling / desync corpus
(manifest.json, vectors/*.raw) over real TLS against the real pbxgate binary
(PBXGATE_BIN, default build/pbxgate) in front of the recording upstream of
tests/integration/upstream.py, which flags every ambiguous message it gets.

For each vector: the statuses read back must be exactly the manifest's, the
connection must be closed when the manifest says so (and must not carry any
extra, unsolicited response otherwise), the upstream must have seen exactly
the listed requests (checked with a marker request sent afterwards), bodies
must arrive intact, and the upstream must record no violation.

Run: PBXGATE_BIN=build/pbxgate python3 -m pytest -q tests/adversarial
"""

import json
import os
import sys
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from helpers import (REPO, Client, ConnectionClosed, Gateway, Upstream,  # noqa: E402
                     client_context, mkcert, sha256, wait_until)

with open(os.path.join(HERE, "manifest.json"), encoding="utf-8") as _f:
    MANIFEST = json.load(_f)

OVERRIDES = {"max_body_size": "64k", "header_timeout": "2s"}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    binary = os.environ.get("PBXGATE_BIN", os.path.join(REPO, "build", "pbxgate"))
    if not os.access(binary, os.X_OK):
        pytest.fail("pbxgate binary not found at %s (build it, or set PBXGATE_BIN)" % binary)
    d = str(tmp_path_factory.mktemp("adversarial"))
    cert, key = mkcert(d, "adv")
    up = Upstream(d).start()
    gw = Gateway(os.path.abspath(binary), d, [(cert, key)], up.port, overrides=OVERRIDES)
    gw.start()
    yield gw, up, client_context(cert)
    rc = gw.stop()
    up.stop()
    reports = gw.sanitizer_reports()
    assert not reports, "sanitizer reports:\n%s" % "\n".join(reports)
    assert rc == 0, "pbxgate exited %s after SIGTERM:\n%s" % (rc, gw.stderr()[-4000:])
    assert not up.violations(), "upstream saw ambiguous messages: %r" % up.violations()


def _read_responses(c, want, sha_bodies):
    """Reads up to `want` responses; returns their statuses (stops early on
    close). /sha256 answers are collected into sha_bodies."""
    got = []
    for _ in range(want):
        try:
            r = c.reader.response()
        except (ConnectionClosed, OSError):
            break
        got.append(r.status)
        if r.status == 200 and r.body.startswith(b"{\"length\""):
            sha_bodies.append(json.loads(r.body))
    return got


def replay(gw, ctx, v):
    """Sends one vector; returns what was observed."""
    with open(os.path.join(HERE, v["file"]), "rb") as f:
        raw = f.read()
    split = v.get("split")
    pieces = [raw] if split is None else [raw[:split], raw[split:]]
    statuses, shas = [], []
    with Client(gw.port, ctx) as c:
        c.sock.settimeout(8)
        want = len(v["expect"])
        for i, piece in enumerate(pieces):
            try:
                c.send(piece)
            except OSError:
                break
            n = 1 if (split is not None and i == 0) else want - len(statuses)
            statuses += _read_responses(c, n, shas)
        if v["closed"]:
            closed = c.reader.at_eof(3)  # idle_timeout is 5 s: a close must come first
            extra = b""
        else:
            closed = c.reader.at_eof(0.3)
            extra = c.reader.buf
    return {"statuses": statuses, "closed": closed, "extra": extra, "shas": shas}


def forwarded_since(up, gw, ctx, before):
    """Upstream log entries after index `before` up to a marker request."""
    tag = uuid.uuid4().hex
    with Client(gw.port, ctx) as c:
        assert c.request("GET", "/headers?marker=" + tag).status == 200

    def seen():
        es = up.entries()
        for i, e in enumerate(es):
            if e.get("target", "").endswith("marker=" + tag):
                return (es[before:i],)
        return None
    return wait_until(seen, timeout=10, what="marker at the upstream")[0]


def _hdr(entry, name):
    return [v for n, v in entry.get("headers", []) if n.lower() == name]


def _param(v):
    marks = []
    if v.get("known_bug"):
        marks.append(pytest.mark.xfail(strict=True, reason="known gateway bug: " + v["known_bug"]))
    return pytest.param(v, id=v["name"], marks=marks)


@pytest.mark.parametrize("v", [_param(v) for v in MANIFEST])
def test_vector(env, v):
    gw, up, ctx = env
    before = len(up.entries())
    got = replay(gw, ctx, v)
    fwd = forwarded_since(up, gw, ctx, before)
    problems = []
    if got["statuses"] != v["expect"]:
        problems.append("statuses %r, expected %r" % (got["statuses"], v["expect"]))
    if v["closed"] and not got["closed"]:
        problems.append("connection left open, expected closed")
    if not v["closed"] and got["closed"]:
        problems.append("connection closed, expected kept alive")
    if got["extra"]:
        problems.append("unsolicited bytes after the responses: %r" % got["extra"][:120])
    bad = [e for e in fwd if "violation" in e]
    if bad:
        problems.append("AMBIGUOUS MESSAGE AT THE UPSTREAM: %r" % bad)
    seen = [(e.get("method"), e.get("target")) for e in fwd if "violation" not in e]
    want = [(u["method"], u["target"]) for u in v["upstream"]]
    # partial: the head may or may not have gone out before the limit hit.
    if seen != want and not (v.get("partial") and seen == want[:len(seen)]):
        problems.append("upstream saw %r, expected %r" % (seen, want))
    for e in fwd:
        if "violation" in e:
            continue
        if len(_hdr(e, "host")) > 1 or (_hdr(e, "content-length") and
                                        _hdr(e, "transfer-encoding")):
            problems.append("ambiguous framing forwarded: %r" % e["headers"])
        for name in v.get("absent", []):
            if _hdr(e, name):
                problems.append("header %s reached the upstream: %r" % (name, _hdr(e, name)))
    bodies = [u["body"].encode("latin-1") for u in v["upstream"] if "body" in u]
    if not problems and bodies and not v.get("partial"):
        got_b = [(s["length"], s["sha256"]) for s in got["shas"]]
        want_b = [(len(b), sha256(b)) for b in bodies]
        if got_b != want_b:
            problems.append("bodies at the upstream %r, expected %r" % (got_b, want_b))
    assert not problems, "%s (%s):\n  %s\n  upstream entries: %r" % (
        v["name"], v["why"], "\n  ".join(problems), fwd)


def test_manifest_is_consistent():
    """Every manifest entry has its raw file, names are unique, >= 60 vectors."""
    names = [v["name"] for v in MANIFEST]
    assert len(names) == len(set(names))
    assert len(MANIFEST) >= 60
    for v in MANIFEST:
        assert os.path.isfile(os.path.join(HERE, v["file"])), v["file"]
        assert isinstance(v["expect"], list) and isinstance(v["closed"], bool)
        refused = not v["expect"] or v["expect"][0] in (400, 405, 408, 413, 414, 417, 431, 505)
        if refused and not v.get("partial"):
            assert v["upstream"] == [], "%s: refused but upstream listed" % v["name"]
