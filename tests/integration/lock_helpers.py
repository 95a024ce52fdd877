"""lock_helpers.py -- fixtures and tools for the lockdown-policy integration tests:
clients bound to a chosen loopback source address, a gateway started with a
policy file and an audit log, atomic policy rewrites, and a GeoIP test
database made at test time.

Linux loopback accepts any 127.x.y.z as a source address, so "office" and
"outside" clients are two sockets bound to 127.0.0.2 and 127.0.0.3 talking to
the gateway on 127.0.0.1. helpers.py and conftest.py are used read-only.
"""

import json
import os
import shutil
import socket
import subprocess
import uuid

import pytest

from helpers import (IO_TIMEOUT, REPO, Client, ConnectionClosed, Reader, request_bytes,
                     wait_until)

OFFICE = "127.0.0.2"
OUTSIDE = "127.0.0.3"
PROXY = "127.0.0.4"
MMDB_SCRIPT = os.path.join(REPO, "tests", "data", "geoip", "make_test_mmdb.pl")


class SrcClient(Client):
    """A keep-alive TLS connection to the gateway whose socket is bound to
    source address `src` before connecting."""

    def __init__(self, port, ctx, src, server_name="localhost", timeout=IO_TIMEOUT):
        dst = "::1" if ":" in src else "127.0.0.1"
        raw = socket.create_connection((dst, port), timeout=timeout,
                                       source_address=(src, 0))
        try:
            self.sock = ctx.wrap_socket(raw, server_hostname=server_name)
        except Exception:
            raw.close()
            raise
        self.reader = Reader(self.sock)


def free_port6():
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.bind(("::1", 0))
        return s.getsockname()[1]


def get_from(port, ctx, src, path, headers=None, method="GET"):
    """One request on a fresh connection from `src`; returns the Response."""
    with SrcClient(port, ctx, src) as c:
        return c.request(method, path, headers=headers)


def raw_from(port, ctx, src, data):
    """Raw request bytes from `src`; returns the Response or None when the
    gateway closed without answering."""
    with SrcClient(port, ctx, src) as c:
        c.send(data)
        try:
            return c.reader.response()
        except ConnectionClosed:
            return None


def raw_get(path, headers=None):
    return request_bytes("GET", path, headers)


def write_atomic(path, text):
    """Replaces `path` by rename so that a reload never reads half a file."""
    tmp = "%s.tmp-%s" % (path, uuid.uuid4().hex[:8])
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.rename(tmp, path)


