"""test_sites.py -- site blocks (issue 17 item 1, phase 1): `pbxgate check`
validates two sites with their own certificates, upstreams, policies and
user stores and reports each site's problems at FILE:LINE:COL; the other
commands take --site; `run` serves sites (test_sites_run.py), each with its
own SMTP relay listener (test_smtp_sites.py)."""

import os
import subprocess

import pytest

from helpers import mkcert
from lock_helpers import run_cli


def _write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


@pytest.fixture(scope="module")
def site_dir(workdir):
    d = os.path.join(workdir, "sites")
    os.makedirs(d, exist_ok=True)
    mkcert(d, "a", "a.example")
    mkcert(d, "b", "b.example")
    _write(os.path.join(d, "a.policy"), "allow path ^/_pbxgate/\ndefault allow\n")
    _write(os.path.join(d, "b.policy"), "allow user bob path ^/admin/\ndefault deny\n")
    return d


def _two_sites(d, a_extra="", b_extra=""):
    """Top level lines 1-3; site a at line 4, site b at line 12."""
    return _write(os.path.join(d, "sites.conf"), (
        "listen 127.0.0.1:1\n"                      # 1
        "upstream http://127.0.0.1:2\n"             # 2
        "title \"Top\"\n"                           # 3
        "site a {\n"                                # 4
        "\tserver_name a.example\n"                 # 5
        "\ttls_cert a.pem\n"                        # 6
        "\ttls_key a.key\n"                         # 7
        "\tpolicy a.policy\n"                       # 8
        "\tuser_db a.db\n"                          # 9
        "%s"                                        # 10
        "}\n"                                       # 11
        "site b {\n"                                # 12
        "\tserver_name b.example\n"                 # 13
        "\ttls_cert b.pem\n"                        # 14
        "\ttls_key b.key\n"                         # 15
        "\tupstream http://127.0.0.1:3\n"           # 16
        "\tpolicy b.policy\n"                       # 17
        "%s"                                        # 18
        "}\n") % (a_extra or "\n", b_extra or "\n"))


def test_check_two_valid_sites(pbxgate_bin, site_dir):
    conf = _two_sites(site_dir)
    r = run_cli(pbxgate_bin, "check", "-c", conf)
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines()[-1] == "%s: configuration is valid" % conf


def test_check_reports_each_sites_errors(pbxgate_bin, site_dir):
    conf = _two_sites(site_dir, a_extra="\ttls_cert nope.pem\n",
                      b_extra="\tupstream_verify maybe\n")
    r = run_cli(pbxgate_bin, "check", "-c", conf)
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert lines == [
        "%s:10:11: error: site \"a\": tls_cert: %s/nope.pem: cannot open: "
        "No such file or directory" % (conf, site_dir),
        "%s:18:18: error: site \"b\": upstream_verify: expected on or off, "
        "not \"maybe\"" % conf,
        "%s: configuration is NOT valid (2 errors)" % conf,
    ], r.stderr


def test_check_site_without_upstream_names_its_line(pbxgate_bin, site_dir):
    conf = _write(os.path.join(site_dir, "noup.conf"),
                  "listen 127.0.0.1:1\nsite a {\n\tserver_name a.example\n"
                  "\ttls_cert a.pem\n\ttls_key a.key\n}\n")
    r = run_cli(pbxgate_bin, "check", "-c", conf)
    assert r.returncode == 1
    assert r.stderr.splitlines()[0] == (
        "%s:2:1: error: site \"a\": no upstream: add e.g. \"upstream "
        "http://127.0.0.1:5000\"" % conf)


def test_check_unknown_policy_user_per_site(pbxgate_bin, site_dir):
    """b's policy names bob, who is not in b's own (empty) store: checked
    against that store, not the top level's or a's."""
    plain = _write(os.path.join(site_dir, "plain.conf"),
                   "listen 127.0.0.1:1\nupstream http://127.0.0.1:2\n"
                   "tls_cert a.pem\ntls_key a.key\nuser_db b.db\n")
    r = run_cli(pbxgate_bin, "user", "list", "-c", plain)    # creates b.db
    assert r.returncode == 0, r.stderr
    conf = _two_sites(site_dir, b_extra="\tuser_db b.db\n")
    r = run_cli(pbxgate_bin, "check", "-c", conf)
    assert r.returncode == 0, r.stderr
    assert ("%s/b.policy:1:12: warning: user 'bob' matches nobody: no such "
            "user in %s/b.db" % (site_dir, site_dir)) in r.stderr, r.stderr


