"""redis-tether follows a Sentinel failover with the apps' connections kept open (issue 3,
item 6). Real parts: 1 master, 2 replicas, 3 Sentinels (sentinel_topology.py, down-after
1000 ms), redis-tether in Sentinel mode in front, and a client doing INCR + SET k:i every
2 ms through it (write_recorder.py). Every scenario asserts what the CLIENT saw and that
redis-tether closed no client connection (redis_tether_client_connections_closed_total
is 0 for every reason).

- SIGKILL of the master: no disconnect, only OUTCOMEUNKNOWN for the command in flight,
  every acknowledged SET on the new master except those the dead master acknowledged and
  never replicated; then the old master restarted: it rejoins as a replica and gets no
  write from the proxy, not even while it still calls itself master;
- SENTINEL FAILOVER: no error, no disconnect, no acknowledged write lost;
- SIGSTOP past down-after, SIGCONT after the switch: no disconnect, the resumed old
  master gets no write from the proxy;
- misconfiguration (unknown master name, wrong Sentinel password): the proxy starts,
  logs the cause, clients get -NOMASTER naming it after hold.timeout and stay connected;
- one Sentinel down, then two: still following a planned failover; all three down: the
  last known master keeps serving;
- configured with one Sentinel, the proxy learns the other two (SENTINEL SENTINELS) and
  follows a failover while the configured one is down.

Numbers are printed (pytest -s): errors, disconnects, lost, and ms from the leader's
+promoted-slave to the first acknowledged write through the proxy.
"""

import os
import time

import pytest

import harness
from harness import HOST, RespClient, RespError
from sentinel_topology import MASTER_NAME, make_topology  # noqa: F401  (pytest fixture)
from write_recorder import WriteRecorder

pytestmark = pytest.mark.proxy_only

SWITCH_BOUND_S = 20.0  # down-after 1 s + election + promotion; a split vote retries later
ACK_BOUND_S = 10.0  # from the switch to the first acknowledged write through the proxy
REJOIN_BOUND_S = 40.0  # Sentinel converts a returning old master after ~8 s, then it syncs
SLACK_S = 0.5  # timestamps come from different threads of this process
# Longer than any failover here, so a command held across one is delivered, never
# answered -NOMASTER (hold.timeout is what would make -NOMASTER legitimate).
HOLD_TIMEOUT = "15s"
REPLY_TIMEOUT_S = 20.0  # the recorder's; above HOLD_TIMEOUT


def ms(seconds):
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


# ---------------------------------------------------------------------------------------
# redis-tether in Sentinel mode (harness.Proxy builds a static `upstream:` config; this
# subclass writes master_name / sentinels instead and otherwise reuses it).


class SentinelProxy(harness.Proxy):
    def __init__(self, workdir, sentinels, master_name=MASTER_NAME, overrides=None):
        os.makedirs(workdir, exist_ok=True)
        super().__init__(workdir, None, overrides)
        self.sentinels = list(sentinels)
        self.master_name = master_name

    def write_config(self):
        cfg = harness.default_proxy_config(f"{HOST}:{self.port}", 0, self.admin_port)
        svc = cfg["services"][0]
        del svc["upstream"]
        svc["master_name"] = self.master_name
        svc["sentinels"] = "@SENTINELS@"
        svc["failover"] = {"poll_interval": "1s", "hold_bound": "10s"}
        svc["hold"]["timeout"] = HOLD_TIMEOUT
        cfg = harness.deep_merge(cfg, self.overrides)
        flow = "[" + ", ".join(f'"{h}:{p}"' for h, p in self.sentinels) + "]"
        text = harness.to_yaml(cfg).replace('"@SENTINELS@"', flow)
        with open(self.config_path, "w") as f:
            f.write(text + "\n")
        return cfg


