"""The upstream redis-server is SIGKILLed and restarted on the same port while clients are
connected.

- Clients keep their connections (no EOF, PING works afterwards).
- Commands in flight at the kill get -OUTCOMEUNKNOWN. To have some in flight for sure, a
  probe runs a busy Lua script so that Redis is stuck when it is killed: the probe's EVAL
  and every command queued behind it are in flight.
- Commands sent while Redis is down are held and delivered once it is back: a client
  sends a fixed sequence after the kill and must get exactly the right replies, after the
  restart.
- Nothing is delivered twice: Redis runs with appendfsync always (an acknowledged write
  survives SIGKILL), each traffic client INCRs its own counter and RPUSHes unique ids;
  afterwards no id is in a list twice, every acknowledged id is there, and each counter
  is between the acknowledged INCRs and that plus the OUTCOMEUNKNOWN ones.
- With a short hold.timeout a command gets -NOMASTER and the connection stays usable.
"""

import collections
import threading
import time

import pytest

from harness import ConnectionClosed, RespError, encode_command, wait_until

PERSISTENT = ["--appendonly", "yes", "--appendfsync", "always"]
BUSY_SCRIPT = "local i = 0 while i < tonumber(ARGV[1]) do i = i + 1 end return i"
GRACE_S = 0.5  # after the kill, a command may still race onto the dying connection


class RecordingClient(threading.Thread):
    """Pipelines windows of (INCR ctr, RPUSH list id) and records every command and reply."""

    def __init__(self, target, i, stop, window=8, max_seconds=60.0):
        super().__init__(daemon=True)
        self.conn = target.client(timeout=30)
        self.i, self.stop_event, self.window = i, stop, window
        self.ctr, self.list = f"restart:ctr:{i}", f"restart:list:{i}"
        self.deadline = time.monotonic() + max_seconds
        self.records = []  # (kind, id, t_sent, reply, t_reply)
        self.failure = None

    def run(self):
        seq = 0
        try:
            while not self.stop_event.is_set() and time.monotonic() < self.deadline:
                batch = []
                for _ in range(self.window):
                    seq += 1
                    batch += [("INCR", None), ("RPUSH", f"{self.i}:{seq}")]
                t_sent = time.monotonic()
                self.conn.send(b"".join(
                    encode_command("INCR", self.ctr) if kind == "INCR"
                    else encode_command("RPUSH", self.list, ident) for kind, ident in batch))
                for kind, ident in batch:
                    reply = self.conn.read_reply()
                    self.records.append((kind, ident, t_sent, reply, time.monotonic()))
        except (OSError, ConnectionClosed) as e:
            self.failure = f"client {self.i}: connection lost: {type(e).__name__}: {e}"


def wait_redis_busy(redis, timeout=5.0):
    """True once redis-server stops answering (it is running the busy script)."""
    deadline = time.monotonic() + timeout
    with redis.client(timeout=0.3) as c:
        while time.monotonic() < deadline:
            try:
                c.command("PING")
            except TimeoutError:
                return True
            time.sleep(0.02)
    return False


