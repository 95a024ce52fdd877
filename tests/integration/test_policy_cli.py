"""test_policy_cli.py -- `pbxgate check` on policies with each diagnostic of the
policy language (exact `FILE:LINE:COL: level: message` line, exit status), and
`pbxgate policy explain` (deciding rule, rules passed over, exit status as
policy/policy.h documents for pol_cmd_explain)."""

import os
import shutil
import subprocess

import pytest

from lock_helpers import MMDB_SCRIPT, base_config, have_mmdb_writer, run_cli

HAVE_MMDB = have_mmdb_writer()


@pytest.fixture(scope="module")
def mmdb(tmp_path_factory):
    """The shared policy test database (documentation ranges), made at test time."""
    if not HAVE_MMDB:
        pytest.skip("libmaxmind-db-writer-perl not installed")
    out = str(tmp_path_factory.mktemp("mmdb") / "test.mmdb")
    subprocess.run(["perl", MMDB_SCRIPT, out], check=True, capture_output=True, timeout=60)
    return out


def _check(pbxgate_bin, certs, d, policy_text, extra=(), files=None):
    """Writes DIR/lockdown.policy (and `files`), a config naming it, runs
    `pbxgate check`; returns (CompletedProcess, policy path, conf path)."""
    pol = os.path.join(d, "lockdown.policy")
    with open(pol, "w", encoding="utf-8") as f:
        f.write(policy_text)
    for name, text in (files or {}).items():
        with open(os.path.join(d, name), "w", encoding="utf-8") as f:
            f.write(text)
    conf = base_config(d, certs, pol, extra)
    return run_cli(pbxgate_bin, "check", "-c", conf), pol, conf


def _diag_lines(stderr):
    return [ln for ln in stderr.splitlines() if not ln.endswith("configuration is valid")
            and "configuration is NOT valid" not in ln]


# (id, policy text, extra files, needs geoip, expected line with {pol} / {dir})
ERRORS = [
    ("unknown-list", "allow from @ofice\n", None, False,
     "{pol}:1:12: error: unknown list '@ofice' (define it with 'list' before this line)"),
    ("unknown-list-in-list-of-items", "list office 10.0.0.0/8\ndeny from 10.1.0.0/16,@ofice\n",
     None, False,
     "{pol}:2:23: error: unknown list '@ofice' (define it with 'list' before this line)"),
    ("bad-cidr-address", "deny from 10.0.0.256\n", None, False,
     "{pol}:1:11: error: bad address '10.0.0.256' (expected an IPv4 or IPv6 address, "
     "optionally with /LEN)"),
    ("bad-cidr-prefix", "list office 127.0.0.2/33\n", None, False,
     "{pol}:1:13: error: bad prefix length in '127.0.0.2/33' (IPv4 takes /0 to /32, "
     "no leading zeros)"),
    ("host-bits", "deny from 10.0.0.1/8\n", None, False,
     "{pol}:1:11: error: '10.0.0.1/8' has host bits set: write 10.0.0.0/8 for the "
     "network, or 10.0.0.1 alone for the one address"),
    ("host-bits-in-list-file", "list l file:l.txt\ndeny from @l\n", {"l.txt": "192.0.2.7/24\n"},
     False,
     "{dir}/l.txt:1:1: error: '192.0.2.7/24' has host bits set: write 192.0.2.0/24 for the "
     "network, or 192.0.2.7 alone for the one address"),
    ("bad-cidr-in-list-file", "list blocked file:block.txt\ndeny from @blocked\n",
     {"block.txt": "# blocked\n10.0.0.0/8\n\nx.y\n"}, False,
     "{dir}/block.txt:4:1: error: bad address 'x.y' (expected an IPv4 or IPv6 address, "
     "optionally with /LEN)"),
    ("bad-regex", "deny path ^/(a\n", None, False,
     "{pol}:1:15: error: bad regex: missing closing parenthesis (at offset 4 of '^/(a')"),
    ("bad-regex-offset", "deny path ^/(management\n", None, False,
     "{pol}:1:24: error: bad regex: missing closing parenthesis "
     "(at offset 13 of '^/(management')"),
    ("unknown-country", "deny country !JP,XY\n", None, True,
     "{pol}:1:18: error: unknown country code 'XY' (ISO 3166-1 alpha-2 expected, e.g. JP)"),
    ("country-without-geoip-db", "deny country !JP,US\n", None, False,
     "{pol}:1:6: error: 'country' needs a GeoIP database: set geoip_db in the main "
     "configuration"),
    ("unknown-matcher", "allow frm 10.0.0.0/8\n", None, False,
     "{pol}:1:7: error: unknown matcher 'frm' (expected from, country, asn, user, group, "
     "role, path, method, header, desktop-app, any, audit, case-sensitive or page)"),
    ("list-defined-twice", "list office 10.0.0.0/8\nlist office 10.1.0.0/16\n", None, False,
     "{pol}:2:6: error: list 'office' already defined at {pol}:1"),
    ("from-without-value", "deny from\n", None, False,
     "{pol}:1:6: error: 'from' needs a CIDR or @list, comma-separated"),
    ("rule-without-matcher", "allow\n", None, False,
     "{pol}:1:1: error: 'allow' rule has no matcher (write 'any' to match every request)"),
    ("default-twice", "default allow\ndefault deny\n", None, False,
     "{pol}:2:1: error: default already set at {pol}:1"),
    ("any-combined", "allow any from 10.0.0.1\n", None, False,
     "{pol}:1:7: error: 'any' cannot be combined with other matchers"),
]


