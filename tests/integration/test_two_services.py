"""Several services in one file (issue 5, item 7): two master groups on one set of
Sentinels, one service on TCP and one on a unix socket (mode 0600), each following its
own group. A planned failover of one group moves that service only: the other keeps
writing with no hold, no switch and no error.
"""

import json
import os
import shutil
import stat
import tempfile
import time
import urllib.error
import urllib.request

import pytest

import harness
from harness import HOST
from sentinel_topology import MASTER_NAME, RedisNode, make_topology  # noqa: F401
from test_sentinel_failover import SentinelProxy, start_recorder, wait_first_ack, wait_switch

pytestmark = pytest.mark.proxy_only

OTHER = "othermaster"
# Bound on Sentinel's own convergence. Once the leader has promoted the replica it stays
# in reconf-slaves until the old master, still reporting itself master, is converted to a
# replica (another Sentinel does that about 10 s later); on a loaded machine (an ASan
# build, a busy CI host) the leader was seen to agree 20 s after the switch.
AGREE_S = 45.0


def add_group(topo, name):
    """A second master group (a master and one replica) that every Sentinel of `topo`
    monitors as `name`, with the fixture's settings. Returns its master node."""
    master = RedisNode(os.path.join(topo.workdir, f"{name}0"), f"{name}0").start()
    replica = RedisNode(os.path.join(topo.workdir, f"{name}1"), f"{name}1",
                        replicaof=master.address).start()
    topo.nodes += [master, replica]  # ended with the topology
    for s in topo.sentinels:
        assert s.command("SENTINEL", "MONITOR", name, HOST, str(master.port), "2") == "OK"
        assert s.command("SENTINEL", "SET", name, "down-after-milliseconds", "1000",
                         "failover-timeout", "3000") == "OK"

    def ready():
        for s in topo.sentinels:
            reps = s.command("SENTINEL", "REPLICAS", name)
            peers = s.command("SENTINEL", "SENTINELS", name)
            if len(reps) != 1 or len(peers) != len(topo.sentinels) - 1:
                return False
        return True
    harness.wait_until(ready, AGREE_S, 0.1, what=f"every Sentinel to see {name}'s group")
    return master


def group_master(topo, name):
    addrs = {harness_addr(s.command("SENTINEL", "get-master-addr-by-name", name))
             for s in topo.sentinels}
    return addrs.pop() if len(addrs) == 1 else None


def harness_addr(reply):
    return (reply[0].decode(), int(reply[1])) if reply else None


class TwoServiceProxy(SentinelProxy):
    """`main` (TCP) follows mymaster; `other` (unix socket, mode 0600) follows OTHER."""

    def __init__(self, workdir, sentinels):
        super().__init__(workdir, sentinels)
        self.sockdir = tempfile.mkdtemp(prefix="tether-two-")
        self.unix_path = None  # the main service is TCP; see other_path
        self.other_path = os.path.join(self.sockdir, "other.sock")

    def write_config(self):
        cfg = harness.default_proxy_config(f"{HOST}:{self.port}", 0, self.admin_port)
        main = cfg["services"][0]
        del main["upstream"]
        main.update(master_name=MASTER_NAME, sentinels="@SENTINELS@",
                    failover={"poll_interval": "1s"}, hold={"timeout": "15s"})
        other = dict(main, name="other", master_name=OTHER, listen=f"unix:{self.other_path}",
                     listen_mode="0600")
        cfg["services"] = [main, other]
        flow = "[" + ", ".join(f'"{h}:{p}"' for h, p in self.sentinels) + "]"
        with open(self.config_path, "w") as f:
            f.write(harness.to_yaml(cfg).replace('"@SENTINELS@"', flow) + "\n")
        return cfg


def series(proxy, name, service):
    return proxy.metrics().get(name, service=service) or 0


def test_two_master_groups_one_set_of_sentinels(workdir, make_topology):  # noqa: F811
    topo = make_topology()
    other_master = add_group(topo, OTHER)
    proxy = TwoServiceProxy(os.path.join(workdir, "proxy"), topo.sentinel_addresses)
    proxy.start()
    try:
        assert stat.S_IMODE(os.stat(proxy.other_path).st_mode) == 0o600
        url = f"http://{HOST}:{proxy.admin_port}/health"
        def healthy():
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    return r.status == 200
            except urllib.error.HTTPError as e:
                if e.code != 503:  # 503 until both services have a verified master
                    raise
                return False
        harness.wait_until(healthy, 20, what="both services healthy")
        rec_main = start_recorder(proxy)
        rec_other = start_recorder(type("P", (), {"address": proxy.other_path})())

        # A planned failover of the other group: only `other` moves.
        t1 = time.monotonic()
        assert topo.sentinels[0].command("SENTINEL", "FAILOVER", OTHER) == "OK"
        sw = topo.wait_for_switch(other_master.address, AGREE_S, since=t1)
        harness.wait_until(lambda: group_master(topo, OTHER) == sw.new, AGREE_S,
                           what="the Sentinels to agree on the other group's new master")
        wait_first_ack(rec_other, sw.t_switch)
        assert series(proxy, "redis_tether_master_switches_total", "other") >= 1
        assert series(proxy, "redis_tether_master_switches_total", "main") == 0
        assert series(proxy, "redis_tether_failover_hold_duration_seconds_count", "main") == 0

        # Then one of the main group: only `main` moves.
        old = topo.current_master()
        other_switches = series(proxy, "redis_tether_master_switches_total", "other")
        t2 = topo.planned_failover(sentinel=1)
        sw_main = wait_switch(topo, old.address, t2)
        wait_first_ack(rec_main, sw_main.t_switch)
        time.sleep(0.3)
        rec_main.stop()
        rec_other.stop()
        assert series(proxy, "redis_tether_master_switches_total", "main") >= 1
        assert series(proxy, "redis_tether_master_switches_total", "other") == other_switches

        v_main = rec_main.verify(sw_main.new)
        v_other = rec_other.verify(group_master(topo, OTHER))
        with urllib.request.urlopen(f"http://{HOST}:{proxy.admin_port}/status") as r:
            status = {s["name"]: s for s in json.loads(r.read())["services"]}
        print(f"\nmain: {v_main.summary()}\nother: {v_other.summary()}\n/status masters: "
              f"main {status['main']['master']}, other {status['other']['master']}")
        for v in (v_main, v_other):
            assert v.failure is None and not v.errors_by_code and not v.missing_sets, v.summary()
            assert v.disconnects == v.reconnects == 0
        assert status["main"]["master"] == f"{sw_main.new[0]}:{sw_main.new[1]}"
        assert status["other"]["master"] == "{}:{}".format(*group_master(topo, OTHER))
        assert status["other"]["listen"] == f"unix:{proxy.other_path}"
    finally:
        assert proxy.stop() == 0, harness.read_tail(proxy.log_path, 60)
        assert not os.path.exists(proxy.other_path)  # removed at exit
        shutil.rmtree(proxy.sockdir, ignore_errors=True)