@pytest.mark.proxy_only
def test_kill_and_restart_upstream(make_target):
    target = make_target({"service": {"hold": {"timeout": "30s"}}}, redis_args=PERSISTENT)
    redis = target.redis
    stop = threading.Event()
    clients = [RecordingClient(target, i, stop) for i in range(8)]
    probe = target.client(timeout=30)
    held = target.client(timeout=30)
    assert held.command("DEL", "restart:held:ctr", "restart:held:list") == 0
    outages = []  # (t_kill, t_restart)

    def traffic_after(t):
        wait_until(lambda: all(c.records and c.records[-1][2] > t for c in clients), 30,
                   what="traffic after the restart")

    for c in clients:
        c.start()
    try:
        wait_until(lambda: all(len(c.records) > 100 for c in clients), 30, what="traffic")
        # Outage 1: Redis is stuck in a script when killed, so the probe's EVAL and every
        # command queued behind it are in flight and never ran.
        probe.send_command("EVAL", BUSY_SCRIPT, 0, 3_000_000_000)
        assert wait_redis_busy(redis), "the busy script never started on redis-server"
        t_kill = time.monotonic()
        redis.kill()
        assert probe.read_reply().code == "OUTCOMEUNKNOWN"
        time.sleep(GRACE_S)
        # Sent while no upstream exists: must be held, then run once, in order.
        held.send(encode_command("INCR", "restart:held:ctr")
                  + b"".join(encode_command("RPUSH", "restart:held:list", x) for x in "abc")
                  + encode_command("GET", "restart:held:ctr"))
        assert not held.has_data(timeout=1.0), "answered while no upstream existed"
        t_restart = time.monotonic()
        redis.start()
        outages.append((t_kill, t_restart))
        assert [held.read_reply() for _ in range(5)] == [1, 1, 2, 3, b"1"]
        traffic_after(t_restart + 0.5)
        # Outage 2: killed amid live pipelined traffic, so some commands have run and lost
        # their reply: they may be answered only -OUTCOMEUNKNOWN, never re-sent.
        t_kill = time.monotonic()
        redis.kill()
        time.sleep(1.0)
        t_restart = time.monotonic()
        redis.start()
        outages.append((t_kill, t_restart))
        traffic_after(t_restart + 0.5)
    finally:
        stop.set()
        for c in clients:
            c.join(timeout=60)
    assert probe.is_alive() and held.is_alive(), "a client lost its connection"
    assert held.command("LRANGE", "restart:held:list", 0, -1) == [b"a", b"b", b"c"]
    problems = [c.failure for c in clients if c.failure]
    problems += [f"client {c.i}: connection not alive" for c in clients if not c.conn.is_alive()]
    with redis.client() as direct:
        for c in clients:
            problems += check_client(c, direct, outages)
    assert not problems, "\n".join(problems)
    records = [r for c in clients for r in c.records]
    for n, (k, r) in enumerate(outages, 1):
        unknown = sum(isinstance(x[3], RespError) and k - 1 < x[2] < r for x in records)
        print(f"outage {n}: {unknown} OUTCOMEUNKNOWN, "
              f"{sum(k < x[2] < r for x in records)} sent while down")
    print(f"{len(records)} commands in all")
    m = target.metrics()
    assert m.require("redis_tether_error_replies_total", service="main",
                     code="OUTCOMEUNKNOWN") >= 1


def check_client(c, direct, outages):
    """What client c saw must be consistent with the outages and with what Redis holds."""
    problems, acked, unknown = [], {"INCR": [], "RPUSH": []}, {"INCR": [], "RPUSH": []}
    for kind, ident, t_sent, reply, t_reply in c.records:
        if isinstance(reply, RespError):
            if reply.code != "OUTCOMEUNKNOWN" or not any(
                    t_sent <= k + GRACE_S and t_reply >= k for k, _ in outages):
                problems.append(f"client {c.i}: {kind} sent at {t_sent:.3f} got -{reply} "
                                f"(outages {outages})")
            unknown[kind].append(ident)
        elif not isinstance(reply, int):
            problems.append(f"client {c.i}: {kind} got {reply!r}")
        else:
            acked[kind].append((ident, reply))
            if any(k + GRACE_S < t_sent < r and t_reply < r for k, r in outages):
                problems.append(f"client {c.i}: {kind} sent while down answered before restart")
    for kind in acked:
        values = [v for _, v in acked[kind]]
        if values != sorted(set(values)):
            problems.append(f"client {c.i}: {kind} replies not strictly increasing: {values}")
    counter = int(direct.command("GET", c.ctr) or 0)
    n_acked, n_unknown = len(acked["INCR"]), len(unknown["INCR"])
    if not n_acked <= counter <= n_acked + n_unknown:
        problems.append(f"client {c.i}: counter {counter}, acknowledged INCRs {n_acked}, "
                        f"outcome unknown {n_unknown}")
    stored = [x.decode() for x in direct.command("LRANGE", c.list, 0, -1)]
    dupes = {x for x, n in collections.Counter(stored).items() if n > 1}
    missing = {ident for ident, _ in acked["RPUSH"]} - set(stored)
    foreign = set(stored) - {ident for ident, _ in acked["RPUSH"]} - set(unknown["RPUSH"])
    for what, ids in (("twice", dupes), ("missing though acknowledged", missing),
                      ("never sent or refused", foreign)):
        if ids:
            problems.append(f"client {c.i}: ids {what}: {sorted(ids)[:10]}")
    return problems


