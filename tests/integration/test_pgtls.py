"""test_pgtls.py -- the PostgreSQL user store over TCP (issue 17 item 2):
a throwaway server on 127.0.0.1 with ssl=on, a certificate of a test CA
made here, and only `hostssl ... scram-sha-256` for TCP; a role with a
password the gateway reads from user_db_password_file. The right CA and
host name connect over TLS (pg_stat_ssl says so); a wrong CA, a host name
the certificate does not carry, no CA at all, a wrong password, a TCP host
from libpq's environment with PGSSLMODE=require are refused at start with
a message naming the problem (every host tried, not only the first); an
sslmode that does not verify, a password in the URL and a password file
others can read, or empty, too long, missing or a symbolic link are
refused by `pbxgate check` at their file:line:col. The server is stopped
by the fixture whatever happens; every wait is bounded.
"""

import os
import shutil
import subprocess
import uuid

import pytest

from test_pgstore import FAST, PGBIN, Postgres
from auth_helpers import enrol, login, make_auth_gateway  # noqa: F401 (a fixture)
from helpers import wait_until

ROLE = "gw"
ROLE_PASSWORD = "Tr0ub4dor-and-3-more-words"
RUN_DEADLINE = 30  # seconds; a refused start takes well under one


def _openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=60)


def _ca(d, name):
    cert, key = os.path.join(d, name + ".pem"), os.path.join(d, name + ".key")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", key, "-out", cert, "-days", "3", "-subj", "/CN=" + name,
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return cert, key


def _server_cert(d, ca, name):
    """A leaf of ca for DNS:name only (no IP address in it)."""
    cert, key = os.path.join(d, "server.pem"), os.path.join(d, "server.key")
    csr = os.path.join(d, "server.csr")
    ext = os.path.join(d, "server.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:%s\nbasicConstraints=critical,CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n" % name)
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=" + name)
    _openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
             "-days", "3", "-extfile", ext, "-out", cert)
    return cert, key


class Tls:
    def __init__(self, d):
        self.dir = d
        self.ca = _ca(d, "pg-test-ca")
        self.other_ca = _ca(d, "pg-other-ca")
        self.server = _server_cert(d, self.ca, "localhost")


@pytest.fixture(scope="module")
def pgtls(tmp_path_factory):
    """The TLS server, stopped and removed at the end whatever happened."""
    if not os.access(PGBIN + "/initdb", os.X_OK):
        pytest.skip("postgresql-15 is not installed (tests/install-deps)")
    tls = Tls(str(tmp_path_factory.mktemp("pgtls")))
    pg = Postgres(tls=tls.server)
    try:
        pg.start()
        pg.psql("CREATE ROLE %s LOGIN PASSWORD '%s'" % (ROLE, ROLE_PASSWORD))
        pg.tls = tls
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(pg.dir, ignore_errors=True)


def _database(pg):
    name = "gw_%s" % uuid.uuid4().hex[:12]
    pg.psql("CREATE DATABASE %s OWNER %s" % (name, ROLE))
    return name


def _url(pg, db, host="localhost", ca=None, extra=""):
    return "postgresql://%s@%s:%d/%s?sslrootcert=%s%s" % (
        ROLE, host, pg.port, db, ca or pg.tls.ca[0], extra)


def _password_file(workdir, text=ROLE_PASSWORD + "\n", mode=0o600):
    path = os.path.join(workdir, "pgpass-%s" % uuid.uuid4().hex[:8])
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def _gateway(make_auth_gateway, upstream, workdir, url, pwfile, start=True):
    key = os.path.join(workdir, "pgtls-%s.key" % uuid.uuid4().hex[:8])
    return make_auth_gateway(upstream.port, start=start, auth_extra=FAST + [
        "user_db %s" % url, "user_db_password_file %s" % pwfile, "secret_key %s" % key])


def _run(gw):
    """`pbxgate run` expected to fail: (exit status, stderr)."""
    r = subprocess.run([gw.binary, "run", "-c", gw.conf], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=RUN_DEADLINE, cwd=gw.dir)
    return r.returncode, r.stderr.decode("utf-8", "replace")


def _check(gw):
    r = subprocess.run([gw.binary, "check", "-c", gw.conf], capture_output=True, timeout=60)
    return r.returncode, r.stderr.decode("utf-8", "replace")


