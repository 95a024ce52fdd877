"""test_pgcheck.py -- `pbxgate check` with a PostgreSQL user store: the
policy's `user` names are looked up in it as in a SQLite store, through a
read-only transaction that never creates, migrates or changes the store;
a store that cannot be read is a note, never an error. Uses test_pgstore's
throwaway PostgreSQL 15."""

import subprocess
import uuid

from auth_helpers import make_auth_gateway  # noqa: F401
from test_pgstore import FAST, postgres  # noqa: F401

POLICY = ("allow path ^/_pbxgate/\n"
          "deny  user mallory,nobody\n"
          "mfa   path ^/\n"
          "default deny\n")
NOTE = "note: user names in the policy not checked against the user store: "


def _gateway(make_auth_gateway, upstream, url):  # noqa: F811
    key = "%s.key" % uuid.uuid4().hex[:8]   # in the gateway's directory
    return make_auth_gateway(upstream.port, start=False, policy=POLICY,
                             auth_extra=FAST + ["user_db %s" % url, "secret_key %s" % key])


def _check(gw):
    r = subprocess.run([gw.binary, "check", "-c", gw.conf], capture_output=True, timeout=60)
    return r.returncode, r.stderr.decode("utf-8", "replace")


def _tables(postgres, url):  # noqa: F811
    db = url.split("?")[0].rpartition("/")[2]
    return postgres.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", db)


def test_check_warns_about_user_names_no_postgresql_user_has(
        postgres, make_auth_gateway, upstream):  # noqa: F811
    url = postgres.new_database()
    gw = _gateway(make_auth_gateway, upstream, url)
    r = gw.cli("user", "add", "mallory", input=b"a fine passphrase\n")
    assert r.returncode == 0, r
    version = postgres.psql("SELECT v FROM meta WHERE k = 'version'",
                            url.split("?")[0].rpartition("/")[2])
    rc, err = _check(gw)
    assert rc == 0, err
    pol = gw.conf.replace("pbxgate.conf", "auth.policy")
    assert [line for line in err.splitlines() if "warning" in line] == [
        "%s:2:20: warning: user 'nobody' matches nobody: no such user in %s "
        "(add it with `pbxgate user add` or fix the name)" % (pol, url)], err
    assert NOTE not in err, err
    assert err.rstrip().endswith("configuration is valid"), err
    # read only: the store's change counter did not move
    assert postgres.psql("SELECT v FROM meta WHERE k = 'version'",
                         url.split("?")[0].rpartition("/")[2]) == version


def test_check_never_creates_a_postgresql_store(postgres, make_auth_gateway, upstream):  # noqa: F811
    url = postgres.new_database()
    gw = _gateway(make_auth_gateway, upstream, url)
    rc, err = _check(gw)
    assert rc == 0, err
    assert (NOTE + "%s: holds no user store yet (pbxgate creates it at its first start "
            "or `pbxgate user add`)" % url) in err, err
    assert "warning" not in err, err
    assert _tables(postgres, url) == "0"


def test_check_notes_a_database_that_is_not_a_user_store(
        postgres, make_auth_gateway, upstream):  # noqa: F811
    url = postgres.new_database()
    db = url.split("?")[0].rpartition("/")[2]
    postgres.psql("CREATE TABLE other(x int)", db)
    gw = _gateway(make_auth_gateway, upstream, url)
    rc, err = _check(gw)
    assert rc == 0, err
    assert (NOTE + "%s: the database schema holds tables that are not a pbxgate user "
            "store; refusing to touch it" % url) in err, err
    assert _tables(postgres, url) == "1"


def test_check_notes_an_unreachable_server(make_auth_gateway, upstream, tmp_path):  # noqa: F811
    url = "postgresql:///gw?host=%s&user=pbxgate" % tmp_path   # no server there
    gw = _gateway(make_auth_gateway, upstream, url)
    rc, err = _check(gw)
    assert rc == 0, err
    assert (NOTE + "%s: cannot connect to PostgreSQL: " % url) in err, err
    assert err.rstrip().endswith("configuration is valid"), err
