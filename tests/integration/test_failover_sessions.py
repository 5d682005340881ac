"""Transactions and blocking commands across a Sentinel failover (issue 4, item 4), on the
fixture of test_sentinel_failover.py (1 master, 2 replicas, 3 Sentinels):

- a transaction open at the failover ends in -EXECABORT on EXEC, and none of it is on the
  new master (never half-applied);
- a WATCH across the failover (no MULTI yet) makes EXEC answer nil, as a watched key that
  changed does, and nothing of that transaction runs;
- a client blocked in BLPOP gets -OUTCOMEUNKNOWN (its dedicated connection to the old
  master closes when the failover begins) and can block again on the new master;
- every connection stays open, and transactions after the failover run normally;
- a RESP3 client with CLIENT TRACKING gets its invalidations, a null invalidation (forget
  everything) when the master is killed, and its tracking goes on on the new master, in
  both pool modes.
"""

import pytest

from harness import Push, RespClient, RespError, wait_until
from sentinel_topology import make_topology  # noqa: F401  (pytest fixture)
from test_sentinel_failover import (  # noqa: F401  (make_proxy is a pytest fixture)
    assert_no_client_closed, make_proxy, wait_switch)

pytestmark = pytest.mark.proxy_only


def wait_blocked(node, n=1):
    """Waits (bounded) until `node` has n clients blocked (INFO clients)."""
    def blocked():
        info = node.command("INFO", "clients")
        text = info.decode() if isinstance(info, bytes) else info
        return f"blocked_clients:{n}\r" in text
    wait_until(blocked, 10, what=f"{n} blocked client(s) on {node.name}")


@pytest.mark.parametrize("mode", ["shared", "session"])
def test_transaction_watch_and_blpop_across_a_failover(make_topology, make_proxy,  # noqa: F811
                                                       mode):
    topo = make_topology()
    proxy = make_proxy(topo, pool={"mode": mode})
    with RespClient(proxy.address, timeout=30) as txn, \
            RespClient(proxy.address, timeout=30) as watcher, \
            RespClient(proxy.address, timeout=30) as blocked:
        assert txn.command("MULTI") == "OK"
        assert txn.command("SET", "tx:a", "1") == "QUEUED"
        assert watcher.command("SET", "tx:w", "0") == "OK"
        assert watcher.command("WATCH", "tx:w") == "OK"
        old = topo.current_master()
        blocked.send_command("BLPOP", "tx:q", "0")
        wait_blocked(old)

        t_failover = topo.planned_failover(sentinel=1)
        sw = wait_switch(topo, old.address, t_failover)
        new = topo.node_at(sw.new)

        # The transaction: what is sent after the failover began is refused, EXEC aborts.
        queued = txn.command("SET", "tx:b", "2")
        assert isinstance(queued, RespError) and queued.code == "EXECABORT", queued
        ended = txn.command("EXEC")
        assert isinstance(ended, RespError) and ended.code == "EXECABORT", ended
        assert "none of it ran" in ended
        # WATCH across the failover: the keys are no longer watched, so EXEC answers nil
        # (a watched key changed) and the transaction does not run.
        assert watcher.command("MULTI") == "OK"
        assert watcher.command("SET", "tx:w", "lost") == "QUEUED"
        assert watcher.command("EXEC") is None
        # BLPOP: the outcome is unknown (its connection closed with it in flight).
        lost = blocked.read_reply()
        assert isinstance(lost, RespError) and lost.code == "OUTCOMEUNKNOWN", lost

        # Nothing of the transaction reached either node.
        with new.client() as c:
            assert c.command("EXISTS", "tx:a", "tx:b") == 0
            assert c.command("GET", "tx:w") == b"0"
        # After the failover everything works on the new master, on the same connections.
        assert txn.command("MULTI") == "OK"
        assert txn.command("INCR", "tx:n") == "QUEUED"
        assert txn.command("EXEC") == [1]
        assert watcher.command("WATCH", "tx:w") == "OK"
        assert watcher.command("MULTI") == "OK"
        assert watcher.command("SET", "tx:w", "1") == "QUEUED"
        assert watcher.command("EXEC") == ["OK"]
        blocked.send_command("BLPOP", "tx:q", "0")
        wait_blocked(new)
        with new.client() as c:
            assert c.command("RPUSH", "tx:q", "x") == 1
        assert blocked.read_reply() == [b"tx:q", b"x"]
        with new.client() as c:
            assert c.command("GET", "tx:n") == b"1"
            assert c.command("GET", "tx:w") == b"1"
        for c in (txn, watcher, blocked):
            assert c.command("PING") == "PONG"
    m = assert_no_client_closed(proxy)
    errors = {dict(ls).get("code"): int(v) for (n, ls), v in m.series.items()
              if n == "redis_tether_error_replies_total" and v}
    print(f"\nsessions across a planned failover to {sw.new}: proxy error replies {errors}")
    assert errors == {"EXECABORT": 2, "OUTCOMEUNKNOWN": 1}


@pytest.mark.parametrize("mode", ["shared", "session"])
def test_client_tracking_across_a_failover(make_topology, make_proxy, mode):  # noqa: F811
    """RESP3 client-side caching: invalidations arrive through the proxy; after the
    master is killed the client is told to forget everything (a null invalidation), and
    tracking goes on from the new master."""
    topo = make_topology()
    proxy = make_proxy(topo, pool={"mode": mode})
    with RespClient(proxy.address, timeout=30) as c:
        hello = c.command("HELLO", "3")
        assert hello["proto"] == 3, hello
        assert c.command("CLIENT", "TRACKING", "ON") == "OK"
        assert c.command("SET", "trk:k", "1") == "OK"
        assert c.command("GET", "trk:k") == b"1"
        old = topo.current_master()
        assert old.command("SET", "trk:k", "2") == "OK"
        assert c.read_reply() == Push([b"invalidate", [b"trk:k"]])
        assert c.command("GET", "trk:k") == b"2"
        old, t0 = topo.kill_master()
        sw = wait_switch(topo, old.address, t0)
        new = topo.node_at(sw.new)
        assert c.read_reply() == Push([b"invalidate", None])  # forget everything
        for _ in range(3):  # a GET in flight at the kill may be answered OUTCOMEUNKNOWN
            got = c.command("GET", "trk:k")
            if not isinstance(got, RespError):
                break
        assert got in (b"1", b"2"), got  # whatever the promoted replica had
        assert new.command("SET", "trk:k", "3") == "OK"
        assert c.read_reply() == Push([b"invalidate", [b"trk:k"]])
        assert not c.closed
    assert_no_client_closed(proxy)