@pytest.mark.parametrize("text,files,geo,want", [e[1:] for e in ERRORS],
                         ids=[e[0] for e in ERRORS])
def test_check_reports_policy_error(pbxgate_bin, certs, tmp_path, request, text, files, geo,
                                    want):
    extra = ["geoip_db %s" % request.getfixturevalue("mmdb")] if geo else []
    d = str(tmp_path)
    r, pol, conf = _check(pbxgate_bin, certs, d, text, extra, files)
    want = want.format(pol=pol, dir=d)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert _diag_lines(r.stderr) == [want], r.stderr
    assert r.stderr.splitlines()[-1] == "%s: configuration is NOT valid (1 error)" % conf
    assert r.stdout == ""


WARNINGS = [
    ("rule-after-any", "allow any\ndeny path ^/x\n", None,
     ["{pol}:2:1: warning: rule is never reached: the 'any' rule at {pol}:1 matches "
      "every request"]),
]


@pytest.mark.parametrize("text,files,want", [w[1:] for w in WARNINGS],
                         ids=[w[0] for w in WARNINGS])
def test_check_warning_exits_zero(pbxgate_bin, certs, tmp_path, text, files, want):
    d = str(tmp_path)
    r, pol, conf = _check(pbxgate_bin, certs, d, text, files=files)
    assert r.returncode == 0, (r.returncode, r.stderr)
    assert _diag_lines(r.stderr) == [w.format(pol=pol, dir=d) for w in want], r.stderr
    assert r.stderr.splitlines()[-1] == "%s: configuration is valid" % conf


def test_check_reports_every_error_of_a_file(pbxgate_bin, certs, tmp_path):
    """All problems are listed (not only the first), in file order."""
    text = ("list office 10.0.0.0/8\n"
            "allow from @ofice\n"
            "deny from 10.0.0.1/8\n"
            "deny path ^/(a\n"
            "deny from 300.0.0.1\n")
    r, pol, conf = _check(pbxgate_bin, certs, str(tmp_path), text)
    assert r.returncode == 1
    locs = [ln.split(": ")[0] for ln in _diag_lines(r.stderr)]
    assert locs == ["%s:2:12" % pol, "%s:3:11" % pol, "%s:4:15" % pol, "%s:5:11" % pol], \
        r.stderr
    assert "configuration is NOT valid (4 errors)" in r.stderr


def test_check_clean_policy_is_valid(pbxgate_bin, certs, tmp_path):
    text = ("list office 127.0.0.2/32\n"
            "allow from @office path ^/management(/|$) audit\n"
            "deny  path ^/management(/|$)\n"
            "default allow\n")
    r, _, conf = _check(pbxgate_bin, certs, str(tmp_path), text)
    assert r.returncode == 0, r.stderr
    assert _diag_lines(r.stderr) == [], r.stderr


def test_check_sample_policy(pbxgate_bin, certs, tmp_path, mmdb):
    """etc/lockdown.policy, with a small stand-in list file wherever it names
    absolute paths, passes check; so does the etc/clients.policy it includes,
    shipped next to it."""
    from helpers import REPO
    sample = open(os.path.join(REPO, "etc", "lockdown.policy"), encoding="utf-8").read()
    d = str(tmp_path)
    shutil.copy(os.path.join(REPO, "etc", "clients.policy"), d)
    for i, word in enumerate(w for w in sample.split() if w.startswith("file:/")):
        listfile = os.path.join(d, "list%d.txt" % i)
        with open(listfile, "w", encoding="utf-8") as f:
            f.write("192.0.2.0/24\n")
        sample = sample.replace(word, "file:" + listfile)
    r, _, _ = _check(pbxgate_bin, certs, d, sample, ["geoip_db %s" % mmdb])
    assert r.returncode == 0, r.stderr
    assert not [ln for ln in _diag_lines(r.stderr) if ": error: " in ln], r.stderr