@pytest.fixture
def make_proxy(request, workdir, make_topology):  # noqa: F811
    """make_proxy(topo, master_name=..., **service overrides) -> started SentinelProxy.
    Stopped by PID at teardown (before the topology); an unclean exit fails the test."""
    made = []

    def make(topo, master_name=MASTER_NAME, sentinel_password=None, sentinels=None,
             **service):
        if sentinel_password is not None:
            service["sentinel_password"] = sentinel_password
        proxy = SentinelProxy(os.path.join(workdir, f"proxy{len(made)}"),
                              sentinels or topo.sentinel_addresses, master_name,
                              {"service": service})
        made.append(proxy)
        return proxy.start()

    yield make
    failed = any(getattr(getattr(request.node, "rep_" + w, None), "failed", False)
                 for w in ("setup", "call"))
    problems = []
    for proxy in made:
        problems += proxy.exit_problems(proxy.stop())
        if failed or problems:
            print(f"--- redis-tether log ({proxy.log_path}):\n"
                  + harness.read_tail(proxy.log_path, 150))
    assert not problems, "redis-tether did not exit cleanly:\n" + "\n".join(problems)


# ---------------------------------------------------------------------------------------
# Checks shared by the scenarios


def assert_no_client_closed(proxy):
    m = proxy.metrics()
    closed = {dict(ls).get("reason"): v for (n, ls), v in m.series.items()
              if n == "redis_tether_client_connections_closed_total" and v}
    assert not closed, f"redis-tether closed client connections: {closed}"
    return m


def error_metrics(m):
    return {dict(ls).get("code"): int(v) for (n, ls), v in m.series.items()
            if n == "redis_tether_error_replies_total" and v}


def assert_no_disconnect(v):
    assert (v.disconnects, v.reconnects, v.connect_failures) == (0, 0, 0), \
        f"the client lost its connection: {v.conn_events}"
    assert v.outcomes["disconnect"] == v.outcomes["timeout"] == v.outcomes["not_sent"] == 0, \
        v.summary()
    assert v.failure is None, v.failure


def check_failover_metrics(m, sw, switches, held):
    """/metrics after a failover: the switch counted, the new master as the only
    master_info series (with the epoch), no hold left active, one failover duration
    observed per switch, every Sentinel reachable."""
    assert m.require("redis_tether_master_switches_total") == switches
    info = [dict(ls) for (n, ls), v in m.series.items()
            if n == "redis_tether_master_info" and v == 1]
    assert [i["address"] for i in info] == [f"{sw.new[0]}:{sw.new[1]}"], info
    if sw.epoch is not None:
        assert info[0]["epoch"] in ("", str(sw.epoch)), (info, sw.epoch)
    assert m.require("redis_tether_failover_hold_active") == 0
    assert m.require("redis_tether_failover_duration_seconds_count") == switches
    assert m.require("redis_tether_failover_duration_seconds_sum") < 30 * switches
    assert (m.require("redis_tether_failover_hold_duration_seconds_count") >= 1) == held
    assert m.require("redis_tether_sentinels_reachable") == 3


def start_recorder(proxy, prefix=""):
    rec = WriteRecorder(proxy.address, max_seconds=90, reply_timeout=REPLY_TIMEOUT_S,
                        key_prefix=prefix).start()
    rec.wait_acked(200)
    return rec


def wait_switch(topo, old_addr, since):
    """The switch away from old_addr, once the failover has settled. With down-after 1 s
    Sentinel now and then fails over a second time, away from the master it has just
    promoted (see SentinelTopology.wait_settled); the proxy must follow both, so the
    scenarios go on with the last switch of the chain and print the chain."""
    sw = topo.wait_for_switch(old_addr, SWITCH_BOUND_S, since=since)
    assert sw.new != tuple(old_addr)
    last = topo.settle(sw, SWITCH_BOUND_S)
    if last is not sw:
        print(f"\nnote: Sentinel failed over again: {topo.switches_since(since)}")
    return last


def wait_first_ack(rec, after):
    """The first acknowledged write sent at or after `after`; waits for it (bounded)."""
    return harness.wait_until(lambda: rec.first_ack_after(after), ACK_BOUND_S,
                              what="an acknowledged write through the proxy")


