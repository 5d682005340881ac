"""Pub/sub through the proxy: SUBSCRIBE, PSUBSCRIBE and SSUBSCRIBE pin the client to a
dedicated upstream connection in relay mode while it has a subscription.

- every kind receives what is published through the proxy and directly on the master,
  with python3-redis and raw RESP; the bytes are Redis's own;
- after its last UNSUBSCRIBE the same connection runs normal commands again;
- two subscribers and a pipelining client at once are each unaffected;
- across a real failover (SIGKILL of the master, and SENTINEL FAILOVER) the subscriber
  stays connected, is re-subscribed on the new master, receives what is published there
  after the switch (through the proxy and directly), and never gets a confirmation twice;
- MONITOR (relay mode too) goes on from the new master after a SIGKILL failover, and
  RESET ends it;
- past pool.max_dedicated SUBSCRIBE gets -DEDICATEDFULL; a subscriber that cannot be
  re-subscribed within hold.timeout is closed (and counted), nobody else is.
"""

import threading
import time

import pytest
import redis

from harness import RespClient, RespError, wait_until
from sentinel_topology import make_topology  # noqa: F401  (pytest fixture)
from test_sentinel_failover import (  # noqa: F401  (make_proxy is a pytest fixture)
    make_proxy, wait_switch)

REPLY_S = 5.0


def conf(kind, name, count):
    return [kind.encode(), None if name is None else name.encode(), count]


def msg(channel, data):
    return [b"message", channel.encode(), data.encode()]


def expect(client, *frames):
    for want in frames:
        got = client.read_reply()
        assert got == want, f"expected {want!r}, got {got!r}"


def assert_nothing_more(client, wait=0.3):
    assert not client.has_data(wait), f"unexpected bytes: {bytes(client.buf)!r}"


def py_client(address, **kw):
    host, port = address
    return redis.Redis(host=host, port=port, socket_timeout=10, **kw)


def next_message(pubsub, timeout=REPLY_S):
    """The next message (not a confirmation) python3-redis hands over, within timeout."""
    return wait_until(lambda: pubsub.get_message(ignore_subscribe_messages=True, timeout=0.05),
                      timeout, what="a pub/sub message")


def numsub(node_command, channel, sub="NUMSUB"):
    reply = node_command("PUBSUB", sub, channel)
    return int(reply[1])


def test_every_kind_receives_through_the_proxy_and_direct(target):
    direct = target.redis.client()
    with RespClient(target.address) as sub, RespClient(target.address) as pub:
        sub.send_command("SUBSCRIBE", "ch")
        sub.send_command("PSUBSCRIBE", "news.*")
        sub.send_command("SSUBSCRIBE", "shard")
        expect(sub, conf("subscribe", "ch", 1), conf("psubscribe", "news.*", 2),
               conf("ssubscribe", "shard", 1))
        assert pub.command("PUBLISH", "ch", "via-proxy") == 1
        assert direct.command("PUBLISH", "ch", "direct") == 1
        assert pub.command("PUBLISH", "news.today", "p") == 1
        assert pub.command("SPUBLISH", "shard", "s1") == 1
        assert direct.command("SPUBLISH", "shard", "s2") == 1
        expect(sub, msg("ch", "via-proxy"), msg("ch", "direct"),
               [b"pmessage", b"news.*", b"news.today", b"p"],
               [b"smessage", b"shard", b"s1"], [b"smessage", b"shard", b"s2"])
        # PUBSUB stays on the shared path and sees the subscriber.
        assert pub.command("PUBSUB", "NUMSUB", "ch") == [b"ch", 1]
        # Redis's own answers while subscribed.
        sub.send_command("PING")
        sub.send_command("GET", "k")
        assert sub.read_reply() == [b"pong", b""]
        err = sub.read_reply()
        assert isinstance(err, RespError) and "only (P|S)SUBSCRIBE" in err, err
        # Unsubscribed from everything: normal commands on the same connection.
        sub.send_command("UNSUBSCRIBE")
        sub.send_command("PUNSUBSCRIBE")
        sub.send_command("SUNSUBSCRIBE")
        expect(sub, conf("unsubscribe", "ch", 1), conf("punsubscribe", "news.*", 0),
               conf("sunsubscribe", "shard", 0))
        assert sub.command("SET", "k", "v") == "OK"
        assert sub.command("GET", "k") == b"v"
        assert pub.command("PUBLISH", "ch", "nobody") == 0
        assert_nothing_more(sub)
    if target.is_proxy:
        # The 2 shared connections and the 2 warm dedicated ones (pool.dedicated_warm):
        # the subscriber's own is gone.
        wait_until(lambda: target.metrics().get("redis_tether_upstream_connections",
                                                 state="ready") == 4,
                   REPLY_S, what="the dedicated connection released")