# ---------------------------------------------------------------- policy explain


EXPLAIN_POLICY = ("list office 127.0.0.2/32\n"
                  "allow from @office path ^/management(/|$) audit\n"
                  "deny  path ^/management(/|$)\n"
                  "login path ^/webclient/\n"
                  "mfa   role admin path ^/admin/\n"
                  "default allow\n")


@pytest.fixture
def explain(pbxgate_bin, certs, tmp_path):
    d = str(tmp_path)
    pol = os.path.join(d, "lockdown.policy")
    with open(pol, "w", encoding="utf-8") as f:
        f.write(EXPLAIN_POLICY)
    conf = base_config(d, certs, pol)

    def run(*args):
        return run_cli(pbxgate_bin, "policy", "explain", "-c", conf, *args), pol
    return run


def _passed(out, pol, line, why):
    return ("  passed %s:%d: " % (pol, line) in out
            and out.split("  passed %s:%d: " % (pol, line), 1)[1].splitlines()[1]
            == "    because '%s' does not hold" % why)


def test_explain_deny_names_rule_and_passed_rules(explain):
    r, pol = explain("--ip", "127.0.0.3", "--path", "/%6danagement/")
    assert r.returncode == 1, r.stderr
    out = r.stdout
    assert out.splitlines()[0] == "request: peer 127.0.0.3, GET /management/, no session"
    assert _passed(out, pol, 2, "from @office"), out
    assert "  MATCH  %s:3: deny  path ^/management(/|$)" % pol in out, out
    assert out.splitlines()[-1] == "decision: deny (rule %s:3) [audit]" % pol


def test_explain_allow_from_office(explain):
    r, pol = explain("--ip", "127.0.0.2", "--path", "/MANAGEMENT/x")
    assert r.returncode == 0, r.stderr
    assert "  MATCH  %s:2: " % pol in r.stdout
    assert "passed" not in r.stdout
    assert r.stdout.splitlines()[-1] == "decision: allow (rule %s:2) [audit]" % pol


def test_explain_default(explain):
    r, pol = explain("--ip", "127.0.0.3", "--path", "/x")
    assert r.returncode == 0, r.stderr
    for line, why in ((2, "from @office"), (3, "path ^/management(/|$)"),
                      (4, "path ^/webclient/"), (5, "path ^/admin/")):
        assert _passed(r.stdout, pol, line, why), r.stdout
    assert "  no rule matched: default allow at %s:6" % pol in r.stdout
    assert r.stdout.splitlines()[-1] == "decision: allow (default %s:6)" % pol


def test_explain_login_exits_zero(explain):
    r, pol = explain("--ip", "127.0.0.3", "--path", "/webclient/a")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "decision: login (rule %s:4)" % pol


def test_explain_role_rule_without_session_asks_login(explain):
    r, pol = explain("--ip", "127.0.0.3", "--path", "/admin/a")
    assert r.returncode == 0, r.stderr
    assert "request has no session: log in, then decide again" in r.stdout
    assert r.stdout.splitlines()[-1] == "decision: login (login needed %s:5)" % pol


def test_explain_mfa_with_session(explain):
    r, pol = explain("--ip", "127.0.0.3", "--path", "/admin/a", "--user", "bob",
                     "--role", "admin")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == ("request: peer 127.0.0.3, GET /admin/a, user bob, "
                                        "role admin, mfa no")
    assert r.stdout.splitlines()[-1] == "decision: mfa (rule %s:5)" % pol


def test_explain_refused_path_exits_two(explain):
    r, _ = explain("--ip", "127.0.0.3", "--path", "/management%2F")
    assert r.returncode == 2
    assert r.stdout == ""
    assert "path refused (the gateway answers 400)" in r.stderr
    assert "%2F" in r.stderr