def promoted_to_ack(rec, sw, after):
    """ms from the leader's +promoted-slave to the first write acknowledged after `after`
    (a time at which the old master could no longer acknowledge anything)."""
    t_ack = min((r.t_done for r in rec.snapshot() if r.outcome == "ok" and r.t_done >= after),
                default=None)
    if t_ack is None or sw.t_promoted is None:
        return None
    return t_ack - sw.t_promoted


def report(what, v, m, extra=""):
    print(f"\n{what}: errors {dict(v.errors_by_code)}, disconnects {v.disconnects}, "
          f"reconnects {v.reconnects}, lost acknowledged SETs {len(v.missing_sets)}, "
          f"INCR backwards {len(v.incr_backwards)} (max drop {v.max_backwards_drop}); "
          f"proxy error replies {error_metrics(m)}; {extra}\n  {v.summary()}")


def keys_on(node, keys):
    with node.client() as c:
        return c.command("MGET", *keys) if keys else []


def write_calls(node):
    """cmdstat_set + cmdstat_incr calls from INFO commandstats."""
    info = node.command("INFO", "commandstats")
    text = info.decode() if isinstance(info, bytes) else info
    total = 0
    for line in text.splitlines():
        if line.startswith(("cmdstat_set:", "cmdstat_incr:")):
            total += int(line.split("calls=", 1)[1].split(",", 1)[0])
    return total


# ---------------------------------------------------------------------------------------
# Scenarios


def test_kill_master_then_old_master_restarts(make_topology, make_proxy):  # noqa: F811
    topo = make_topology()
    proxy = make_proxy(topo)
    rec = start_recorder(proxy)
    old, t_kill = topo.kill_master()
    sw = wait_switch(topo, old.address, t_kill)
    wait_first_ack(rec, sw.t_switch)
    time.sleep(0.3)
    rec.stop()
    v = rec.verify(sw.new)
    m = assert_no_client_closed(proxy)
    lat = promoted_to_ack(rec, sw, t_kill + SLACK_S)
    report("kill", v, m, f"+promoted-slave -> first ack {ms(lat)}, "
           f"kill -> +promoted-slave {ms(sw.t_promoted and sw.t_promoted - t_kill)}")
    check_failover_metrics(m, sw, len(topo.switches_since(t_kill)), held=True)
    assert_no_disconnect(v)
    # Only commands in flight at the kill: the client is serial, so the one written to
    # the dying connection, and rarely the next, when the client sends it before the
    # proxy has seen its other connection to the dead master close. A second switch
    # (Sentinel failing over again) may catch as many again.
    switches = len(topo.switches_since(t_kill))
    assert set(v.errors_by_code) <= {"OUTCOMEUNKNOWN"}, v.summary()
    assert v.errors_by_code["OUTCOMEUNKNOWN"] <= 2 * switches, v.summary()
    unknown = [r for r in rec.records if r.outcome == "error"]
    assert switches > 1 or all(r.t_sent < t_kill + SLACK_S for r in unknown), unknown
    # Lost: only SETs the dead master acknowledged (before the kill) and never replicated.
    assert all(r.t_sent < t_kill for r in v.missing_sets), \
        [r for r in v.missing_sets if r.t_sent >= t_kill][:5]
    assert v.max_backwards_drop <= len(v.missing_sets), v.summary()
    print(f"kill: {len(v.missing_sets)} SETs acknowledged by the dead master were not "
          f"replicated (lost)")

    # The old master comes back on its port and config: it says master until Sentinel
    # converts it; the proxy must write to the new master only.
    # As in test_sentinel_topology.py: the failover is over (every Sentinel agrees, the
    # other replica follows the new master) before the old master comes back.
    for n in topo.nodes:
        if n.address not in (old.address, sw.new):
            topo.wait_role(n, "slave", sw.new, REJOIN_BOUND_S)
    before_new = write_calls(topo.node_at(sw.new))
    rec2 = start_recorder(proxy, prefix="r:")
    t_restart = time.monotonic()
    topo.restart_node(old)
    first_role = old.role()[0]
    calls_at_restart = write_calls(old)
    time.sleep(2.0)
    role_2s = old.role()[0]
    seen = rec2.snapshot()
    early = keys_on(old, [f"r:k:{r.i}" for r in seen
                          if r.command == "SET" and r.outcome == "ok" and r.t_sent >= t_restart])
    calls_2s = write_calls(old)
    topo.wait_role(old, "slave", sw.new, REJOIN_BOUND_S)
    t_rejoin = time.monotonic()
    wait_first_ack(rec2, t_rejoin)
    time.sleep(0.3)
    rec2.stop()
    v2 = rec2.verify(sw.new)
    m = assert_no_client_closed(proxy)
    report("kill+restart", v2, m, f"restarted old master said '{first_role}' (after 2 s: "
           f"'{role_2s}'), replica of the new master {ms(t_rejoin - t_restart)} after the "
           f"restart; its SET+INCR calls in the first 2 s: {calls_2s - calls_at_restart}")
    assert_no_disconnect(v2)
    assert not v2.errors_by_code and not v2.missing_sets and not v2.incr_backwards
    if role_2s == "master":  # replicated writes would count once it is a replica
        assert calls_2s == calls_at_restart, "the proxy wrote to the restarted old master"
    assert not [k for k in early if k is not None], "proxy writes reached the old master"
    assert write_calls(topo.node_at(sw.new)) - before_new >= v2.acked_sets + v2.acked_incrs