def test_python_redis_pubsub(target):
    r = py_client(target.host_port)
    p = r.pubsub()
    p.subscribe("alpha")
    p.psubscribe("beta.*")
    assert next(m for m in iter(lambda: p.get_message(timeout=1), None))["type"] == "subscribe"
    assert r.publish("alpha", "one") == 1
    assert r.publish("beta.x", "two") == 1
    m1, m2 = next_message(p), next_message(p)
    assert (m1["type"], m1["channel"], m1["data"]) == ("message", b"alpha", b"one")
    assert (m2["type"], m2["pattern"], m2["data"]) == ("pmessage", b"beta.*", b"two")
    p.unsubscribe()
    p.punsubscribe()
    p.close()
    assert r.set("after", "1") and r.get("after") == b"1"


def test_two_subscribers_and_a_pipelining_client(target):
    direct = target.redis.client()
    n = 300
    with RespClient(target.address) as s1, RespClient(target.address) as s2:
        s1.send_command("SUBSCRIBE", "one")
        s2.send_command("PSUBSCRIBE", "t*")
        expect(s1, conf("subscribe", "one", 1))
        expect(s2, conf("psubscribe", "t*", 1))
        errors = []

        def pipeline():
            try:
                r = py_client(target.host_port)
                for round_ in range(5):
                    pipe = r.pipeline(transaction=False)
                    for i in range(n):
                        pipe.set(f"pk{i}", f"{round_}-{i}")
                        pipe.get(f"pk{i}")
                    got = pipe.execute()
                    assert got[1::2] == [f"{round_}-{i}".encode() for i in range(n)]
            except Exception as e:  # reported below, in the test's thread
                errors.append(e)

        t = threading.Thread(target=pipeline)
        t.start()
        for i in range(50):
            assert direct.command("PUBLISH", "one", f"m{i}") == 1
            assert direct.command("PUBLISH", "two", f"t{i}") == 1
        t.join(60)
        assert not t.is_alive() and not errors, errors
        expect(s1, *[msg("one", f"m{i}") for i in range(50)])
        expect(s2, *[[b"pmessage", b"t*", b"two", f"t{i}".encode()] for i in range(50)])
        assert_nothing_more(s1)
        assert_nothing_more(s2)


@pytest.mark.proxy_only
def test_dedicated_full(make_target):
    target = make_target({"service": {"pool": {"max_dedicated": 1}}})
    with RespClient(target.address) as s1, RespClient(target.address) as s2:
        assert s1.command("SUBSCRIBE", "a") == conf("subscribe", "a", 1)
        err = s2.command("SUBSCRIBE", "a")
        assert isinstance(err, RespError) and err.code == "DEDICATEDFULL", err
        assert s2.command("PING") == "PONG"  # still connected, on the shared path
        assert s1.command("UNSUBSCRIBE") == conf("unsubscribe", "a", 0)
        # The first one's connection is given back: the second may subscribe now.
        wait_until(lambda: s2.command("SUBSCRIBE", "b") == conf("subscribe", "b", 1), REPLY_S,
                   what="a dedicated connection free again")


@pytest.mark.proxy_only
def test_subscriber_that_cannot_be_resubscribed_is_closed(make_target):
    target = make_target({"service": {"hold": {"timeout": "300ms"}}})
    with RespClient(target.address) as sub, RespClient(target.address) as other:
        assert sub.command("SUBSCRIBE", "a") == conf("subscribe", "a", 1)
        assert other.command("PING") == "PONG"
        target.redis.kill()
        # No master within hold.timeout: closed, rather than left waiting for messages
        # that never come; its client library reconnects and subscribes again.
        assert sub.read_raw_until_eof(timeout=10) == b""
        m = target.metrics()
        assert m.get("redis_tether_client_connections_closed_total",
                     reason="resubscribe_failed") == 1
        target.redis.start()
        wait_until(lambda: other.command("PING") == "PONG", 10, what="PING after the restart")


@pytest.mark.proxy_only
# Session mode once: its re-subscription is the same relay path, on a planned failover.
@pytest.mark.parametrize("how,mode", [("sigkill", "shared"), ("sentinel_failover", "shared"),
                                      ("sentinel_failover", "session")])
