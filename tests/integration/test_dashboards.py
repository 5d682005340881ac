"""The Grafana dashboard and the Prometheus alert rules name only metrics the proxy exports
(issue 5, item 10).

    config/grafana/redis-tether.json            every PromQL expression in it (panels,
    config/prometheus/redis-tether-alerts.yml   template variables, annotations; rules)
          │ metric names and `label="value"` matchers
          ▼
    GET /metrics of a running proxy, read with prometheus_client's text-format parser

- a fixed-upstream proxy exports every name except the Sentinel-only master info, which
  exists only once a Sentinel has named a master;
- a Sentinel-mode proxy exports every name, master info included;
- names ending _bucket/_sum/_count belong to a histogram family; every exact label
  matcher (state="ready", code="HOLDFULL", ...) names a label value the proxy exports;
- the files themselves are well formed (JSON; rule groups with alert, expr, severity and
  summary; `promtool check rules` too when promtool is installed).
"""

import json
import os
import re
import shutil
import subprocess
import urllib.request

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from harness import HOST, wait_until
from sentinel_topology import make_topology  # noqa: F401  (pytest fixture)
from test_sentinel_failover import make_proxy  # noqa: F401  (pytest fixture)

pytestmark = pytest.mark.proxy_only

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DASHBOARD = os.path.join(ROOT, "config", "grafana", "redis-tether.json")
ALERTS = os.path.join(ROOT, "config", "prometheus", "redis-tether-alerts.yml")

# Exported only in Sentinel mode, once a Sentinel has named the master (README "Metrics").
SENTINEL_ONLY = {"redis_tether_master_info"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
NAME = re.compile(r"\bredis_tether_[a-z0-9_]+")
# name{...}: the matchers of one selector; then each exact `label="value"` in them.
SELECTOR = re.compile(r"\b(redis_tether_[a-z0-9_]+)\s*\{([^}]*)\}")
EXACT_MATCHER = re.compile(r'(\w+)\s*=\s*"([^"]*)"')


def dashboard_exprs():
    """Every PromQL string in the dashboard: targets, template queries, annotations."""
    with open(DASHBOARD) as f:
        board = json.load(f)
    out = []

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("expr", "definition") and isinstance(value, str):
                    out.append(value)
                elif key == "query" and isinstance(value, str) and "redis_tether_" in value:
                    out.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(board)
    return board, out


def alert_rules():
    with open(ALERTS) as f:
        doc = yaml.safe_load(f)
    return [rule for group in doc["groups"] for rule in group["rules"]]


def all_exprs():
    _, exprs = dashboard_exprs()
    return exprs + [rule["expr"] for rule in alert_rules()]


def referenced_names():
    return sorted({name for expr in all_exprs() for name in NAME.findall(expr)})


def exact_matchers():
    """{(metric name, label, value)} for every `label="value"` (not =~, !=) in a selector,
    leaving out dashboard variables ($service)."""
    found = set()
    for expr in all_exprs():
        for name, body in SELECTOR.findall(expr):
            for label, value in EXACT_MATCHER.findall(body):
                if "$" not in value:
                    found.add((name, label, value))
    return sorted(found)


class Exposition:
    """/metrics parsed by prometheus_client: family names and types, and samples."""

    def __init__(self, text):
        self.text = text
        self.family_types = {}
        self.samples = {}  # sample name -> [labels dict, ...]
        for fam in text_string_to_metric_families(text):
            self.family_types[fam.name] = fam.type
            for s in fam.samples:
                self.samples.setdefault(s.name, []).append(s.labels)

    def missing(self, names):
        """The names (as written in PromQL) that no exported sample carries."""
        out = []
        for name in names:
            if name not in self.samples:
                out.append(name)
                continue
            if name.endswith(HISTOGRAM_SUFFIXES):
                base = name.rsplit("_", 1)[0]
                if self.family_types.get(base) != "histogram":
                    out.append(f"{name} (no histogram {base})")
        return out

    def has_label_value(self, name, label, value):
        return any(labels.get(label) == value for labels in self.samples.get(name, []))


def scrape(proxy):
    url = f"http://{HOST}:{proxy.admin_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as resp:
        return Exposition(resp.read().decode())


def test_files_are_well_formed():
    board, exprs = dashboard_exprs()
    assert board["title"] and board["uid"] and exprs
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in board["panels"]:
        if panel["type"] != "row":
            assert panel.get("targets"), f"panel {panel['title']!r} has no query"
            for t in panel["targets"]:
                assert t["expr"].count("(") == t["expr"].count(")"), t["expr"]

    rules = alert_rules()
    assert rules
    for rule in rules:
        assert rule["alert"].startswith("RedisTether"), rule
        assert rule["expr"].strip(), rule
        assert rule["labels"]["severity"] in ("warning", "critical"), rule
        assert rule["annotations"]["summary"], rule
        assert re.fullmatch(r"\d+[smh]", str(rule.get("for", "0s"))), rule
    assert len({r["alert"] for r in rules}) == len(rules), "alert names must be unique"
    # The four: no master, hold too long, Sentinels unreachable, client limits.
    exprs_by_alert = {r["alert"]: r["expr"] for r in rules}
    assert 'redis_tether_upstream_connections{state="ready"} == 0' in exprs_by_alert.values()
    assert any("redis_tether_failover_hold_active" in e for e in exprs_by_alert.values())
    assert any("redis_tether_sentinels_reachable == 0" in e for e in exprs_by_alert.values())
    assert any('reason="max_clients"' in e for e in exprs_by_alert.values())

    promtool = shutil.which("promtool")
    if promtool:
        out = subprocess.run([promtool, "check", "rules", ALERTS], capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr


def test_every_metric_exists_with_a_fixed_upstream(make_target):
    proxy = make_target().proxy
    names = referenced_names()
    assert len(names) >= 15, names
    exp = scrape(proxy)
    missing = exp.missing(n for n in names if n not in SENTINEL_ONLY)
    assert not missing, f"named in the dashboard or the alerts, not in /metrics: {missing}"
    # Their absence here is why they are listed: a fixed upstream has no Sentinel.
    assert not [n for n in SENTINEL_ONLY if n in exp.samples]
    for name, label, value in exact_matchers():
        if name not in SENTINEL_ONLY:
            assert exp.has_label_value(name, label, value), \
                f'{name}{{{label}="{value}"}} is not exported'


def test_every_metric_exists_in_sentinel_mode(make_topology, make_proxy):  # noqa: F811
    topo = make_topology()
    proxy = make_proxy(topo)
    names = referenced_names()
    exp = wait_until(lambda: (lambda e: e if "redis_tether_master_info" in e.samples
                              else None)(scrape(proxy)), 15, interval=0.2,
                     what="redis_tether_master_info in /metrics")
    missing = exp.missing(names)
    assert not missing, f"named in the dashboard or the alerts, not in /metrics: {missing}"
    for name, label, value in exact_matchers():
        assert exp.has_label_value(name, label, value), \
            f'{name}{{{label}="{value}"}} is not exported'
