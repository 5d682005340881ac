"""SELECT through the proxy: the client moves to a pool of upstream connections that
selected its database, and keeps it across a Sentinel failover.

- SELECT then SET/GET land in that database (checked directly on redis-server);
- two clients in different databases pipelining at once each see only their own;
- a bad or out-of-range index gets Redis's own error and the connection stays;
- SELECT then MULTI/EXEC runs the transaction in that database; RESET goes back to 0;
- across a failover (SIGKILL of the master, and SENTINEL FAILOVER) a client that did
  SELECT 3 and CLIENT SETNAME keeps both: its writes land in database 3 of the new
  master, CLIENT GETNAME still answers its name, and it is never disconnected; in both
  pool modes (in session mode its own connection on the new master has both).

Everything but the failover also runs against redis-server itself (TETHER_DIRECT=1).
"""

import threading

import pytest
import redis

from harness import RespClient, RespError
from sentinel_topology import make_topology  # noqa: F401  (pytest fixture)
from test_sentinel_failover import (  # noqa: F401  (make_proxy is a pytest fixture)
    assert_no_client_closed, make_proxy, wait_switch)


def in_db(address, db, *args):
    """One command in database `db`, straight to the node at `address`."""
    with RespClient(address) as c:
        assert c.command("SELECT", str(db)) == "OK"
        return c.command(*args)


def test_select_then_set_get_land_in_that_database(target):
    host, port = target.host_port
    r = redis.Redis(host=host, port=port, db=3, socket_timeout=10)  # SELECT 3 on connect
    assert r.set("sel:k", "three")
    assert r.get("sel:k") == b"three"
    with target.client() as c:
        assert c.command("SET", "sel:k", "zero") == "OK"
        assert c.command("SELECT", "3") == "OK"
        assert c.command("GET", "sel:k") == b"three"
        assert c.command("SELECT", "0") == "OK"
        assert c.command("GET", "sel:k") == b"zero"
    assert in_db(target.redis.address, 3, "GET", "sel:k") == b"three"
    assert in_db(target.redis.address, 0, "GET", "sel:k") == b"zero"
    assert in_db(target.redis.address, 5, "EXISTS", "sel:k") == 0