def _line_of(gw, prefix):
    """1-based line number of the last config line starting with prefix."""
    lines = gw.config_text().splitlines()
    return max(i + 1 for i, line in enumerate(lines) if line.startswith(prefix))


def _ssl_sessions(pg, db):
    """(ssl, version) of each session the gateway's role has open on db."""
    out = pg.psql("SELECT s.ssl, s.version FROM pg_stat_ssl s JOIN pg_stat_activity a"
                  " USING (pid) WHERE a.usename = '%s' AND a.datname = '%s'"
                  " AND a.application_name = 'pbxgate'" % (ROLE, db))
    return [tuple(line.split("|")) for line in out.splitlines() if line]


def test_verify_full_password_file_tls_session(pgtls, make_auth_gateway, upstream, workdir,
                                               ctx):
    db = _database(pgtls)
    gw = _gateway(make_auth_gateway, upstream, workdir, _url(pgtls, db),
                  _password_file(workdir))
    _, secret, _ = enrol(gw, ctx, "alice")  # `pbxgate user add` over TLS, then the pages
    _, r = login(gw, ctx, "alice", secret)
    assert r.status == 303, r
    sessions = wait_until(lambda: _ssl_sessions(pgtls, db), timeout=10,
                          what="the gateway's session in pg_stat_ssl")
    assert all(s == "t" and v.startswith("TLSv1.") for s, v in sessions), sessions
    assert pgtls.psql("SELECT name FROM users", db) == "alice"


def test_wrong_ca_refused_at_start(pgtls, make_auth_gateway, upstream, workdir):
    gw = _gateway(make_auth_gateway, upstream, workdir,
                  _url(pgtls, _database(pgtls), ca=pgtls.tls.other_ca[0]),
                  _password_file(workdir), start=False)
    rc, err = _run(gw)
    assert rc == 1, (rc, err)
    assert "cannot connect to PostgreSQL: connection to server at \"localhost\" " \
        "(127.0.0.1), port %d failed: SSL error: certificate verify failed" % pgtls.port \
        in err, err


def test_host_name_not_in_certificate_refused_at_start(pgtls, make_auth_gateway, upstream,
                                                       workdir):
    gw = _gateway(make_auth_gateway, upstream, workdir,
                  _url(pgtls, _database(pgtls), host="127.0.0.1"),
                  _password_file(workdir), start=False)
    rc, err = _run(gw)
    assert rc == 1, (rc, err)
    assert 'server certificate for "localhost" (and 1 other name) does not match host ' \
        'name "127.0.0.1"' in err, err


@pytest.mark.parametrize("mode", ["require", "verify-ca", "disable", "prefer", "allow"])
def test_sslmode_that_does_not_verify_refused_by_check(pgtls, make_auth_gateway, upstream,
                                                       workdir, mode):
    gw = _gateway(make_auth_gateway, upstream, workdir,
                  _url(pgtls, "postgres", extra="&sslmode=" + mode),
                  _password_file(workdir), start=False)
    rc, err = _check(gw)
    assert rc == 1, (rc, err)
    assert "%s:%d:9: error: user_db: sslmode=%s does not verify the PostgreSQL server: use " \
        "sslmode=verify-full (the default pbxgate sets) or a Unix socket " \
        "(host=/run/postgresql)" % (gw.conf, _line_of(gw, "user_db "), mode) in err, err


@pytest.mark.parametrize("form", ["user", "query"])
def test_password_in_url_refused_by_check(pgtls, make_auth_gateway, upstream, workdir, form):
    url = _url(pgtls, "postgres")
    url = url.replace(ROLE + "@", "%s:%s@" % (ROLE, ROLE_PASSWORD)) if form == "user" \
        else url + "&password=" + ROLE_PASSWORD
    gw = _gateway(make_auth_gateway, upstream, workdir, url, _password_file(workdir),
                  start=False)
    rc, err = _check(gw)
    assert rc == 1, (rc, err)
    assert "%s:%d:9: error: user_db: the user_db URL holds a password: remove it and put it in a file " \
        "named by user_db_password_file" % (gw.conf, _line_of(gw, "user_db ")) in err, err


