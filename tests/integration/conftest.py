"""conftest.py -- fixtures for the pbxgate integration tests: per-session
certificates made with the openssl CLI, and per-module temp dirs, free ports,
a recording upstream and a running gateway (the real binary, real TLS).

PBXGATE_BIN selects the binary (default build/pbxgate at the repo root).
"""

import faulthandler
import json
import os
import sys
import uuid

import jsonschema
import pytest

from helpers import REPO, Gateway, Upstream, client_context, mkcert, wait_until


class Certs:
    """main: ECDSA for localhost (the default); alt: RSA for alt.test (SNI);
    cafile: both, as trust anchors for the test clients."""

    def __init__(self, d):
        self.dir = d
        self.main = mkcert(d, "main", "localhost", "ec")
        self.alt = mkcert(d, "alt", "alt.test", "rsa")
        self.cafile = os.path.join(d, "ca.pem")
        with open(self.cafile, "w") as out:
            for c in (self.main[0], self.alt[0]):
                out.write(open(c).read())


TEST_DEADLINE = 180  # seconds; a hung test dumps every thread's stack and ends the run


@pytest.fixture(autouse=True)
def _watchdog():
    faulthandler.dump_traceback_later(TEST_DEADLINE, exit=True, file=sys.stderr)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture(scope="session")
def pbxgate_bin():
    path = os.environ.get("PBXGATE_BIN", os.path.join(REPO, "build", "pbxgate"))
    if not os.access(path, os.X_OK):
        pytest.fail("pbxgate binary not found at %s (build it, or set PBXGATE_BIN)" % path)
    return os.path.abspath(path)


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    return Certs(str(tmp_path_factory.mktemp("certs")))


@pytest.fixture(scope="session")
def ctx(certs):
    return client_context(certs.cafile)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, request):
    return str(tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2]))


def _finish_upstream(up):
    up.stop()
    bad = up.violations()
    assert not bad, "the upstream received ambiguous messages: %r" % bad


# Every JSON log line a gateway of the suites writes is checked against the
# one event schema (docs/logging.md) when the gateway stops.
with open(os.path.join(REPO, "tests", "schema", "events.schema.json")) as _f:
    EVENTS = jsonschema.Draft7Validator(json.load(_f))


def invalid_event_lines(path):
    """The lines of a JSON log that are not UTF-8, not JSON, or not valid
    against tests/schema/events.schema.json, as "FILE:LINE: why: line"."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    bad = []
    if data and not data.endswith(b"\n"):
        bad.append("%s: the last line has no newline: %r" % (path, data[-200:]))
    for no, raw in enumerate(data.split(b"\n")[:-1], 1):
        try:
            rec = json.loads(raw.decode("utf-8"))
        except ValueError as e:  # UnicodeDecodeError is a ValueError
            bad.append("%s:%d: %s: %r" % (path, no, e, raw[:300]))
            continue
        for err in sorted(EVENTS.iter_errors(rec), key=str)[:3]:
            bad.append("%s:%d: %s at %s: %r" % (path, no, err.message,
                                                "/".join(map(str, err.path)), raw[:300]))
    return bad


def json_log_paths(conf_text):
    """The access_log and audit_log files a config writes (each keyword's
    last value, "off" and the error log left out)."""
    paths = {}
    for line in conf_text.splitlines():
        words = line.split()
        if len(words) == 2 and words[0] in ("access_log", "audit_log"):
            paths[words[0]] = words[1]
    return [p for p in paths.values() if p != "off"]


def _finish_gateway(gw):
    if gw.proc is None:
        return
    rc = gw.stop()
    bad = []
    for path in json_log_paths(gw.config_text()):
        bad += invalid_event_lines(path)
    assert not bad, "log lines outside the event schema:\n" + "\n".join(bad[:20])
    reports = gw.sanitizer_reports()
    assert not reports, "sanitizer reports:\n%s\n%s" % ("\n".join(reports), gw.stderr()[-8000:])
    assert rc == 0, "pbxgate exited %s after SIGTERM; stderr:\n%s" % (rc, gw.stderr()[-4000:])


@pytest.fixture(scope="module")
def upstream(workdir):
    up = Upstream(workdir).start()
    yield up
    _finish_upstream(up)


@pytest.fixture(scope="module")
def gateway(pbxgate_bin, workdir, certs, upstream):
    gw = Gateway(pbxgate_bin, workdir, [certs.main, certs.alt], upstream.port)
    gw.start()
    yield gw
    _finish_gateway(gw)


@pytest.fixture
def make_gateway(pbxgate_bin, workdir, certs):
    """Factory for tests that need their own config; stops what it started."""
    made = []

    def make(upstream_port, extra=(), overrides=None, cert_pairs=None, start=True):
        gw = Gateway(pbxgate_bin, workdir, cert_pairs or [certs.main, certs.alt],
                     upstream_port, extra=extra, overrides=overrides,
                     name="gw-%s" % uuid.uuid4().hex[:8])
        made.append(gw)
        if start:
            gw.start()
        return gw

    yield make
    for gw in made:
        _finish_gateway(gw)


@pytest.fixture
def make_upstream(workdir):
    made = []

    def make(port=None):
        up = Upstream(workdir, port=port, name="up-%s" % uuid.uuid4().hex[:8])
        made.append(up)
        return up.start()

    yield make
    for up in made:
        _finish_upstream(up)


def upstream_marker(upstream, gateway, ctx):
    """Sends a marker request through the gateway and returns the upstream's
    log entries (requests and violations) recorded before the marker arrived.
    Used to prove that the gateway forwarded nothing of an earlier exchange."""
    from helpers import Client
    tag = uuid.uuid4().hex
    with Client(gateway.port, ctx) as c:
        r = c.request("GET", "/headers?marker=" + tag)
        assert r.status == 200, r

    def seen():
        es = upstream.entries()
        for i, e in enumerate(es):
            if e.get("target", "").endswith("marker=" + tag):
                return (es[:i],)
        return None
    return wait_until(seen, timeout=10, what="marker at the upstream")[0]
