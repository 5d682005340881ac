"""AUTH with the proxy's own client password, and HELLO (2 answered, 3 on a dedicated
connection), through a real redis-tether in front of real redis-servers:

- with services[].client_password set, every command before AUTH gets Redis's -NOAUTH;
  a wrong password gets -WRONGPASS and the connection stays open (other clients are not
  affected); the right one lets the client in (redis-py with password=, redis-cli -a);
- HELLO 2 AUTH ... SETNAME ... authenticates and names the client;
- HELLO 3 makes every later reply RESP3 (HGETALL is a map `%`), until HELLO 2;
- across a failover (SIGKILL of the master, and SENTINEL FAILOVER), a RESP3 client's next
  command runs in RESP3 on the new master: the replacement connection got HELLO 3 first;
- a reload (SIGHUP) applies a changed password to the next AUTH;
- the password is in no log line and no admin page.

redis-py here is 4.x (no protocol=3), so RESP3 is spoken over a raw socket.
"""

import subprocess

import pytest
import redis

from harness import RespClient, RespError, wait_until
from test_reload import hup_and_wait
from test_secrets import admin_text
from sentinel_topology import make_topology  # noqa: F401  (pytest fixture)
from test_sentinel_failover import (  # noqa: F401  (make_proxy is a pytest fixture)
    assert_no_client_closed, error_metrics, make_proxy, wait_switch)

pytestmark = pytest.mark.proxy_only

PASSWORD = "cl1ent-pa55word-7f3a"
NOAUTH = "NOAUTH Authentication required."
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."


# RespClient reads every RESP3 type (maps as dicts with str keys).
Resp3Client = RespClient


@pytest.fixture
def proxy(make_target):
    """A proxy (and its redis-server) that requires PASSWORD from clients."""
    return make_target({"service": {"client_password": PASSWORD}})


def test_noauth_wrongpass_and_auth(proxy):
    with RespClient(proxy.address) as c, RespClient(proxy.address) as other:
        for cmd in (["PING"], ["SET", "auth:k", "v"], ["MULTI"], ["CLIENT", "SETNAME", "x"],
                    ["SHUTDOWN"], ["HELLO", "3"]):
            reply = c.command(*cmd)
            assert isinstance(reply, RespError), (cmd, reply)
            assert reply.code == "NOAUTH", (cmd, reply)
        assert c.command("AUTH", "wrong") == WRONGPASS
        assert c.command("AUTH", "default", "wrong") == WRONGPASS
        assert c.command("AUTH", PASSWORD + "x") == WRONGPASS
        assert c.command("GET", "auth:k") == NOAUTH  # still open, still not let in
        # Another client is unaffected, and the first one's SET never ran.
        assert other.command("AUTH", "default", PASSWORD) == "OK"
        assert other.command("EXISTS", "auth:k") == 0
        assert c.command("AUTH", PASSWORD) == "OK"
        assert c.command("SET", "auth:k", "v") == "OK"
        assert other.command("GET", "auth:k") == b"v"
        # RESET logs the client out again, as Redis does; QUIT works unauthenticated.
        assert c.command("RESET") == "RESET"
        assert c.command("GET", "auth:k") == NOAUTH
        assert c.command("QUIT") == "OK"
        assert c.read_raw_until_eof() == b""
    errors = error_metrics(proxy.metrics())
    assert errors.get("WRONGPASS") == 3, errors
    assert errors.get("NOAUTH") == 8, errors


def test_clients_with_the_password(proxy):
    host, port = proxy.host_port
    r = redis.Redis(host=host, port=port, password=PASSWORD)
    assert r.set("auth:py", "1") and r.get("auth:py") == b"1"
    # redis-py raises what it raises against Redis itself with requirepass.
    with pytest.raises(redis.exceptions.ResponseError, match="^WRONGPASS "):
        redis.Redis(host=host, port=port, password="nope").ping()
    with pytest.raises(redis.exceptions.AuthenticationError, match="Authentication required"):
        redis.Redis(host=host, port=port).ping()  # NOAUTH
    out = subprocess.run(["redis-cli", "-h", host, "-p", str(port), "--no-auth-warning",
                          "-a", PASSWORD, "GET", "auth:py"],
                         capture_output=True, timeout=10)
    assert out.stdout == b"1\n", out