def test_planned_failover_costs_nothing(make_topology, make_proxy):  # noqa: F811
    topo = make_topology()
    proxy = make_proxy(topo)
    rec = start_recorder(proxy)
    old = topo.current_master()
    t_failover = topo.planned_failover(sentinel=1)
    sw = wait_switch(topo, old.address, t_failover)
    wait_first_ack(rec, sw.t_switch)
    time.sleep(0.5)
    rec.stop()
    v = rec.verify(sw.new)
    m = assert_no_client_closed(proxy)
    lat = promoted_to_ack(rec, sw, sw.t_promoted or sw.t_switch)
    report("planned", v, m, f"+promoted-slave -> first ack {ms(lat)}")
    check_failover_metrics(m, sw, len(topo.switches_since(t_failover)), held=True)
    assert_no_disconnect(v)
    assert not v.errors_by_code, v.summary()
    assert not v.missing_sets and not v.incr_backwards and v.counter_deficit <= 0, v.summary()
    assert not error_metrics(m)


def test_stopped_master_gets_no_write_after_resuming(make_topology, make_proxy):  # noqa: F811
    topo = make_topology()
    proxy = make_proxy(topo)
    rec = start_recorder(proxy)
    old, t_stop = topo.stop_master()
    sw = wait_switch(topo, old.address, t_stop)
    t_cont = topo.cont_master(old)
    calls_cont = write_calls(old)  # includes the command in flight at SIGSTOP
    wait_first_ack(rec, t_cont)
    time.sleep(2.0)
    role_2s = old.role()[0]
    calls_2s = write_calls(old)
    after = [r for r in rec.snapshot() if r.command == "SET" and r.t_sent >= t_cont]
    on_old = keys_on(old, [f"k:{r.i}" for r in after])
    rec.stop()
    v = rec.verify(sw.new)
    m = assert_no_client_closed(proxy)
    stalled = max(rec.records, key=lambda r: r.t_done - r.t_sent)
    lat = promoted_to_ack(rec, sw, t_cont)
    report("stop", v, m, f"stopped {ms(t_cont - t_stop)}; +promoted-slave -> first ack "
           f"after SIGCONT {ms(lat)}; longest reply wait {ms(stalled.t_done - stalled.t_sent)}; "
           f"old master after 2 s: '{role_2s}', its SET+INCR calls since SIGCONT "
           f"{calls_2s - calls_cont}, keys written after SIGCONT present on it "
           f"{sum(1 for k in on_old if k is not None)} of {len(after)}")
    by_old = stalled.outcome == "ok" and stalled.t_done >= t_cont
    print(f"stop: the command in flight at SIGSTOP, {stalled.command} {stalled.i}, got "
          f"{stalled.outcome} {stalled.value!r} {ms(stalled.t_done - t_stop)} after SIGSTOP"
          + (" from the resumed old master, after the promotion: an acknowledged write "
             "the new master does not have" if by_old else ""))
    assert_no_disconnect(v)
    # The command in flight at SIGSTOP gets OUTCOMEUNKNOWN when the proxy abandons the
    # old master at the switch: the resumed old master runs it after the promotion, so
    # a reply from it would acknowledge a write the new master never gets (DESIGN
    # promise 1). No acknowledged write is missing.
    assert not v.missing_sets and not v.incr_backwards, v.summary()
    assert set(v.errors_by_code) <= {"OUTCOMEUNKNOWN"} and v.outcomes["error"] <= 1, v.summary()
    assert after and not [k for k in on_old if k is not None], \
        "writes sent after SIGCONT reached the resumed old master"
    if role_2s == "master":
        assert calls_2s == calls_cont, "the proxy wrote to the resumed old master"
    # Acknowledged writes lost: at most what the old master itself acknowledged.
    assert all(r.t_sent < t_stop + SLACK_S for r in v.missing_sets), v.summary()