def test_subscriber_across_a_failover(make_topology, make_proxy, how, mode):  # noqa: F811
    topo = make_topology()
    proxy = make_proxy(topo, pool={"mode": mode})
    old = topo.current_master()
    r = py_client(proxy.address)
    p = r.pubsub()
    p.subscribe("snake")
    assert p.get_message(timeout=REPLY_S)["type"] == "subscribe"
    with RespClient(proxy.address, timeout=30) as sub, RespClient(proxy.address, timeout=30) as pub:
        sub.send_command("SUBSCRIBE", "a")
        sub.send_command("PSUBSCRIBE", "p*")
        sub.send_command("SSUBSCRIBE", "s")
        expect(sub, conf("subscribe", "a", 1), conf("psubscribe", "p*", 2),
               conf("ssubscribe", "s", 1))
        if how == "sigkill":
            _, t0 = topo.kill_master()
        else:
            t0 = topo.planned_failover(sentinel=1)
        # Sent while the failover goes on: confirmed once, whenever it reaches a master.
        sub.send_command("SUBSCRIBE", "late")
        sw = wait_switch(topo, old.address, t0)
        new = topo.node_at(sw.new)
        # Re-subscribed on the new master (both subscribers).
        wait_until(lambda: numsub(new.command, "a") == 1 and numsub(new.command, "snake") == 1
                   and numsub(new.command, "s", "SHARDNUMSUB") == 1
                   and new.command("PUBSUB", "NUMPAT") == 1, 20,
                   what="the subscriptions on the new master")
        expect(sub, conf("subscribe", "late", 3))
        assert pub.command("PUBLISH", "a", "via-proxy") == 1
        assert new.command("PUBLISH", "a", "direct") == 1
        assert new.command("PUBLISH", "late", "late-direct") == 1
        assert pub.command("PUBLISH", "pq", "pattern") == 1
        assert new.command("SPUBLISH", "s", "shard") == 1
        assert pub.command("PUBLISH", "snake", "to-python") == 1
        expect(sub, msg("a", "via-proxy"), msg("a", "direct"), msg("late", "late-direct"),
               [b"pmessage", b"p*", b"pq", b"pattern"], [b"smessage", b"s", b"shard"])
        # No confirmation came twice, and the connection is the same one.
        assert_nothing_more(sub)
        m = next_message(p)
        assert (m["channel"], m["data"]) == (b"snake", b"to-python")
        assert sub.command("UNSUBSCRIBE", "a") == conf("unsubscribe", "a", 2)
    p.close()
    metrics = proxy.metrics()
    # Both subscribers (more if Sentinel failed over twice).
    assert metrics.get("redis_tether_subscribers_resubscribed_total") >= 2
    closed = {dict(ls).get("reason"): v for (n, ls), v in metrics.series.items()
              if n == "redis_tether_client_connections_closed_total" and v}
    assert not closed, closed


def read_feed_until(client, needle, limit=10.0):
    """MONITOR lines read until one contains `needle` (bounded); returns them all."""
    lines = []
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if not client.has_data(0.2):
            continue
        line = client.read_reply()
        lines.append(line)
        if needle in str(line):
            return lines
    raise AssertionError(f"no MONITOR line with {needle!r} within {limit}s; got {lines[-5:]!r}")


@pytest.mark.proxy_only
def test_monitor_feed_goes_on_after_a_failover(make_topology, make_proxy):  # noqa: F811
    topo = make_topology()
    proxy = make_proxy(topo)
    with RespClient(proxy.address, timeout=30) as mon, RespClient(proxy.address, timeout=30) as c:
        assert mon.command("MONITOR") == "OK"
        assert c.command("SET", "mon:before", "1") == "OK"
        read_feed_until(mon, '"mon:before"')
        old, t0 = topo.kill_master()
        sw = wait_switch(topo, old.address, t0)
        new = topo.node_at(sw.new)
        # The feed now comes from the new master: a write sent there directly shows.
        wait_until(lambda: "cmd=monitor" in new.command("CLIENT", "LIST").decode(), 20,
                   what="MONITOR on the new master")
        assert new.command("SET", "mon:direct", "2") == "OK"
        read_feed_until(mon, '"mon:direct"')
        for _ in range(3):  # a write in flight at the kill may be answered OUTCOMEUNKNOWN
            if c.command("SET", "mon:after", "3") == "OK":
                break
        read_feed_until(mon, '"mon:after"')
        # RESET ends the feed; the client is an ordinary one again.
        mon.send_command("RESET")
        wait_until(lambda: mon.read_reply() == "RESET", 10, what="+RESET after the feed")
        assert mon.command("GET", "mon:after") == b"3"
        assert not mon.closed and not c.closed
