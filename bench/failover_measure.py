"""One failover, measured from the client's side. Shared by bench/failover_bench.py (the
benchmark behind bench/failover.sh) and scripts/demo_failover.py (scripts/demo.sh).

    client: INCR counter + SET k:<i> <i> every 2 ms, every reply recorded
            (tests/integration/write_recorder.py)
      │
    system, the way the client reaches the master:
      tether     redis-tether in Sentinel mode (the integration tests' SentinelProxy)
      haproxy    HAProxy in TCP mode in front of all three nodes, the usual health check
                 (PING, `info replication`, expect `role:master`, QUIT), check inter 1 s,
                 on-marked-down shutdown-sessions
      sentinel   python3-redis's own client: Sentinel(...).master_for("mymaster"),
                 which asks the Sentinels for the master at every connect and reconnects
                 by itself after an error
      │
    topology: 1 master, 2 replicas, 3 Sentinels on loopback, down-after 1000 ms
              (tests/integration/sentinel_topology.py)

What the client saw, over a time window (see Stats):
    errors        commands that got no success reply: error replies, exceptions raised,
                  commands lost with a connection, timeouts
    disconnects   connections the client lost (or its library dropped)
    lost          acknowledged SETs whose key the final master does not have
    promoted_ack  ms from the leader's +promoted-slave (as read from the Sentinels here)
                  to the first acknowledged SET that the final master has

Processes are started through tests/integration/harness.py (free ports from the kernel,
setpriv --pdeathsig) and ended by PID. Everything here runs on the caller's main thread,
except the recorder's writer thread and the Sentinel event readers.
"""

import collections
import os
import sys
import time
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import redis  # noqa: E402
from redis.sentinel import Sentinel, SentinelManagedConnection  # noqa: E402

import harness  # noqa: E402
from harness import HOST, RespClient  # noqa: E402
from sentinel_topology import MASTER_NAME, SentinelTopology  # noqa: E402
from test_sentinel_failover import SentinelProxy  # noqa: E402
from write_recorder import WriteRecorder  # noqa: E402

SYSTEMS = ("tether", "haproxy", "sentinel", "tether-session")
DEFAULT_SYSTEMS = ("tether", "haproxy", "sentinel")
SYSTEM_NAMES = {"tether": "redis-tether", "haproxy": "haproxy",
                "sentinel": "redis-py Sentinel", "tether-session": "redis-tether session"}
SCENARIOS = ("kill", "stop", "planned")

SWITCH_BOUND_S = 30.0  # fault -> +switch-master, and again for a second failover
DEMOTE_BOUND_S = 40.0  # switch -> old master a replica (Sentinel converts it after ~8 s)
ACK_BOUND_S = 10.0  # last switch -> an acknowledged write
REPLY_TIMEOUT_S = 10.0  # every client's reply timeout (socket timeout)
WARM_ACKS = 200
HAPROXY_INTER = "1s"


# ---------------------------------------------------------------------------------------
# Systems: how the client reaches the master. Each has start(), recorder(**kw), stop()
# (-> list of problems at exit) and describe().


class FixedPortProxy(SentinelProxy):
    """SentinelProxy on ports chosen by the caller (the demo wants 127.0.0.1:6379)."""

    def __init__(self, workdir, sentinels, port, admin_port):
        super().__init__(workdir, sentinels)
        self.fixed = (port, admin_port)

    def write_config(self):
        self.port, self.admin_port = self.fixed
        return super().write_config()


class TetherSystem:
    def __init__(self, topo, workdir, port=None, admin_port=None, mode=None):
        sub = os.path.join(workdir, "redis-tether")
        if port:
            self.proxy = FixedPortProxy(sub, topo.sentinel_addresses, port, admin_port)
        else:
            overrides = {"service": {"pool": {"mode": mode}}} if mode else None
            self.proxy = SentinelProxy(sub, topo.sentinel_addresses, overrides=overrides)

    def start(self):
        self.proxy.start()
        return self

    def recorder(self, **kw):
        return WriteRecorder(self.proxy.address, **kw)

    def stop(self):
        return self.proxy.exit_problems(self.proxy.stop())

    def describe(self):
        return (f"redis-tether {HOST}:{self.proxy.port} (pid {self.proxy.proc.pid}), "
                f"config {self.proxy.config_path}")


