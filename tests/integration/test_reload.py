"""SIGHUP reload (issue 5, item 4): a client writes through the proxy the whole time and
sees no error and no disconnect while the file changes under it:

- pool size 2 -> 4, max_clients -> 3, hold.timeout, log level info -> debug, and the
  Sentinel list loses one Sentinel: all apply at once (metrics, the log, a client
  refused at the new limit); a planned failover afterwards is still followed;
- pool.mode shared -> session applies to the clients that connect afterwards (CLIENT
  INFO, which needs a connection of the client's own, works for them only);
- an invalid file (an unknown key) is logged with its line and changes nothing.
"""

import json
import os
import signal
import time
import urllib.request

import pytest

import harness
from harness import HOST, RespClient, RespError
from sentinel_topology import make_topology  # noqa: F401  (pytest fixture)
from test_sentinel_failover import (  # noqa: F401  (make_proxy is a pytest fixture)
    make_proxy, start_recorder, wait_first_ack, wait_switch)

pytestmark = pytest.mark.proxy_only


def hup_and_wait(proxy, event):
    """SIGHUP, then waits for the log line `event=<event>` that this reload wrote."""
    before = proxy.log().count(f"event={event}")
    os.kill(proxy.proc.pid, signal.SIGHUP)
    harness.wait_until(lambda: proxy.log().count(f"event={event}") > before, 10,
                       what=f"event={event} in the log")


def ready_connections(proxy):
    return proxy.metrics().get("redis_tether_upstream_connections", state="ready") or 0


def sentinels_in_status(proxy):
    with urllib.request.urlopen(f"http://{HOST}:{proxy.admin_port}/status", timeout=5) as r:
        return sorted(s["address"] for s in json.loads(r.read())["services"][0]["sentinels"])


def test_reload_applies_without_dropping_a_client(make_topology, make_proxy):  # noqa: F811
    topo = make_topology()
    proxy = make_proxy(topo, pool={"size": 2})
    # Ready connections: pool.size shared ones and 2 warm dedicated ones (the default
    # pool.dedicated_warm).
    harness.wait_until(lambda: ready_connections(proxy) == 4, 10, what="4 ready connections")
    rec = start_recorder(proxy)
    addrs = [f"{h}:{p}" for h, p in topo.sentinel_addresses]
    old_client = RespClient(proxy.address)
    assert old_client.command("CLIENT", "INFO").code == "NOTSUPPORTED"  # shared mode

    proxy.sentinels = topo.sentinel_addresses[:2]
    proxy.overrides = {"log_level": "debug",
                       "service": {"pool": {"size": 4, "mode": "session"},
                                   "limits": {"max_clients": 3},
                                   "hold": {"timeout": "12s"}}}
    proxy.write_config()
    hup_and_wait(proxy, "reloaded")
    harness.wait_until(lambda: ready_connections(proxy) == 6, 10, what="6 ready connections")
    # The dropped Sentinel's link closes; SENTINEL SENTINELS from the other two may teach
    # it again (it is still their peer), which is discovery doing its job.
    assert "dropped=1" in proxy.log().split("event=watcher_reconfigured", 1)[1].split("\n")[0]
    assert set(addrs[:2]) <= set(sentinels_in_status(proxy))
    harness.wait_until(lambda: " debug " in proxy.log().split("event=reloaded", 1)[1], 10,
                       what="a debug line after the reload")
    with RespClient(proxy.address) as a:
        assert a.command("PING") == "PONG"
        assert b"cmd=client|info" in a.command("CLIENT", "INFO")  # session mode
        assert old_client.command("CLIENT", "INFO").code == "NOTSUPPORTED"  # as it was
        with RespClient(proxy.address) as c:  # the 4th client, with the recorder's
            refused = c.command("PING")
    assert isinstance(refused, RespError) and "max number of clients" in refused, refused
    old_client.close()

    # An invalid file: logged with its line, nothing changes.
    with open(proxy.config_path, "a") as f:
        f.write("no_such_key: 1\n")
    hup_and_wait(proxy, "reload_rejected")
    log = proxy.log()
    assert "no_such_key: unknown key" in log and "event=reload_failed" in log
    time.sleep(0.5)
    assert ready_connections(proxy) == 6
    with RespClient(proxy.address) as a, RespClient(proxy.address) as b:
        a.command("PING")
        b.command("PING")
        with RespClient(proxy.address) as c:
            assert "max number of clients" in c.command("PING")  # still 3

    # Still following, with the Sentinels the reload left.
    old = topo.current_master()
    t_failover = topo.planned_failover(sentinel=1)
    sw = wait_switch(topo, old.address, t_failover)
    wait_first_ack(rec, sw.t_switch)
    rec.stop()
    v = rec.verify(sw.new)
    m = proxy.metrics()
    closed = {dict(ls).get("reason"): val for (n, ls), val in m.series.items()
              if n == "redis_tether_client_connections_closed_total" and val}
    print(f"\nreload: {v.summary()}\n  closed by the proxy: {closed}")
    assert v.failure is None and not v.errors_by_code and not v.missing_sets, v.summary()
    assert (v.disconnects, v.reconnects) == (0, 0)
    assert set(closed) <= {"max_clients"}
