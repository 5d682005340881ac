"""A failover while 50 clients run pipelined load through redis-tether (issue 3, item 6):
no client is disconnected and no reply reaches the wrong client or comes out of order.

Each client i pipelines windows of { INCR key_i ; ECHO c<i>:<n> } on its own connection.
The ECHO reply names the client and the position of the command, so a reply routed to
another client, or delivered out of order, is caught exactly; the INCR replies stay in
client i's own range (SET key_i to (i + 1) * 10^7 first). Load is bounded: at most
MAX_SECONDS per client, and the test stops it once the failover is over.

- SENTINEL FAILOVER: not one error, every INCR reply exactly one more than the last, in
  both pool modes;
- SIGKILL of the master: errors only -OUTCOMEUNKNOWN for commands in flight at the kill;
  every other reply is the right one for its client and position.
"""

import threading
import time
import uuid

import pytest

from harness import ConnectionClosed, RespClient, RespError, encode_command
from sentinel_topology import make_topology  # noqa: F401  (pytest fixture)
from test_sentinel_failover import (  # noqa: F401  (make_proxy is a pytest fixture)
    assert_no_client_closed, error_metrics, make_proxy, wait_switch)

pytestmark = pytest.mark.proxy_only

CLIENTS = 50
WINDOW = 16  # commands pairs per pipelined write
MAX_SECONDS = 60.0
SPAN = 10 ** 7  # each client's INCR range


class TaggedLoad:
    """CLIENTS threads, one connection each, checking every reply (see the module doc)."""

    def __init__(self, address, clients=CLIENTS):
        self.address = address
        self.run_id = uuid.uuid4().hex[:6]
        self.lock = threading.Lock()
        self.replies = [0] * clients
        self.errors = []  # (client, code) of error replies
        self.problems = []  # wrong replies, disconnects: the test fails on any
        self.jumps = 0  # INCR replies that were not last + 1 (a kill may lose increments)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                         for i in range(clients)]

    def start(self):
        for t in self._threads:
            t.start()
        return self

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=MAX_SECONDS)
        assert not any(t.is_alive() for t in self._threads), "a client thread hung"

    def total(self):
        with self.lock:
            return sum(self.replies)

    def _problem(self, msg):
        with self.lock:
            self.problems.append(msg)

    def _run(self, i):
        key = f"load:{self.run_id}:{i}"
        base = (i + 1) * SPAN
        deadline = time.monotonic() + MAX_SECONDS
        try:
            with RespClient(self.address, timeout=30) as c:
                if c.command("SET", key, base) != "OK":
                    self._problem(f"client {i}: SET failed")
                    return
                last, n = base, 0
                while not self._stop.is_set() and time.monotonic() < deadline:
                    tags = [f"c{i}:{n + k}" for k in range(WINDOW)]
                    n += WINDOW
                    c.send(b"".join(encode_command("INCR", key) + encode_command("ECHO", t)
                                    for t in tags))
                    for tag in tags:
                        last = self._check_incr(i, c.read_reply(), last, base)
                        self._check_echo(i, c.read_reply(), tag)
                    with self.lock:
                        self.replies[i] += 2 * WINDOW
                if c.command("PING") != "PONG":
                    self._problem(f"client {i}: PING after the load failed")
        except (OSError, ConnectionClosed) as e:
            self._problem(f"client {i}: connection lost: {type(e).__name__}: {e}")

    def _error(self, i, reply):
        with self.lock:
            self.errors.append((i, reply.code))

    def _check_incr(self, i, reply, last, base):
        if isinstance(reply, RespError):
            self._error(i, reply)
            return last
        if not isinstance(reply, int) or not base < reply < base + SPAN:
            self._problem(f"client {i}: INCR reply {reply!r} is not in its range")
            return last
        if reply != last + 1:
            with self.lock:
                self.jumps += 1
        return reply

    def _check_echo(self, i, reply, tag):
        if isinstance(reply, RespError):
            self._error(i, reply)
        elif reply != tag.encode():
            self._problem(f"client {i}: ECHO {tag} answered {reply!r}")


def run_failover(topo, proxy, fault):
    load = TaggedLoad(proxy.address).start()
    try:
        # Every client past its first SET and a few windows in before the fault.
        t0 = time.monotonic()
        while (min(load.replies) < 4 * WINDOW or load.total() < CLIENTS * 4 * WINDOW) \
                and time.monotonic() - t0 < 20:
            time.sleep(0.05)
        assert min(load.replies) > 0, "a client never got going"
        before = load.total()
        old = topo.current_master()
        t_fault = fault(old)
        sw = wait_switch(topo, old.address, t_fault)
        at_switch = load.total()
        time.sleep(1.0)  # load runs on the new master
    finally:
        load.stop()
    m = assert_no_client_closed(proxy)
    codes = sorted({code for _, code in load.errors})
    print(f"\n{CLIENTS} pipelining clients: {load.total()} replies ({before} before the "
          f"fault, {load.total() - at_switch} after the switch to {sw.new}); "
          f"error replies {len(load.errors)} {codes}; INCR jumps {load.jumps}; problems "
          f"{len(load.problems)}; proxy error replies {error_metrics(m)}")
    assert not load.problems, load.problems[:5]
    assert load.total() - at_switch > CLIENTS * 2 * WINDOW, "no load after the switch"
    return load


@pytest.mark.parametrize("mode", ["shared", "session"])
def test_planned_failover_under_pipelined_load(make_topology, make_proxy, mode):  # noqa: F811
    topo = make_topology()
    # Session mode: each client's own connection drains at the pause, is replaced after.
    proxy = make_proxy(topo, pool={"mode": mode})
    load = run_failover(topo, proxy, lambda old: topo.planned_failover(sentinel=1))
    assert not load.errors, load.errors[:5]
    assert load.jumps == 0


def test_killed_master_under_pipelined_load(make_topology, make_proxy):  # noqa: F811
    topo = make_topology()
    proxy = make_proxy(topo)

    def kill(old):
        return topo.kill_master()[1]
    load = run_failover(topo, proxy, kill)
    # Only commands written to the dead master get an error; each client has at most one
    # window in flight.
    assert {code for _, code in load.errors} <= {"OUTCOMEUNKNOWN"}, load.errors[:5]
    assert len(load.errors) <= CLIENTS * 2 * WINDOW