HAPROXY_CONFIG = """\
# The usual HAProxy front for a Sentinel-managed Redis: every node is a server, the
# health check sends only the one that says role:master traffic. shutdown-sessions
# closes the clients of a server marked down; without it a client stays on a demoted
# master, getting -READONLY, until it reconnects by itself.
global
  maxconn 1024
defaults
  mode tcp
  timeout connect 1s
  timeout client 60s
  timeout server 60s
frontend redis
  bind {listen}
  default_backend redis_master
backend redis_master
  option tcp-check
  tcp-check connect
  tcp-check send PING\\r\\n
  tcp-check expect string +PONG
  tcp-check send info\\ replication\\r\\n
  tcp-check expect string role:master
  tcp-check send QUIT\\r\\n
  tcp-check expect string +OK
{servers}
"""


class HaproxySystem:
    def __init__(self, topo, workdir, inter=HAPROXY_INTER):
        self.workdir = os.path.join(workdir, "haproxy")
        os.makedirs(self.workdir, exist_ok=True)
        self.topo = topo
        self.inter = inter
        self.config_path = os.path.join(self.workdir, "haproxy.cfg")
        self.log_path = os.path.join(self.workdir, "haproxy.log")
        self.port = None
        self.proc = None

    def _write_config(self):
        servers = "\n".join(f"  server {n.name} {n.address[0]}:{n.address[1]} check "
                            f"inter {self.inter} on-marked-down shutdown-sessions"
                            for n in self.topo.nodes)
        with open(self.config_path, "w") as f:
            f.write(HAPROXY_CONFIG.format(listen=f"{HOST}:{self.port}", servers=servers))

    def start(self):
        self.port = harness.free_port()
        self._write_config()
        self.proc = harness._start_process(["haproxy", "-db", "-f", self.config_path],
                                           self.log_path)
        try:
            harness.wait_until(self._serves_master, harness.START_TIMEOUT_S, 0.1,
                               what="haproxy to route to the master only")
        except TimeoutError:
            raise RuntimeError("haproxy did not become ready; log:\n"
                               + harness.read_tail(self.log_path))
        return self

    def _serves_master(self):
        """True once 6 fresh connections in a row reach a node whose ROLE is master (the
        replicas start as 'up' until their checks fail)."""
        if self.proc.poll() is not None:
            raise RuntimeError("haproxy exited; log:\n" + harness.read_tail(self.log_path))
        try:
            for _ in range(6):
                with RespClient((HOST, self.port), timeout=1.0) as c:
                    reply = c.command("ROLE")
                    if not isinstance(reply, list) or reply[0] != b"master":
                        return False
            return True
        except (OSError, harness.ConnectionClosed, harness.ProtocolViolation):
            return False

    def recorder(self, **kw):
        return WriteRecorder((HOST, self.port), **kw)

    def stop(self):
        harness.stop_process(self.proc)
        return []

    def describe(self):
        return (f"haproxy {HOST}:{self.port} (pid {self.proc.pid}), tcp-check role:master, "
                f"inter {self.inter}, config {self.config_path}")


class SentinelClientSystem:
    """No process: the client itself asks the Sentinels (python3-redis)."""

    def __init__(self, topo, workdir):
        self.topo = topo

    def start(self):
        return self

    def recorder(self, **kw):
        return SentinelClientRecorder(self.topo.sentinel_addresses, **kw)

    def stop(self):
        return []

    def describe(self):
        return "redis.sentinel.Sentinel(...).master_for('mymaster') in the client"


def make_system(name, topo, workdir):
    kinds = {"tether": TetherSystem, "haproxy": HaproxySystem,
             "sentinel": SentinelClientSystem,
             "tether-session": lambda t, w: TetherSystem(t, w, mode="session")}
    return kinds[name](topo, workdir)


# ---------------------------------------------------------------------------------------
# The python3-redis Sentinel client as a recorder


