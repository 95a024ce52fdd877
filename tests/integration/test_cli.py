"""test_cli.py -- the command table (gateway/main.c, auth_user_cmds, cli/):
every command and subcommand answers --help on standard output with exit 0
and no config; -V/--version print the version; a usage error exits 2 with
the usage line on standard error; -c is taken the same way by every
command (main.c's take_config)."""

import os

import pytest

from lock_helpers import base_config, run_cli

COMMANDS = ["run", "check", "policy", "user", "hash", "scrub", "version"]
USER_SUBCOMMANDS = ["add", "import", "passwd", "disable", "enable", "del",
                    "show", "list", "lockdown", "totp-reset", "migrate"]


@pytest.fixture
def conf(certs, tmp_path):
    d = str(tmp_path)
    pol = os.path.join(d, "lockdown.policy")
    with open(pol, "w", encoding="utf-8") as f:
        f.write("allow from 127.0.0.0/8\n")
    return base_config(d, certs, pol, ["user_db %s" % os.path.join(d, "users.db")])


@pytest.mark.parametrize("flag", ["--help", "-h", "help"])
def test_top_level_help_lists_every_command(pbxgate_bin, flag):
    r = run_cli(pbxgate_bin, flag)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert r.stdout.startswith("usage: pbxgate COMMAND [ARGS]\n")
    for cmd in COMMANDS:
        assert "\n  %-12s " % cmd in r.stdout, (cmd, r.stdout)


@pytest.mark.parametrize("args", [["-V"], ["--version"], ["version"]])
def test_version(pbxgate_bin, args):
    r = run_cli(pbxgate_bin, *args)
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout.startswith("pbxgate ") and r.stdout.count("\n") == 1


# `pbxgate CMD --help`: the default config does not exist on a test machine,
# so exit 0 proves the help came before any config was read.
@pytest.mark.parametrize("cmd", ["run", "check", "hash", "scrub", "version"])
def test_command_help(pbxgate_bin, cmd):
    r = run_cli(pbxgate_bin, cmd, "--help")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert r.stdout.startswith("usage: pbxgate %s" % cmd), r.stdout


@pytest.mark.parametrize("parent,subs", [("user", USER_SUBCOMMANDS),
                                         ("policy", ["explain"])])
def test_parent_help_lists_subcommands(pbxgate_bin, parent, subs):
    r = run_cli(pbxgate_bin, parent, "--help")
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout.startswith("usage: pbxgate %s COMMAND [ARGS]\n" % parent)
    for s in subs:
        assert "\n  %-12s " % s in r.stdout, (s, r.stdout)


@pytest.mark.parametrize("parent,sub", [("user", s) for s in USER_SUBCOMMANDS] +
                         [("policy", "explain")])
def test_subcommand_help(pbxgate_bin, parent, sub):
    r = run_cli(pbxgate_bin, parent, sub, "--help")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert r.stdout.startswith("usage: pbxgate %s %s" % (parent, sub)), r.stdout


def test_help_after_config_option(pbxgate_bin):
    r = run_cli(pbxgate_bin, "user", "add", "-c", "/nonexistent.conf", "--help")
    assert r.returncode == 0 and r.stdout.startswith("usage: pbxgate user add NAME")


@pytest.mark.parametrize("args,message", [
    ([], "pbxgate: missing command"),
    (["frobnicate"], 'pbxgate: unknown command "frobnicate"'),
    (["user"], "pbxgate user: missing command"),
    (["user", "frobnicate"], 'pbxgate user: unknown command "frobnicate"'),
    (["policy"], "pbxgate policy: missing command"),
    (["policy", "judge"], 'pbxgate policy: unknown command "judge"'),
    (["-V", "extra"], 'pbxgate: unknown command "-V"'),
], ids=["none", "unknown", "user-none", "user-unknown", "policy-none",
        "policy-unknown", "version-extra"])
def test_unknown_or_missing_command_exits_2(pbxgate_bin, args, message):
    r = run_cli(pbxgate_bin, *args)
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.startswith(message + "\n"), r.stderr
    assert "COMMAND [ARGS]" in r.stderr


# One usage error per command; (args, the command's own message, usage line)
USAGE_ERRORS = [
    (["run", "--bogus"], 'pbxgate run: unknown argument "--bogus"', "usage: pbxgate run "),
    (["check", "extra"], 'pbxgate check: unexpected argument "extra"',
     "usage: pbxgate check "),
    (["hash", "extra"], 'pbxgate hash: unexpected argument "extra"',
     "usage: pbxgate hash "),
    (["version", "extra"], None, "usage: pbxgate version"),
    (["check", "-c"], "pbxgate: -c needs a FILE", None),
    (["user", "show", "--config"], "pbxgate: --config needs a FILE", None),
]


@pytest.mark.parametrize("args,message,usage", USAGE_ERRORS,
                         ids=[" ".join(a) for a, _, _ in USAGE_ERRORS])
def test_usage_error_exits_2(pbxgate_bin, args, message, usage):
    r = run_cli(pbxgate_bin, *args)
    assert r.returncode == 2, r.stderr
    assert r.stdout == ""
    if message is not None:
        assert message in r.stderr, r.stderr
    if usage is not None:
        assert usage in r.stderr, r.stderr


# Commands that read the config before their arguments: a real config.
@pytest.mark.parametrize("args,usage", [
    (["user", "add"], "usage: pbxgate user add NAME"),
    (["user", "show"], "usage: pbxgate user show NAME"),
    (["user", "list", "extra"], "usage: pbxgate user list"),
    (["user", "lockdown", "bob", "--deny"], "usage: pbxgate user lockdown NAME"),
    (["user", "import"], "usage: pbxgate user import FILE.csv"),
    (["policy", "explain", "--bogus"], "usage: policy explain --ip ADDR"),
], ids=["user-add", "user-show", "user-list", "user-lockdown", "user-import",
        "policy-explain"])
def test_usage_error_with_config_exits_2(pbxgate_bin, conf, args, usage):
    r = run_cli(pbxgate_bin, *(args + ["-c", conf]))
    assert r.returncode == 2, r.stderr
    assert usage in r.stderr, r.stderr


def test_scrub_usage_error_is_its_error_status(pbxgate_bin, conf):
    """scrub's statuses are verdicts (2 = rejected by a rule): its usage
    error is its error status 3, as pbxgate(8) documents."""
    r = run_cli(pbxgate_bin, "scrub", "--bogus", "-c", conf)
    assert r.returncode == 3
    assert "scrub: unknown argument '--bogus'" in r.stderr, r.stderr


@pytest.mark.parametrize("form", [["-c", "{}"], ["--config", "{}"], ["--config={}"]])
def test_config_option_taken_once_for_check(pbxgate_bin, conf, form):
    r = run_cli(pbxgate_bin, "check", *[a.format(conf) for a in form])
    assert r.returncode == 0, r.stderr
    assert r.stderr.endswith("%s: configuration is valid\n" % conf)


def test_missing_config_is_a_failure_not_a_usage_error(pbxgate_bin, tmp_path):
    missing = str(tmp_path / "none.conf")
    for args in (["user", "list"], ["hash"], ["check"]):
        r = run_cli(pbxgate_bin, *(args + ["-c", missing]))
        assert r.returncode == 1, (args, r.stderr)
