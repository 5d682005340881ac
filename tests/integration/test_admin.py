"""The admin port: /health and /status (issue 5, item 2) with a fixed upstream, and
/metrics read with the real Prometheus text-format parser (python3-prometheus-client)
after a Sentinel failover, checking that the switch, the hold and the client gauges moved.

- fixed upstream: /health 200 naming the master while a connection has confirmed ROLE
  master; 503 with the reason once the upstream is killed; 200 again after it returns;
  /status is JSON with the counts; unknown paths 404;
- Sentinel mode: /status names the master, epoch, phase and every Sentinel; after a
  planned failover it names the new master with a newer epoch, and the metrics moved.
"""

import json
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness import HOST, wait_until
from sentinel_topology import make_topology  # noqa: F401  (pytest fixture)
from test_sentinel_failover import (  # noqa: F401  (make_proxy is a pytest fixture)
    make_proxy, start_recorder, wait_first_ack, wait_switch)

pytestmark = pytest.mark.proxy_only


def get(proxy, path):
    """(status, body) of GET path on the proxy's admin port."""
    url = f"http://{HOST}:{proxy.admin_port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def service_status(proxy):
    code, body = get(proxy, "/status")
    assert code == 200
    return json.loads(body)["services"][0]


def test_health_and_status_with_a_fixed_upstream(make_target):
    target = make_target()
    proxy, redis = target.proxy, target.redis
    master = f"{HOST}:{redis.port}"
    wait_until(lambda: get(proxy, "/health")[0] == 200, 10, what="healthy")
    assert get(proxy, "/health") == (200, f"main ok master={master}\n")
    with target.client() as c:
        assert c.command("PING") == "PONG"
        st = service_status(proxy)
        assert st["mode"] == "upstream" and st["master"] == master and st["healthy"]
        assert st["clients"]["connected"] == 1 and st["clients"]["accepted"] >= 1
        assert st["upstream_connections"]["ready"] >= 1
        assert st["problem"] is None and st["hold"]["held_commands"] == 0

        redis.kill()
        wait_until(lambda: get(proxy, "/health")[0] == 503, 10, what="unhealthy")
        code, body = get(proxy, "/health")
        assert body == f"main down: no connection to {master} has confirmed ROLE master\n"
        st = service_status(proxy)
        assert not st["healthy"] and st["upstream_connections"]["ready"] == 0
        assert st["clients"]["connected"] == 1  # the client is still connected

        redis.start()
        wait_until(lambda: get(proxy, "/health")[0] == 200, 10, what="healthy again")
        assert c.command("PING") == "PONG"
    assert get(proxy, "/nosuch")[0] == 404


def families(text):
    """{metric family name: [(labels dict, value), ...]} parsed by prometheus_client."""
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def value(fams, name, **labels):
    return sum(v for ls, v in fams.get(name, []) if labels.items() <= ls.items())


def test_status_and_metrics_follow_a_failover(make_topology, make_proxy):  # noqa: F811
    topo = make_topology()
    proxy = make_proxy(topo)
    old = topo.current_master()
    wait_until(lambda: get(proxy, "/health")[0] == 200, 10, what="healthy")
    st = service_status(proxy)
    assert st["mode"] == "sentinel" and st["master_name"] == "mymaster"
    assert st["master"] == f"{HOST}:{old.port}" and st["phase"] == "following"
    assert sorted(s["address"] for s in st["sentinels"]) == sorted(
        f"{h}:{p}" for h, p in topo.sentinel_addresses)
    assert all(s["up"] and s["problem"] is None for s in st["sentinels"])
    epoch_before = st["epoch"]

    rec = start_recorder(proxy)
    t_failover = topo.planned_failover(sentinel=1)
    sw = wait_switch(topo, old.address, t_failover)
    wait_first_ack(rec, sw.t_switch)
    wait_until(lambda: get(proxy, "/health")[0] == 200, 10, what="healthy after the switch")
    st = service_status(proxy)
    fams = families(get(proxy, "/metrics")[1])
    rec.stop()
    print(f"\n/status after the failover: {json.dumps(st)}")

    new = f"{sw.new[0]}:{sw.new[1]}"
    assert st["master"] == new and st["phase"] == "following" and st["healthy"]
    assert st["epoch"] > epoch_before
    assert st["clients"]["connected"] == 1 and not st["hold"]["failover_hold"]
    switches = len(topo.switches_since(t_failover))
    assert value(fams, "redis_tether_master_switches_total", service="main") == switches
    info = [ls for ls, v in fams["redis_tether_master_info"] if v == 1]
    assert [ls["address"] for ls in info] == [new]
    assert info[0]["epoch"] == str(st["epoch"])
    assert value(fams, "redis_tether_failover_hold_active", service="main") == 0
    assert value(fams, "redis_tether_failover_hold_duration_seconds_count") >= 1
    assert value(fams, "redis_tether_failover_duration_seconds_count") == switches
    assert value(fams, "redis_tether_sentinels_reachable") == 3
    assert value(fams, "redis_tether_client_connections", service="main") == 1
    assert value(fams, "redis_tether_client_connections_accepted_total") >= 1
    assert value(fams, "redis_tether_held_commands") == 0
    assert value(fams, "redis_tether_upstream_connections", state="ready") >= 1