def test_two_databases_pipelining_at_once_see_only_their_own(target):
    host, port = target.host_port
    rounds, batch = 20, 200
    failures = []

    def client(db):
        try:
            r = redis.Redis(host=host, port=port, db=db, socket_timeout=30)
            for n in range(rounds):
                pipe = r.pipeline(transaction=False)
                for i in range(batch):
                    pipe.set(f"sel:p:{i}", f"db{db}:{n}")
                    pipe.get(f"sel:p:{i}")
                got = pipe.execute()
                want = [True, f"db{db}:{n}".encode()] * batch
                if got != want:
                    failures.append((db, n, [g for g, w in zip(got, want) if g != w][:5]))
                    return
        except Exception as e:  # reported below, with the database
            failures.append((db, repr(e)))

    threads = [threading.Thread(target=client, args=(db,)) for db in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    assert not failures, failures
    for db in (1, 2):
        values = in_db(target.redis.address, db, "MGET", *[f"sel:p:{i}" for i in range(batch)])
        assert values == [f"db{db}:{rounds - 1}".encode()] * batch
    assert in_db(target.redis.address, 0, "EXISTS", "sel:p:0") == 0


def test_bad_index_gets_redis_error_and_the_connection_stays(target):
    with target.client() as c:
        assert c.command("SELECT", "2") == "OK"
        assert c.command("SET", "sel:bad", "two") == "OK"
        for arg, want in [("16", "ERR DB index is out of range"),
                          ("-1", "ERR DB index is out of range"),
                          ("x", "ERR value is not an integer or out of range"),
                          ("2147483648", "ERR value is out of range, value must between "
                                         "-2147483648 and 2147483647")]:
            got = c.command("SELECT", arg)
            assert isinstance(got, RespError) and got == want, (arg, got)
        got = c.command("SELECT")
        assert isinstance(got, RespError)
        assert got == "ERR wrong number of arguments for 'select' command"
        assert c.command("GET", "sel:bad") == b"two"  # still database 2, still connected
        assert c.command("PING") == "PONG"


def test_select_then_multi_exec_runs_in_that_database(target):
    host, port = target.host_port
    r = redis.Redis(host=host, port=port, db=4, socket_timeout=10)
    pipe = r.pipeline(transaction=True)
    pipe.set("sel:tx", "1").incr("sel:tx").get("sel:tx")
    assert pipe.execute() == [True, 2, b"2"]
    assert in_db(target.redis.address, 4, "GET", "sel:tx") == b"2"
    assert in_db(target.redis.address, 0, "EXISTS", "sel:tx") == 0
    # SELECT inside MULTI: queued, and the database changes when EXEC runs it.
    with target.client() as c:
        assert c.command("MULTI") == "OK"
        assert c.command("SELECT", "6") == "QUEUED"
        assert c.command("SET", "sel:in", "6") == "QUEUED"
        assert c.command("EXEC") == ["OK", "OK"]
        assert c.command("SET", "sel:after", "6") == "OK"
    assert in_db(target.redis.address, 6, "MGET", "sel:in", "sel:after") == [b"6", b"6"]


def test_reset_returns_to_database_zero(target):
    with target.client() as c:
        assert c.command("SELECT", "7") == "OK"
        assert c.command("SET", "sel:r", "7") == "OK"
        assert c.command("RESET") == "RESET"
        assert c.command("SET", "sel:r", "0") == "OK"
    assert in_db(target.redis.address, 7, "GET", "sel:r") == b"7"
    assert in_db(target.redis.address, 0, "GET", "sel:r") == b"0"


@pytest.mark.proxy_only
# Session mode once (its planned failover is covered with load in test_failover_load.py).
@pytest.mark.parametrize("how,mode", [("kill", "shared"), ("planned", "shared"),
                                      ("kill", "session")])
def test_database_and_name_survive_a_failover(make_topology, make_proxy, how, mode):  # noqa: F811
    topo = make_topology()
    proxy = make_proxy(topo, pool={"mode": mode})
    with RespClient(proxy.address, timeout=30) as c:
        assert c.command("SELECT", "3") == "OK"
        assert c.command("CLIENT", "SETNAME", "x") == "OK"
        assert c.command("SET", "sel:before", "1") == "OK"
        old = topo.current_master()
        with old.client() as d:
            assert d.command("SELECT", "3") == "OK"
            # Replication is in order: once this write is on both replicas, so is the
            # client's.
            assert d.command("SET", "sel:sync", "1") == "OK"
            assert d.command("WAIT", "2", "5000") == 2
        if how == "kill":
            old, t = topo.kill_master()
        else:
            t = topo.planned_failover(sentinel=1)
        sw = wait_switch(topo, old.address, t)
        new = topo.node_at(sw.new)
        # Sent after the switch: a write of the client, in database 3 of the new master.
        # (After a kill, a command may still have met the dead master's connection: the
        # client is told, and sends it again.)
        for _ in range(3):
            got = c.command("SET", "sel:after", "1")
            if got == "OK":
                break
            assert isinstance(got, RespError) and got.code == "OUTCOMEUNKNOWN", got
        assert got == "OK"
        assert c.command("CLIENT", "GETNAME") == b"x"
        assert c.command("GET", "sel:before") == b"1"
        if mode == "session":
            # The client's own connection to the new master carries its database and name.
            info = c.command("CLIENT", "INFO").decode()
            assert " name=x " in info and " db=3 " in info, info
            assert f" laddr={new.address[0]}:{new.address[1]} " in info, info
        with new.client() as d:
            assert d.command("SELECT", "3") == "OK"
            assert d.command("MGET", "sel:before", "sel:after") == [b"1", b"1"]
            assert d.command("SELECT", "0") == "OK"
            assert d.command("EXISTS", "sel:before", "sel:after") == 0
        assert not c.closed
    assert_no_client_closed(proxy)