class SentinelClientRecorder(WriteRecorder):
    """WriteRecorder whose commands go through Sentinel(...).master_for(...): the app
    doing failover itself. Every exception the client raises is an 'error' record (value:
    the exception's class name); every live connection it drops is a 'disconnect' event,
    every connect after the first a 'reconnect' (write_recorder.analyze counts both)."""

    def __init__(self, sentinels, **kw):
        super().__init__(None, **kw)
        self.sentinels = list(sentinels)
        self.client = None
        self.closing = False

    def _make_client(self):
        manager = Sentinel(self.sentinels, sentinel_kwargs={
            "socket_timeout": 1.0, "socket_connect_timeout": 1.0})
        return manager.master_for(MASTER_NAME, socket_timeout=self.reply_timeout,
                                  socket_connect_timeout=self.connect_timeout,
                                  connection_class=_watched_connection(self))

    def _one(self, command, i, *args):
        if self.client is None:
            self.client = self._make_client()
        t_sent = time.monotonic()
        try:
            reply = self.client.execute_command(command, *args)
            outcome, value = "ok", reply.decode() if isinstance(reply, bytes) else reply
        except (redis.RedisError, OSError) as e:
            outcome, value = "error", type(e).__name__
        self._record(i, command, t_sent, time.monotonic(), outcome, value)

    def connected(self, where):
        self._connects += 1
        self._event("connect" if self._connects == 1 else "reconnect", where)

    def connect_failed(self, why):
        self._event("connect_failed", why)

    def dropped(self, where):
        if not self.closing:
            self._event("disconnect", where)

    def stop(self, timeout=None):
        super().stop(timeout)
        self.closing = True
        if self.client is not None:
            self.client.connection_pool.disconnect()
        return self


def _watched_connection(recorder):
    """A SentinelManagedConnection that tells `recorder` when it connects and when a
    live connection is dropped (by an error, a READONLY from a demoted master, or the
    pool moving to a new master)."""

    class WatchedConnection(SentinelManagedConnection):
        def connect(self):
            was_connected = self._sock is not None
            try:
                super().connect()
            except (redis.RedisError, OSError) as e:
                recorder.connect_failed(f"{type(e).__name__}: {e}")
                raise
            if not was_connected and self._sock is not None:
                recorder.connected(f"{self.host}:{self.port}")

        def disconnect(self, *args):
            if self._sock is not None:
                recorder.dropped(f"{self.host}:{self.port}")
            super().disconnect(*args)

    return WatchedConnection


# ---------------------------------------------------------------------------------------
# Faults


@dataclass
class Failover:
    """One fault and the Sentinel switches it caused. Times are time.monotonic().
    first / last: sentinel_topology.Switch of the first and the last failover of the
    chain (Sentinel now and then fails over twice, see SentinelTopology.wait_settled).
    t_settled: when the failover was over and the old master could acknowledge nothing
    any more (dead, or a replica)."""
    scenario: str
    old: object  # sentinel_topology.RedisNode
    t_fault: float
    first: object = None
    last: object = None
    t_settled: float | None = None
    switches: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    @property
    def t_promoted(self):
        """The first promotion's +promoted-slave (or its +switch-master when that event
        was not seen)."""
        return self.first.t_promoted or self.first.t_switch

    @property
    def final(self):
        return self.last.new


def inject(topo, scenario):
    """Starts the fault: kill (SIGKILL the master), stop (SIGSTOP it; SIGCONT comes in
    follow()), planned (SENTINEL FAILOVER). -> Failover."""
    if scenario == "kill":
        old, t = topo.kill_master()
    elif scenario == "stop":
        old, t = topo.stop_master()
    elif scenario == "planned":
        old, t = topo.current_master(), time.monotonic()
        topo.planned_failover(sentinel=0)
    else:
        raise ValueError(f"unknown scenario {scenario!r}")
    return Failover(scenario, old, t)


def follow(topo, fo, on_switch=None):
    """Waits for the switch away from the old master, SIGCONTs a stopped one, waits for
    the failover to settle (a second failover included) and for a running old master to
    be demoted to a replica of the final master. Fills in fo; never raises on a slow
    demotion (noted instead)."""
    fo.first = topo.wait_for_switch(fo.old.address, SWITCH_BOUND_S, since=fo.t_fault)
    if on_switch:
        on_switch(fo.first)
    if fo.scenario == "stop":
        topo.cont_master(fo.old)
    fo.last = topo.settle(fo.first, SWITCH_BOUND_S)
    fo.switches = topo.switches_since(fo.t_fault)
    if fo.old.running:
        try:
            topo.wait_role(fo.old, "slave", fo.final, DEMOTE_BOUND_S)
        except TimeoutError:
            fo.notes.append(f"old master not a replica within {DEMOTE_BOUND_S:.0f} s")
    fo.t_settled = time.monotonic()
    return fo