def test_reload_applies_a_new_password_to_the_next_auth(proxy):
    with RespClient(proxy.address) as before:
        assert before.command("AUTH", PASSWORD) == "OK"
        proxy.proxy.overrides = {"service": {"client_password": "new-" + PASSWORD}}
        proxy.proxy.write_config()
        hup_and_wait(proxy.proxy, "reloaded")
        assert before.command("PING") == "PONG"  # still authenticated
        with RespClient(proxy.address) as after:
            assert after.command("AUTH", PASSWORD) == WRONGPASS
            assert after.command("AUTH", "new-" + PASSWORD) == "OK"
            assert after.command("PING") == "PONG"
        assert before.command("AUTH", PASSWORD) == WRONGPASS


def test_hello_2_auth_setname(proxy):
    with RespClient(proxy.address) as c:
        reply = c.command("HELLO", "2", "AUTH", "default", "bad", "SETNAME", "app")
        assert reply == WRONGPASS
        reply = c.command("HELLO", "2", "AUTH", "default", PASSWORD, "SETNAME", "app")
        fields = dict(zip(reply[::2], reply[1::2]))
        assert fields[b"proto"] == 2 and fields[b"server"] == b"redis", reply
        assert c.command("CLIENT", "GETNAME") == b"app"
        assert c.command("HELLO", "4") == "NOPROTO unsupported protocol version"
        assert c.command("PING") == "PONG"


def test_hello_3_replies_in_resp3_until_hello_2(proxy):
    with Resp3Client(proxy.address) as c:
        assert c.command("AUTH", PASSWORD) == "OK"
        assert c.command("HSET", "auth:h", "a", "1", "b", "2") == 2
        hello = c.command("HELLO", "3")
        assert isinstance(hello, dict) and hello["proto"] == 3, hello
        c.send_command("HGETALL", "auth:h")
        assert c.raw_type_of_next() == b"%"
        assert c.read_reply() == {"a": b"1", "b": b"2"}
        assert c.command("GET", "auth:missing") is None  # RESP3 null
        c.send_command("CLIENT", "GETNAME")
        assert c.raw_type_of_next() == b"_"
        c.read_reply()
        hello = c.command("HELLO", "2")
        assert isinstance(hello, list) and hello[hello.index(b"proto") + 1] == 2
        c.send_command("HGETALL", "auth:h")
        assert c.raw_type_of_next() == b"*"
        assert c.read_reply() == [b"a", b"1", b"b", b"2"]


# ---------------------------------------------------------------------------------------
# Across a failover (Sentinel topology)


def resp3_client(proxy):
    c = Resp3Client(proxy.address, timeout=30)
    assert c.command("AUTH", PASSWORD) == "OK"
    assert c.command("HELLO", "3")["proto"] == 3
    return c


def check_resp3_after(c, key, new):
    """The client's next commands run in RESP3 on the new master."""
    assert c.command("HSET", key, "f", "v") == 1
    c.send_command("HGETALL", key)
    assert c.raw_type_of_next() == b"%"
    assert c.read_reply() == {"f": b"v"}
    with new.client() as d:
        assert d.command("HGET", key, "f") == b"v"


@pytest.mark.parametrize("how", ["kill", "planned"])
def test_hello_3_across_a_failover(make_topology, make_proxy, how):  # noqa: F811
    topo = make_topology()
    proxy = make_proxy(topo, client_password=PASSWORD)
    with resp3_client(proxy) as c:
        old = topo.current_master()
        c.send_command("HGETALL", "auth:none")
        assert c.raw_type_of_next() == b"%"
        assert c.read_reply() == {}
        if how == "kill":
            old, t = topo.kill_master()
        else:
            t = topo.planned_failover(sentinel=1)
        sw = wait_switch(topo, old.address, t)
        new = topo.node_at(sw.new)
        wait_until(lambda: proxy.metrics().require("redis_tether_master_switches_total") >= 1,
                   10, what="the proxy to switch")
        check_resp3_after(c, f"auth:{how}", new)
    assert_no_client_closed(proxy)


def test_password_in_no_log_or_admin_page(proxy):
    with RespClient(proxy.address) as c:
        assert c.command("AUTH", "not-" + PASSWORD) == WRONGPASS
        assert c.command("AUTH", PASSWORD) == "OK"
        assert c.command("PING") == "PONG"
    pages = {path: admin_text(proxy.proxy, path) for path in ("/metrics", "/status", "/health")}
    assert "redis_tether_error_replies_total" in pages["/metrics"]
    assert proxy.proxy.stop() == 0
    pages["log"] = proxy.proxy.log()
    assert "event=" in pages["log"]
    leaks = [where for where, text in pages.items() if PASSWORD in text]
    assert not leaks, leaks