def test_misconfiguration_is_named_to_the_client(make_topology, make_proxy):  # noqa: F811
    topo = make_topology(sentinel_password="sentinel-secret")
    cases = {
        "unknown master name": make_proxy(topo, master_name="nosuchmaster",
                                          sentinel_password="sentinel-secret",
                                          hold={"timeout": "500ms"}),
        "wrong sentinel_password": make_proxy(topo, sentinel_password="wrong-secret",
                                              hold={"timeout": "500ms"}),
    }
    for what, proxy in cases.items():
        with RespClient(proxy.address, timeout=10) as c:
            t0 = time.monotonic()
            first = c.command("SET", "x", "1")
            waited = time.monotonic() - t0
            second = c.command("GET", "x")
            assert not c.closed
        m = assert_no_client_closed(proxy)
        log = proxy.log()
        lines = [ln for ln in log.splitlines() if "sentinel" in ln.lower()
                 and ("warn" in ln or "error" in ln)]
        print(f"\nmisconfig ({what}): reply after {ms(waited)}: -{first}\n  second: -{second}"
              f"\n  errors {error_metrics(m)}\n  log: " + "\n  log: ".join(lines[:4]))
        for reply in (first, second):
            assert isinstance(reply, RespError) and reply.code == "NOMASTER", reply
        assert 0.4 <= waited < 5.0
        sentinel_ports = [str(p) for _, p in topo.sentinel_addresses]
        if what == "unknown master name":
            assert "nosuchmaster" in first or "no such master" in first.lower(), first
        else:
            assert "WRONGPASS" in first or "auth" in first.lower(), first
        assert any(p in first for p in sentinel_ports), f"reply names no Sentinel: {first}"
        assert any(any(p in ln for p in sentinel_ports) for ln in lines), \
            f"no log line naming a Sentinel:\n{harness.read_tail(proxy.log_path, 40)}"
        assert error_metrics(m).get("NOMASTER", 0) >= 2