def test_wrong_password_refused_at_start_not_shown(pgtls, make_auth_gateway, upstream,
                                                   workdir):
    wrong = "not-the-password-%s" % uuid.uuid4().hex
    gw = _gateway(make_auth_gateway, upstream, workdir, _url(pgtls, _database(pgtls)),
                  _password_file(workdir, wrong + "\n"), start=False)
    rc, err = _run(gw)
    assert rc == 1, (rc, err)
    assert 'password authentication failed for user "%s"' % ROLE in err, err
    assert wrong not in err and ROLE_PASSWORD not in err, err
    r = gw.cli("user", "add", "bob", "--enrol")
    assert r.returncode != 0, r
    out = (r.stdout + r.stderr).decode("utf-8", "replace")
    assert 'password authentication failed for user "%s"' % ROLE in out, out
    assert wrong not in out, out


def _password_file_error(pgtls, make_auth_gateway, upstream, workdir, path):
    """`pbxgate check` of a config naming path as user_db_password_file:
    (exit status, stderr, the expected "FILE:LINE:COL: error: " prefix)."""
    gw = _gateway(make_auth_gateway, upstream, workdir, _url(pgtls, "postgres"), path,
                  start=False)
    rc, err = _check(gw)
    line = _line_of(gw, "user_db_password_file ")
    return rc, err, "%s:%d:23: error: user_db_password_file: %s: " % (gw.conf, line, path)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o660, 0o644, 0o666])
def test_password_file_others_can_access_refused_by_check(pgtls, make_auth_gateway,
                                                          upstream, workdir, mode):
    path = _password_file(workdir, mode=mode)
    rc, err, where = _password_file_error(pgtls, make_auth_gateway, upstream, workdir, path)
    assert rc == 1, (rc, err)
    assert where + "mode %04o: the password file must be readable only by its owner " \
        "(chmod 600)" % mode in err, err
    assert ROLE_PASSWORD not in err, err


def test_password_file_owner_only_modes_pass_check(pgtls, make_auth_gateway, upstream,
                                                   workdir):
    for mode in (0o600, 0o400):
        gw = _gateway(make_auth_gateway, upstream, workdir, _url(pgtls, "postgres"),
                      _password_file(workdir, mode=mode), start=False)
        rc, err = _check(gw)
        assert rc == 0 and "configuration is valid" in err, (oct(mode), rc, err)


def test_password_file_too_permissive_refused_at_start(pgtls, make_auth_gateway, upstream,
                                                      workdir):
    """Made 0644 after `check` passed: `run` reads the config again and
    refuses it, saying where as `check` does."""
    path = _password_file(workdir)
    gw = _gateway(make_auth_gateway, upstream, workdir, _url(pgtls, _database(pgtls)), path,
                  start=False)
    assert _check(gw)[0] == 0
    os.chmod(path, 0o644)
    rc, err = _run(gw)
    assert rc == 1, (rc, err)
    assert "error: %s:%d:23: user_db_password_file: %s: mode 0644: the password file must " \
        "be readable only by its owner (chmod 600)" % (
            gw.conf, _line_of(gw, "user_db_password_file "), path) in err, err
    assert err.count("mode 0644") == 1, err
    assert ROLE_PASSWORD not in err, err


def test_password_file_missing_refused_by_check(pgtls, make_auth_gateway, upstream, workdir):
    path = os.path.join(workdir, "no-such-pgpass")
    rc, err, where = _password_file_error(pgtls, make_auth_gateway, upstream, workdir, path)
    assert rc == 1, (rc, err)
    assert where + "cannot open: No such file or directory" in err, err


def test_password_file_symlink_refused_by_check(pgtls, make_auth_gateway, upstream, workdir):
    path = os.path.join(workdir, "pgpass-link-%s" % uuid.uuid4().hex[:8])
    os.symlink(_password_file(workdir), path)
    rc, err, where = _password_file_error(pgtls, make_auth_gateway, upstream, workdir, path)
    assert rc == 1, (rc, err)
    assert where + "is a symbolic link: name the file itself" in err, err


@pytest.mark.parametrize("text", ["", "\n", "\r\n"])
def test_password_file_empty_refused_by_check(pgtls, make_auth_gateway, upstream, workdir,
                                              text):
    path = _password_file(workdir, text)
    rc, err, where = _password_file_error(pgtls, make_auth_gateway, upstream, workdir, path)
    assert rc == 1, (rc, err)
    assert where + "the password file must hold one line of 1 to 1022 bytes" in err, err


