"""test_pglive.py -- live updates of the PostgreSQL user store (issue 17
item 2): every version bump sends a NOTIFY at commit; each gateway's
listener (its own connection and thread) reloads its in-memory tables when
it hears one, so a logout or a disabled user on A is refused on B within
1 s; with the server stopped the listener says so in /readyz and the error
log, and after the server is back it catches up on what changed meanwhile.
Uses test_pgstore's throwaway PostgreSQL 15.
"""

import os
import subprocess
import time
import uuid

import pytest

from auth_helpers import enrol, forms, login, make_auth_gateway  # noqa: F401
from helpers import wait_until
from test_pgstore import FAST, Postgres, _readyz, on, postgres  # noqa: F401

LIVE_S = 1.0    # the bound for a change to reach another gateway


@pytest.fixture
def live_pair(postgres, make_auth_gateway, upstream, workdir):  # noqa: F811
    """Two gateways on one fresh database, and its URL."""
    url = postgres.new_database()
    key = os.path.join(workdir, "live-%s.key" % uuid.uuid4().hex[:8])
    extra = FAST + ["user_db %s" % url, "secret_key %s" % key]
    a = make_auth_gateway(upstream.port, auth_extra=extra)
    b = make_auth_gateway(upstream.port, auth_extra=extra)
    return a, b, url


def _psql(url, sql):
    r = subprocess.run(["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql, url],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r
    return r.stdout.decode().strip()


def test_bump_sends_notify_with_the_version(live_pair):
    """A psql session LISTENs; a change through the CLI is announced on
    pbxgate_store with the version it committed."""
    a, _, url = live_pair
    assert a.cli("user", "add", "nora", "--enrol").returncode == 0
    p = subprocess.Popen(["psql", "-X", "-A", "-t", url], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        p.stdin.write("LISTEN pbxgate_store;\nSELECT 'listening';\n")
        p.stdin.flush()
        assert p.stdout.readline().strip() in ("LISTEN", "")
        wait_until(lambda: p.stdout.readline().strip() == "listening", timeout=10,
                   what="psql to listen")
        res = a.cli("user", "disable", "nora")
        assert res.returncode == 0, res
        out, _ = p.communicate("SELECT 'done';\n", timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
    version = _psql(url, "SELECT v FROM meta WHERE k = 'version'")
    assert ('Asynchronous notification "pbxgate_store" with payload "%s"' % version) in out, out