def test_follows_with_sentinels_down(make_topology, make_proxy):  # noqa: F811
    topo = make_topology()
    proxy = make_proxy(topo)
    rec = start_recorder(proxy)
    results = []
    for down in (2, 1):  # one Sentinel down, then two: Sentinel 0 forces the failover
        topo.stop_sentinel(down)
        old = topo.current_master()
        if down == 1:  # the second failover needs a replica of the first's new master
            harness.wait_until(lambda: any(
                r.get("master-link-status") == "ok" and r["flags"] == "slave"
                and r["master-port"] == str(old.port) for r in topo.sentinels[0].replicas()),
                REJOIN_BOUND_S, 0.1, what="a replica of the new master")
        t_failover = topo.planned_failover(sentinel=0)
        sw = wait_switch(topo, old.address, t_failover)
        wait_first_ack(rec, sw.t_switch)
        time.sleep(0.3)
        t_acked = rec.first_ack_after(sw.t_promoted or sw.t_switch)
        results.append((down, sw, t_acked))
    # All three down: the last known master keeps serving.
    topo.stop_sentinel(0)
    t_all_down = time.monotonic()
    time.sleep(2.0)
    wait_first_ack(rec, t_all_down + 1.5)
    last = results[-1][1].new
    served = [r for r in rec.snapshot() if r.t_sent >= t_all_down and r.outcome == "ok"]
    # Sentinels back: following again (one more planned failover).
    t_back = time.monotonic()
    for i in range(3):
        topo.start_sentinel(i)
    topo.wait_healthy(last, REJOIN_BOUND_S)
    t_healthy = time.monotonic()
    t_failover = topo.planned_failover(sentinel=2)
    sw = wait_switch(topo, last, t_failover)
    wait_first_ack(rec, sw.t_switch)
    time.sleep(0.3)
    results.append((3, sw, rec.first_ack_after(sw.t_promoted or sw.t_switch)))
    rec.stop()
    v = rec.verify(sw.new)
    m = assert_no_client_closed(proxy)
    log = proxy.log()
    notes = [ln.split(" ", 2)[-1] for ln in log.splitlines()
             if "all_sentinels_lost" in ln or "sentinels_back" in ln]
    report("sentinels down", v, m, "; ".join(
        f"{up} Sentinel(s) up: +promoted-slave -> first ack "
        f"{ms(t and sw.t_promoted and t - sw.t_promoted)}"
        for up, sw, t in zip((2, 1, 3), (r[1] for r in results), (r[2] for r in results)))
        + f"; all down: {len(served)} writes acknowledged by {last}; Sentinels back and "
        f"healthy after {ms(t_healthy - t_back)}\n  log: " + "\n  log: ".join(notes[:4]))
    assert_no_disconnect(v)
    assert not v.errors_by_code and not v.missing_sets and not v.incr_backwards, v.summary()
    assert len(served) > 100
    assert "event=all_sentinels_lost" in log and "event=sentinels_back" in log


def test_discovers_the_other_sentinels(make_topology, make_proxy):  # noqa: F811
    topo = make_topology()
    proxy = make_proxy(topo, sentinels=[topo.sentinel_addresses[0]])
    others = {f"{h}:{p}" for h, p in topo.sentinel_addresses[1:]}

    def discovered():
        return {ln.split("sentinel=", 1)[1].split()[0] for ln in proxy.log().splitlines()
                if "event=sentinel_discovered" in ln}
    harness.wait_until(lambda: discovered() >= others, 10, what="both peers discovered")
    rec = start_recorder(proxy)
    topo.stop_sentinel(0)  # the only configured Sentinel
    old = topo.current_master()
    t_failover = topo.planned_failover(sentinel=1)
    sw = wait_switch(topo, old.address, t_failover)
    wait_first_ack(rec, sw.t_switch)
    time.sleep(0.3)
    rec.stop()
    v = rec.verify(sw.new)
    m = assert_no_client_closed(proxy)
    lat = promoted_to_ack(rec, sw, sw.t_promoted or sw.t_switch)
    report("discovered Sentinels", v, m, f"learned {sorted(discovered())}; +promoted-slave "
           f"-> first ack {ms(lat)} with the configured Sentinel down")
    assert_no_disconnect(v)
    assert not v.errors_by_code and not v.missing_sets and not v.incr_backwards, v.summary()
    assert discovered() == others  # each peer once, the configured one never again