def test_password_file_too_long_refused_by_check(pgtls, make_auth_gateway, upstream, workdir):
    path = _password_file(workdir, "x" * 1023 + "\n")
    rc, err, where = _password_file_error(pgtls, make_auth_gateway, upstream, workdir, path)
    assert rc == 1, (rc, err)
    assert where + "the password file must hold one line of 1 to 1022 bytes" in err, err
    assert "x" * 64 not in err, err


def test_tcp_from_environment_still_verified(pgtls, make_auth_gateway, upstream, workdir):
    """A URL with no host passes the config as a local socket; libpq then
    takes PGHOST and PGSSLMODE from the environment. The server reached that
    way over TCP must be verified all the same: PGSSLMODE=require with a CA
    that did not issue its certificate is refused, not connected."""
    url = "postgresql:///%s?user=%s&port=%d&sslrootcert=%s" % (
        _database(pgtls), ROLE, pgtls.port, pgtls.tls.other_ca[0])
    gw = _gateway(make_auth_gateway, upstream, workdir, url, _password_file(workdir),
                  start=False)
    assert _check(gw)[0] == 0
    env = dict(os.environ, PGHOST="localhost", PGSSLMODE="require")
    r = subprocess.run([gw.binary, "run", "-c", gw.conf], stdin=subprocess.DEVNULL, env=env,
                       capture_output=True, timeout=RUN_DEADLINE, cwd=gw.dir)
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode == 1, (r.returncode, err)
    assert "port %d failed: SSL error: certificate verify failed" % pgtls.port in err, err


def test_every_host_tried_is_named_in_the_error(pgtls, make_auth_gateway, upstream, workdir):
    """libpq tries each host (and each address of a name) in turn and says
    why each failed, one line each: the first alone would hide the server
    that answered behind the one that was down."""
    url = "postgresql://%s@localhost:1,localhost:%d/%s?sslrootcert=%s" % (
        ROLE, pgtls.port, _database(pgtls), pgtls.tls.other_ca[0])
    gw = _gateway(make_auth_gateway, upstream, workdir, url, _password_file(workdir),
                  start=False)
    rc, err = _run(gw)
    assert rc == 1, (rc, err)
    line = [x for x in err.splitlines() if "cannot connect to PostgreSQL" in x]
    assert len(line) == 1, err
    assert 'port 1 failed: Connection refused' in line[0], err
    assert 'port %d failed: SSL error: certificate verify failed' % pgtls.port in line[0], err
    assert "\t" not in line[0], err


def test_no_sslrootcert_refused_at_start(pgtls, make_auth_gateway, upstream, workdir):
    """Without sslrootcert libpq looks for ~/.postgresql/root.crt; none
    there: no connection, and the message names the file it looked for."""
    home = os.path.join(workdir, "home-%s" % uuid.uuid4().hex[:8])
    os.mkdir(home)
    url = "postgresql://%s@localhost:%d/%s" % (ROLE, pgtls.port, _database(pgtls))
    gw = _gateway(make_auth_gateway, upstream, workdir, url, _password_file(workdir),
                  start=False)
    r = subprocess.run([gw.binary, "run", "-c", gw.conf], stdin=subprocess.DEVNULL,
                       env=dict(os.environ, HOME=home), capture_output=True,
                       timeout=RUN_DEADLINE, cwd=gw.dir)
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode == 1, (r.returncode, err)
    assert 'root certificate file "%s/.postgresql/root.crt" does not exist' % home in err, err


def test_sslmode_verify_full_in_url_accepted_by_check(pgtls, make_auth_gateway, upstream,
                                                      workdir):
    gw = _gateway(make_auth_gateway, upstream, workdir,
                  _url(pgtls, "postgres", extra="&sslmode=verify-full"),
                  _password_file(workdir), start=False)
    rc, err = _check(gw)
    assert rc == 0 and "configuration is valid" in err, (rc, err)


def test_hostaddr_does_not_skip_the_name_check(pgtls, make_auth_gateway, upstream, workdir):
    """hostaddr picks the address; the certificate is still checked against
    host, here a name it does not carry."""
    url = _url(pgtls, _database(pgtls), host="db.invalid", extra="&hostaddr=127.0.0.1")
    gw = _gateway(make_auth_gateway, upstream, workdir, url, _password_file(workdir),
                  start=False)
    rc, err = _run(gw)
    assert rc == 1, (rc, err)
    assert 'server certificate for "localhost" does not match host name "db.invalid"' \
        in err, err