def test_check_name_served_by_two_sites(pbxgate_bin, site_dir):
    conf = _write(os.path.join(site_dir, "overlap.conf"),
                  "listen 127.0.0.1:1\nupstream http://127.0.0.1:2\n"
                  "tls_cert a.pem\ntls_key a.key\n"
                  "site a {\n\tserver_name a.example\n}\n"
                  "site b {\n\tserver_name b.example A.example\n}\n")
    r = run_cli(pbxgate_bin, "check", "-c", conf)
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        "%s:9:24: error: server_name a.example of site \"b\" is also served "
        "by site \"a\" (%s:6): a name belongs to one site" % (conf, conf),
        "%s: configuration is NOT valid (1 error)" % conf], r.stderr


@pytest.mark.parametrize("cmd", ["run", "check"])
def test_top_level_smtp_listen_beside_sites_refused(pbxgate_bin, site_dir,
                                                     cmd):
    """The relay beside sites is each site's (test_smtp_sites.py): a
    top-level smtp_listen is refused at its line, by run as by check."""
    _write(os.path.join(site_dir, "scrub.rules"),
           "rule pw\n  kind text\n  pattern secret\n  action replace\nend\n")
    conf = _two_sites(site_dir)
    with open(conf, "a", encoding="utf-8") as f:
        f.write("smtp_listen 127.0.0.1:4\nsmtp_relay 127.0.0.1:5\n"
                "scrub_rules scrub.rules\n")
    r = run_cli(pbxgate_bin, cmd, "-c", conf, timeout=20)
    assert r.returncode == 1
    where = {"run": "error: %s:20:13: ", "check": "%s:20:13: error: "}[cmd]
    assert (where % conf + "smtp_listen at the top level is not served "
            "beside site blocks: the relay would not know which site's PBX "
            "connected; put smtp_listen inside each site block that relays "
            "mail") in r.stderr, r.stderr


@pytest.mark.parametrize("cmd", [["run"], ["check"]])
def test_site_option_refused_by_run_and_check(pbxgate_bin, site_dir, cmd):
    conf = _two_sites(site_dir)
    r = run_cli(pbxgate_bin, cmd[0], "-c", conf, "--site", "a", timeout=20)
    assert r.returncode == 2
    assert r.stderr.startswith("pbxgate %s: --site is not an option of %s: "
                               "it applies to the whole file\n"
                               % (cmd[0], cmd[0])), r.stderr


@pytest.mark.parametrize("cmd", [["user", "list"], ["session", "list"],
                                 ["policy", "explain", "--ip", "127.0.0.1"],
                                 ["integrity", "diff"]])
def test_store_and_policy_commands_need_a_site(pbxgate_bin, site_dir, cmd):
    conf = _two_sites(site_dir)
    r = run_cli(pbxgate_bin, *cmd, "-c", conf, timeout=20)
    assert r.returncode != 0
    assert ("pbxgate %s: %s has site blocks: say which site with --site NAME"
            % (" ".join(cmd[:2]) if cmd[0] in ("policy", "integrity")
               else cmd[0], conf)) in r.stderr, r.stderr


def test_unknown_site_refused(pbxgate_bin, site_dir):
    conf = _two_sites(site_dir)
    r = run_cli(pbxgate_bin, "user", "list", "-c", conf, "--site", "zz")
    assert r.returncode == 1
    assert r.stderr == 'pbxgate user: %s has no site "zz"\n' % conf


def test_site_option_needs_a_name(pbxgate_bin, site_dir):
    r = run_cli(pbxgate_bin, "user", "list", "--site")
    assert r.returncode == 2
    assert r.stderr.startswith("pbxgate: --site needs a NAME\n"), r.stderr


def test_users_are_per_site(pbxgate_bin, site_dir):
    """A user added with --site b is in b's store only; a, with its own,
    does not list it."""
    conf = _two_sites(site_dir, b_extra="\tuser_db b2.db\n")
    r = subprocess.run([pbxgate_bin, "user", "add", "carol", "-c", conf,
                        "--site=b"], input="a long enough passphrase\n",
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    b = run_cli(pbxgate_bin, "user", "list", "-c", conf, "--site", "b")
    a = run_cli(pbxgate_bin, "user", "list", "-c", conf, "--site", "a")
    assert b.returncode == 0 and a.returncode == 0, (a.stderr, b.stderr)
    assert any(l.split()[0] == "carol" for l in b.stdout.splitlines()[1:]), b.stdout
    assert "carol" not in a.stdout, a.stdout


def test_policy_explain_per_site(pbxgate_bin, site_dir):
    """a's policy allows everything, b's denies all but bob's /admin/."""
    conf = _two_sites(site_dir)
    args = ["policy", "explain", "--ip", "127.0.0.1", "--path", "/x", "-c",
            conf]
    a = run_cli(pbxgate_bin, *args, "--site", "a")
    b = run_cli(pbxgate_bin, *args, "--site", "b")
    assert a.returncode == 0, a.stdout + a.stderr
    assert b.returncode == 1, b.stdout + b.stderr
    assert "%s/b.policy" % site_dir in b.stdout, b.stdout
