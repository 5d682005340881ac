"""SIGTERM drains (issue 5, item 5): the proxy stops accepting, reads no new request,
delivers every reply owed for the requests it had read, closes, and exits 0.

- A client has 1,000 pipelined commands in flight behind a DEBUG SLEEP on the upstream
  when SIGTERM arrives: it receives every reply, in order, then EOF; a new connection is
  refused meanwhile; the exit code is 0.
- Past drain_timeout what is still owed is dropped with the connection (logged), and the
  exit is still 0.
"""

import signal
import socket
import time

import pytest

from harness import HOST, ConnectionClosed, RespClient, encode_command, wait_until

pytestmark = pytest.mark.proxy_only

DEBUG = ("--enable-debug-command", "yes")
COUNT = 1000  # + DEBUG SLEEP: below limits.max_pending (1024), so all are read at once


def sigterm(proxy):
    proxy.proc.send_signal(signal.SIGTERM)


def refused(address):
    try:
        with socket.create_connection(address, timeout=1):
            return False
    except OSError:
        return True


def read_all(c, n):
    """Up to n replies, then whether the connection ended (EOF) after them."""
    replies = []
    try:
        while len(replies) < n:
            replies.append(c.read_reply())
        c.read_reply()
    except ConnectionClosed:
        return replies, True
    return replies, False


def test_sigterm_delivers_every_owed_reply_then_exits_0(make_target):
    target = make_target({"drain_timeout": "10s"}, redis_args=DEBUG)
    proxy = target.proxy
    with RespClient(proxy.address, timeout=20) as c:
        c.send(encode_command("DEBUG", "SLEEP", "1.5")
               + b"".join(encode_command("INCR", "drained") for _ in range(COUNT)))
        wait_until(lambda: (proxy.metrics().get("redis_tether_commands_forwarded_total") or 0)
                   >= COUNT + 1, 5, what="every command forwarded")
        t0 = time.monotonic()
        sigterm(proxy)
        wait_until(lambda: refused(proxy.address), 5, what="new connections refused")
        replies, eof = read_all(c, COUNT + 1)
        code = proxy.proc.wait(timeout=15)
        took = time.monotonic() - t0
    print(f"\ndrain: {len(replies)} of {COUNT + 1} replies after SIGTERM, then "
          f"{'EOF' if eof else 'no EOF'}; exit {code} after {took * 1000:.0f} ms")
    assert replies[0] == "OK"
    assert replies[1:] == list(range(1, COUNT + 1))
    assert eof and code == 0
    assert took > 0.5  # the replies were still owed at SIGTERM: the drain waited
    assert "event=stopping signal=SIGTERM" in proxy.log()
    assert "event=drain_timeout" not in proxy.log()
    assert target.redis.client().command("GET", "drained") == str(COUNT).encode()


def test_drain_timeout_bounds_the_wait(make_target):
    target = make_target({"drain_timeout": "300ms"}, redis_args=DEBUG)
    proxy = target.proxy
    with RespClient(proxy.address, timeout=20) as c:
        assert c.command("PING") == "PONG"
        # (Not pipelined with the PING: Redis would send PONG only after the sleep.)
        c.send(encode_command("DEBUG", "SLEEP", "3"))
        time.sleep(0.2)  # DEBUG SLEEP is on the upstream now
        t0 = time.monotonic()
        sigterm(proxy)
        replies, eof = read_all(c, 1)
        code = proxy.proc.wait(timeout=15)
        took = time.monotonic() - t0
    print(f"\ndrain timeout: {replies} then {'EOF' if eof else 'no EOF'} after "
          f"{took * 1000:.0f} ms; exit {code}")
    assert replies == [] and eof and code == 0
    assert took < 2.5  # the bound, not the 3 s sleep
    assert "event=drain_timeout" in proxy.log()