@pytest.mark.proxy_only
def test_held_commands_wait_until_the_restarted_upstream_has_loaded(make_target):
    # Redis accepts connections (and answers ROLE) while it loads its dataset, but refuses
    # commands with -LOADING. A million keys take a good fraction of a second to load, so
    # the proxy's reconnect lands inside that window: held commands must wait for the load
    # (-LOADING means "not executed"), not be answered -LOADING.
    target = make_target({"service": {"hold": {"timeout": "30s"}}},
                         redis_args=PERSISTENT + ["--enable-debug-command", "yes"])
    with target.redis.client(timeout=60) as direct:
        assert direct.command("DEBUG", "POPULATE", 1_000_000, "loading") == "OK"
        assert direct.command("BGREWRITEAOF") is not None
        wait_until(lambda: b"aof_rewrite_in_progress:0" in direct.command("INFO", "persistence")
                   and b"aof_rewrite_scheduled:0" in direct.command("INFO", "persistence"),
                   60, what="AOF rewrite")
    with target.client(timeout=60) as c:
        assert c.command("SET", "loading:k", "before") == "OK"
        target.redis.kill()
        wait_upstream_gone(target)
        c.send(encode_command("GET", "loading:k") + encode_command("INCR", "loading:n")
               + encode_command("DBSIZE"))
        target.redis.start()
        replies = [c.read_reply() for _ in range(3)]
        assert replies == [b"before", 1, 1_000_000 + 2], replies


def wait_upstream_gone(target):
    """Waits until the proxy has noticed that no upstream connection is ready."""
    wait_until(lambda: (target.metrics().get("redis_tether_upstream_connections",
                                             service="main", state="ready") or 0) == 0,
               10, what="the proxy to see the upstream gone")


@pytest.mark.proxy_only
def test_short_hold_gives_nomaster_and_connection_survives(make_target):
    target = make_target({"service": {"hold": {"timeout": "300ms"}}})
    with target.client(timeout=30) as c:
        assert c.command("SET", "nomaster:k", "v") == "OK"
        target.redis.kill()
        wait_upstream_gone(target)
        t0 = time.monotonic()
        c.send(encode_command("GET", "nomaster:k") + encode_command("INCR", "nomaster:n")
               + encode_command("PING"))
        replies = [c.read_reply() for _ in range(3)]
        elapsed = time.monotonic() - t0
        for r in replies:
            assert isinstance(r, RespError) and r.code == "NOMASTER", replies
            assert "'main'" in r, r
        assert 0.25 <= elapsed < 5, f"NOMASTER after {elapsed:.3f}s, hold.timeout is 300ms"
        target.redis.start()
        ok = None
        for _ in range(50):
            ok = c.command("SET", "nomaster:k", "after")
            if ok == "OK":
                break
            assert isinstance(ok, RespError) and ok.code == "NOMASTER", ok
            time.sleep(0.1)
        assert ok == "OK", "the proxy never used the restarted upstream"
        assert c.command("GET", "nomaster:k") == b"after"
    m = target.metrics()
    expired = m.require("redis_tether_hold_expired_total", service="main")
    assert expired >= 3
    assert m.get("redis_tether_limit_hits_total", service="main", limit="hold_timeout") == expired


@pytest.mark.proxy_only
def test_hold_full_gives_holdfull(make_target):
    target = make_target({"service": {"hold": {"timeout": "10s", "max_bytes": "1KiB"}}})
    with target.client(timeout=30) as c:
        target.redis.kill()
        wait_upstream_gone(target)
        reply = c.command("SET", "holdfull:k", b"x" * 4096)
        assert isinstance(reply, RespError) and reply.code == "HOLDFULL", reply
        assert target.metrics().get("redis_tether_limit_hits_total", service="main",
                                    limit="hold_max_bytes") == 1
        target.redis.start()
        ok = None
        for _ in range(50):
            ok = c.command("PING")
            if ok == "PONG":
                break
            time.sleep(0.1)
        assert ok == "PONG"
        assert c.command("EXISTS", "holdfull:k") == 0