class Lockdown:
    """A running gateway with `policy` and `audit_log` in its config."""

    def __init__(self, gw, policy_path, audit_path):
        self.gw = gw
        self.policy = policy_path
        self.audit = audit_path

    @property
    def port(self):
        return self.gw.port

    def set_policy(self, text):
        write_atomic(self.policy, text)

    def audit_lines(self, modules=("policy", "integrity")):
        """The audit records of requests (a policy rewrite's reload writes
        its own, event.module "config", which the counts here leave out)."""
        try:
            with open(self.audit, encoding="utf-8") as f:
                recs = [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []
        return [r for r in recs if r.get("event.module") in modules]

    def wait_audit(self, pred, what, timeout=10):
        """The first audit record for which pred(record) holds (polled)."""
        def find():
            for rec in self.audit_lines():
                if pred(rec):
                    return rec
            return None
        return wait_until(find, timeout=timeout, what=what)


@pytest.fixture
def make_lockdown(make_gateway, workdir):
    """make_lockdown(upstream_port, policy_text, extra=()) -> Lockdown."""

    def make(upstream_port, policy_text, extra=()):
        d = os.path.join(workdir, "lock-%s" % uuid.uuid4().hex[:8])
        os.makedirs(d)
        pol = os.path.join(d, "lockdown.policy")
        audit = os.path.join(d, "audit.log")
        write_atomic(pol, policy_text)
        gw = make_gateway(upstream_port, extra=["policy %s" % pol, "audit_log %s" % audit]
                          + list(extra))
        return Lockdown(gw, pol, audit)

    return make


def entries_before_marker(upstream, port, ctx, src=OFFICE):
    """Sends a marker request from `src` (which the policy must let pass)
    and returns the upstream's log entries recorded before it arrived: what
    the gateway forwarded of everything sent earlier."""
    tag = uuid.uuid4().hex
    r = get_from(port, ctx, src, "/headers?marker=" + tag)
    assert r.status == 200, r

    def seen():
        es = upstream.entries()
        for i, e in enumerate(es):
            if e.get("target", "").endswith("marker=" + tag):
                return (es[:i],)
        return None
    return wait_until(seen, timeout=10, what="marker at the upstream")[0]


def upstream_targets(upstream):
    return [e.get("target", "") for e in upstream.requests()]


def wait_target(upstream, target, timeout=10):
    """Waits until the upstream has recorded a request for exactly `target`."""
    return wait_until(lambda: target in upstream_targets(upstream), timeout=timeout,
                      what="upstream to record %r" % target)


# ---------------------------------------------------------------- GeoIP

# The shared script's data set is fixed (documentation ranges); these tests
# need loopback sources in the database, so they generate a script with the
# same writer settings (remove_reserved_networks => 0) and their own data.
_MMDB_PERL = r"""
use strict;
use warnings;
use MaxMind::DB::Writer::Tree;
my $out = shift or die "usage: $0 OUT.mmdb NET=CC...\n";
my $tree = MaxMind::DB::Writer::Tree->new(
	ip_version               => 6,
	record_size              => 28,
	database_type            => 'pbxgate-Test-Country-ASN',
	languages                => ['en'],
	description              => { en => 'pbxgate lockdown integration test data' },
	remove_reserved_networks => 0,
	map_key_type_callback    => sub {
		return { country => 'map', iso_code => 'utf8_string',
			autonomous_system_number => 'uint32' }->{ $_[0] };
	},
);
for my $arg (@ARGV) {
	my ($net, $val) = split /=/, $arg, 2;
	my ($cc, $asn) = split /:/, $val, 2;
	my %rec;
	$rec{country} = { iso_code => $cc } if length $cc;
	$rec{autonomous_system_number} = $asn if defined $asn;
	$tree->insert_network($net, \%rec);
}
open my $fh, '>:raw', $out or die "$out: $!\n";
$tree->write_tree($fh);
close $fh or die "$out: $!\n";
"""


def have_mmdb_writer():
    if shutil.which("perl") is None:
        return False
    r = subprocess.run(["perl", "-MMaxMind::DB::Writer::Tree", "-e", "1"],
                       capture_output=True, timeout=30)
    return r.returncode == 0


def make_mmdb(directory, mapping):
    """Writes DIR/test.mmdb mapping each network (e.g. '127.0.0.2/32') to
    'CC' (an ISO country code) or 'CC:ASN' (':ASN' alone: an AS number
    without country); returns its path."""
    script = os.path.join(directory, "make_mmdb.pl")
    out = os.path.join(directory, "test.mmdb")
    with open(script, "w", encoding="utf-8") as f:
        f.write(_MMDB_PERL)
    args = ["%s=%s" % (net, cc) for net, cc in mapping.items()]
    subprocess.run(["perl", script, out] + args, check=True, capture_output=True,
                   timeout=60)
    return out


# ---------------------------------------------------------------- CLI

def run_cli(pbxgate_bin, *args, timeout=30):
    """Runs the pbxgate binary; returns CompletedProcess (text)."""
    return subprocess.run([pbxgate_bin] + list(args), capture_output=True, text=True,
                          timeout=timeout)


def base_config(directory, certs, policy_path, extra=()):
    """A minimal valid pbxgate.conf in DIR naming POLICY; returns its path.
    Nothing listens: it is only for `check` and `policy explain`."""
    conf = os.path.join(directory, "pbxgate.conf")
    cert, key = certs.main
    lines = ["listen 127.0.0.1:1", "tls_cert %s" % cert, "tls_key %s" % key,
             "upstream http://127.0.0.1:2", "policy %s" % policy_path] + list(extra)
    with open(conf, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return conf
