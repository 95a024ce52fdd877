"""test_prometheus.py -- a real Prometheus (Debian's package) scrapes a
running pbxgate with the shipped alert rules loaded: the target is up, the
series operators alert on exist, and every shipped rule loads and
evaluates without error. Prometheus runs from a temporary directory and is
stopped at the end."""

import json
import re
import os
import shutil
import subprocess
import urllib.parse
import urllib.request

import pytest

from helpers import REPO, Client, free_port, wait_until

RULES = os.path.join(REPO, "etc", "prometheus", "pbxgate.rules.yml")
SERIES = [
    "pbxgate_build_info",
    "pbxgate_config_last_reload_success_timestamp_seconds",
    "pbxgate_certificate_not_after_timestamp_seconds",
    "pbxgate_requests_total",
    "pbxgate_request_duration_seconds_bucket",
    "pbxgate_upstream_connect_duration_seconds_bucket",
    "pbxgate_upstream_response_duration_seconds_bucket",
    "pbxgate_upstream_errors_total",
    "pbxgate_policy_decisions_total",
    "pbxgate_auth_events_total",
    "pbxgate_smtp_messages_total",
    "pbxgate_smtp_scrub_rule_hits_total",
    "pbxgate_config_reloads_total",
    "pbxgate_connections_refused_total",
]


@pytest.fixture
def prometheus(tmp_path, gateway):
    binary = shutil.which("prometheus")
    assert binary, "prometheus not found: apt-get install -y prometheus"
    port = free_port()
    conf = tmp_path / "prometheus.yml"
    conf.write_text(
        "global: { scrape_interval: 1s, evaluation_interval: 1s }\n"
        "rule_files: [%s]\n"
        "scrape_configs:\n"
        "  - job_name: pbxgate\n"
        "    static_configs: [{ targets: ['127.0.0.1:%d'] }]\n" % (RULES, gateway.admin_port))
    log = open(tmp_path / "prometheus.log", "wb")
    p = subprocess.Popen([binary, "--config.file=%s" % conf,
                          "--storage.tsdb.path=%s" % (tmp_path / "data"),
                          "--web.listen-address=127.0.0.1:%d" % port], stdout=log, stderr=log,
                         cwd=str(tmp_path))
    api = "http://127.0.0.1:%d" % port
    try:
        wait_until(lambda: _get(api, "/-/ready") is not None, timeout=60,
                   what="prometheus ready on %s" % api)
        yield api
    finally:
        p.terminate()
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)
        log.close()


def _get(api, path, **query):
    url = api + path + ("?" + urllib.parse.urlencode(query) if query else "")
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            body = r.read()
    except OSError:
        return None
    return json.loads(body) if path.startswith("/api/") else body


def _target_up(api):
    t = _get(api, "/api/v1/targets")
    active = t["data"]["activeTargets"] if t else []
    return len(active) == 1 and active[0]["health"] == "up"


def test_prometheus_scrapes_pbxgate(prometheus, gateway, ctx):
    with Client(gateway.port, ctx) as c:
        assert c.request("GET", "/").status == 200
    wait_until(lambda: _target_up(prometheus), timeout=30, what="pbxgate target up")

    def up():
        # the targets page can say "up" before the sample is queryable
        r = _get(prometheus, "/api/v1/query", query='up{job="pbxgate"}')
        return [x["value"][1] for x in r["data"]["result"]] if r else None
    assert wait_until(lambda: up() or None, timeout=30, what="up{job=pbxgate}") == ["1"]

    def names():
        got = _get(prometheus, "/api/v1/label/__name__/values")
        return set(got["data"]) if got else set()
    wait_until(lambda: set(SERIES) <= names(), timeout=30,
               what="series in prometheus: missing %s" % (set(SERIES) - names()))
    # the request made above is in the histogram Prometheus stored
    q = _get(prometheus, "/api/v1/query",
             query='pbxgate_request_duration_seconds_count{route="proxied",class="2xx"}')
    assert float(q["data"]["result"][0]["value"][1]) >= 1


def test_shipped_rules_load_and_evaluate(prometheus, gateway):
    wait_until(lambda: _target_up(prometheus), timeout=30, what="pbxgate target up")

    def rules():
        got = _get(prometheus, "/api/v1/rules")
        return [r for g in got["data"]["groups"] for r in g["rules"]] if got else []
    # every rule has been evaluated at least once, without error
    wait_until(lambda: len(rules()) == 8 and all(r.get("lastEvaluation", "").startswith("2")
                                                 and not r["lastEvaluation"].startswith("0001")
                                                 for r in rules()),
               timeout=30, what="8 rules evaluated")
    bad = [(r["name"], r.get("lastError")) for r in rules() if r["health"] != "ok"]
    assert bad == []
    # a healthy gateway raises none of them
    firing = [r["name"] for r in rules() if r.get("state") == "firing"]
    assert firing == []


def test_dashboard_queries_evaluate(prometheus, gateway, ctx):
    """Every query of the shipped Grafana dashboard is valid PromQL that
    Prometheus evaluates against pbxgate's series (Grafana's variables
    given the values Grafana would: all instances, a 1 m rate window), and
    names only series pbxgate exports."""
    with open(os.path.join(REPO, "etc", "grafana", "pbxgate.json")) as f:
        dash = json.load(f)
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(exprs) >= 13
    wait_until(lambda: _target_up(prometheus), timeout=30, what="pbxgate target up")
    known = set(_get(prometheus, "/api/v1/label/__name__/values")["data"])
    for e in exprs:
        q = e.replace("$__rate_interval", "1m").replace("$instance", ".*")
        got = _get(prometheus, "/api/v1/query", query=q)
        assert got is not None and got["status"] == "success", q
        for name in set(re.findall(r"\b(pbxgate_[a-z_]+|up)\b", q)):
            assert name in known, (name, q)