@pytest.mark.parametrize("args,message", [
    (["--path", "/x"], "policy explain: --ip is required"),
    (["--ip", "1.2.3.400"], "policy explain: --ip: bad address"),
    (["--ip", "127.0.0.3", "--role", "root", "--user", "u"], "--role takes admin or user"),
    (["--ip", "127.0.0.3", "--mfa"],
     "--role, --group and --mfa describe a session: give --user"),
    (["--ip", "127.0.0.3", "--header", "novalue"], "--header takes 'Name: value'"),
], ids=["no-ip", "bad-ip", "bad-role", "mfa-without-user", "bad-header"])
def test_explain_usage_error_exits_two(explain, args, message):
    r, _ = explain(*args)
    assert r.returncode == 2
    assert r.stdout == ""
    assert message in r.stderr, r.stderr
    assert "usage: policy explain --ip ADDR" in r.stderr


def test_explain_without_policy_line_exits_two(pbxgate_bin, certs, tmp_path):
    d = str(tmp_path)
    conf = base_config(d, certs, "/nonexistent")
    with open(conf, encoding="utf-8") as f:
        text = f.read().replace("policy /nonexistent\n", "")
    with open(conf, "w", encoding="utf-8") as f:
        f.write(text)
    r = run_cli(pbxgate_bin, "policy", "explain", "-c", conf, "--ip", "127.0.0.1")
    assert r.returncode == 2
    assert "has no policy line" in r.stderr


def test_explain_with_broken_policy_exits_two(explain, tmp_path):
    with open(str(tmp_path / "lockdown.policy"), "a", encoding="utf-8") as f:
        f.write("deny from 10.0.0.256\n")
    r, pol = explain("--ip", "127.0.0.3")
    assert r.returncode == 2
    assert "%s:7:11: " % pol in r.stderr
    assert r.stdout == ""


@pytest.fixture
def explain_geo(pbxgate_bin, certs, tmp_path, mmdb):
    """Explain against the shared test database: 203.0.113.0/24 JP AS64500,
    198.51.100.0/24 US AS64501, 192.0.2.128/25 AS64504 without country."""
    d = str(tmp_path)
    pol = os.path.join(d, "lockdown.policy")
    with open(pol, "w", encoding="utf-8") as f:
        f.write("deny country !JP\nlogin header X-Test ^a path ^/h\ndefault allow\n")
    conf = base_config(d, certs, pol, ["geoip_db %s" % mmdb])

    def run(*args):
        return run_cli(pbxgate_bin, "policy", "explain", "-c", conf, *args), pol
    return run


@pytest.mark.parametrize("ip,peer,rc,decision", [
    ("203.0.113.7", "203.0.113.7 country JP AS64500", 0, "allow (default {pol}:3)"),
    ("198.51.100.1", "198.51.100.1 country US AS64501", 1, "deny (rule {pol}:1) [audit]"),
    ("192.0.2.200", "192.0.2.200 country (unknown) AS64504", 1,
     "deny (rule {pol}:1) [audit]"),
], ids=["JP", "US", "unknown-country"])
def test_explain_shows_country_and_asn(explain_geo, ip, peer, rc, decision):
    r, pol = explain_geo("--ip", ip)
    assert r.returncode == rc, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "request: peer %s, GET /, no session" % peer
    assert lines[-1] == "decision: " + decision.format(pol=pol)


def test_explain_header_matcher(explain_geo):
    r, pol = explain_geo("--ip", "203.0.113.7", "--path", "/h", "--header", "X-Test: abc")
    assert r.returncode == 0, r.stderr
    assert "  MATCH  %s:2: login header X-Test ^a path ^/h" % pol in r.stdout
    r, pol = explain_geo("--ip", "203.0.113.7", "--path", "/h", "--header", "X-Test: b")
    assert _passed(r.stdout, pol, 2, "header X-Test ^a"), r.stdout


def test_explain_user_lockdown(explain_geo):
    r, _ = explain_geo("--ip", "203.0.113.7", "--user", "bob", "--lockdown", "10.0.0.0/8")
    assert r.returncode == 1, r.stderr
    assert "  user lockdown: the peer is outside the user's own networks" in r.stdout
    assert r.stdout.splitlines()[-1].startswith("decision: deny (user lockdown")
    r, _ = explain_geo("--ip", "203.0.113.7", "--user", "bob", "--lockdown",
                       "203.0.113.0/24, 2001:db8::/32")
    assert r.returncode == 0, r.stderr
    r, _ = explain_geo("--ip", "203.0.113.7", "--user", "bob", "--lockdown", "10.0.0.1/8")
    assert r.returncode == 2
    assert "host bits set" in r.stderr