def wait_ack(rec, after, notes):
    """Waits (bounded) for a write sent at or after `after` to be acknowledged; notes
    when none was."""
    try:
        harness.wait_until(lambda: rec.first_ack_after(after), ACK_BOUND_S, 0.02,
                           what="an acknowledged write")
    except TimeoutError:
        notes.append(f"no acknowledged write within {ACK_BOUND_S:.0f} s once the failover "
                     "was over")


# ---------------------------------------------------------------------------------------
# What the client saw


@dataclass
class Stats:
    commands: int = 0
    acked: int = 0
    errors: int = 0
    error_kinds: collections.Counter = field(default_factory=collections.Counter)
    disconnects: int = 0
    lost: int = 0
    promoted_ack_ms: float | None = None
    incr_backwards: int = 0

    def kinds_text(self):
        return ", ".join(f"{k} {n}" for k, n in self.error_kinds.most_common()) or "-"


def window_stats(records, v, lo=None, hi=None, t_promoted=None):
    """Stats of the commands sent in [lo, hi) (None: unbounded), from the recorder's
    records and its Verification `v` against the final master."""
    def inside(t):
        return (lo is None or t >= lo) and (hi is None or t < hi)

    mine = [r for r in records if inside(r.t_sent)]
    s = Stats(commands=len(mine))
    for r in mine:
        if r.outcome == "ok":
            s.acked += 1
        else:
            s.errors += 1
            s.error_kinds[r.value if r.outcome == "error" else r.outcome] += 1
    s.disconnects = sum(1 for t, kind, _ in v.conn_events
                        if kind in ("disconnect", "eof_idle") and inside(t))
    missing = {r.i for r in v.missing_sets}
    s.lost = sum(1 for r in v.missing_sets if inside(r.t_sent))
    s.incr_backwards = sum(1 for r, _ in v.incr_backwards if inside(r.t_sent))
    if t_promoted is not None:
        s.promoted_ack_ms = first_kept_ack_ms(mine, missing, t_promoted)
    return s


def first_kept_ack_ms(records, missing, t_promoted):
    """ms from t_promoted to the first SET acknowledged at or after it that the final
    master has (an acknowledgement from the old master, which is thrown away, does not
    count)."""
    for r in records:
        if (r.command == "SET" and r.outcome == "ok" and r.t_done >= t_promoted
                and r.i not in missing):
            return (r.t_done - t_promoted) * 1000.0
    return None


# ---------------------------------------------------------------------------------------
# One benchmark run


@dataclass
class RunResult:
    scenario: str
    system: str
    stats: Stats | None = None
    switches: int = 0
    notes: list = field(default_factory=list)
    failure: str | None = None  # why nothing could be measured


def run_once(scenario, system_name, workdir):
    """A fresh topology, the system, the client, one fault, and what the client saw."""
    os.makedirs(workdir, exist_ok=True)
    topo = SentinelTopology(os.path.join(workdir, "topology"))
    system = None
    result = RunResult(scenario, system_name)
    try:
        topo.start()
        system = make_system(system_name, topo, workdir).start()
        measure_failover(topo, system, scenario, result)
    except Exception as e:  # noqa: BLE001 - a benchmark reports and goes on
        result.failure = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        if topo.events is not None:
            result.notes.append("Sentinel events:\n" + topo.events.timeline())
    finally:
        problems = system.stop() if system else []
        topo.stop()
    result.notes += problems
    return result


def measure_failover(topo, system, scenario, result):
    rec = system.recorder(max_seconds=300, reply_timeout=REPLY_TIMEOUT_S).start()
    try:
        rec.wait_acked(WARM_ACKS)
        time.sleep(1.0)
        fo = follow(topo, inject(topo, scenario))
        wait_ack(rec, fo.t_settled, fo.notes)
        time.sleep(1.0)
    finally:
        rec.stop()
    v = rec.verify(fo.final)
    if v.failure:
        fo.notes.append(f"client thread failed: {v.failure}")
    result.stats = window_stats(rec.records, v, t_promoted=fo.t_promoted)
    result.switches = len(fo.switches)
    result.notes += fo.notes
