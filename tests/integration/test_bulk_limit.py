"""A request with a bulk string above limits.max_bulk_len (1 KiB here): that client gets
Redis's `-ERR Protocol error: invalid bulk length` and is closed; a bulk of exactly the
limit is accepted; other clients' pipelined traffic is untouched.
(TETHER_DIRECT=1: redis-server's proto-max-bulk-len cannot go below 1 MiB, so the same
test runs at 1 MiB there.)"""

from harness import encode_command
from traffic import PipelinedTraffic

LIMITS = {"service": {"limits": {"max_bulk_len": "1KiB"}}}
REFUSED = b"-ERR Protocol error: invalid bulk length\r\n"


def refused_bytes(target, *commands):
    with target.client(timeout=10) as c:
        try:
            c.send(b"".join(encode_command(*cmd) for cmd in commands))
        except (BrokenPipeError, ConnectionResetError):
            pass
        return c.read_raw_until_eof(timeout=10)


def test_bulk_above_limit_closes_only_that_client(make_target):
    target = make_target(LIMITS)
    limit = target.max_bulk_len
    before = _closed(target)
    traffic = PipelinedTraffic(target, clients=4).start()
    try:
        traffic.wait_rounds(5)
        with target.client() as ok:
            # Exactly at the limit: accepted (values and keys alike).
            assert ok.command("SET", "bulk:max", b"v" * limit) == "OK"
            assert ok.command("GET", "bulk:max") == b"v" * limit
            assert ok.command("SET", b"k" * limit, "1") == "OK"
            # One past the limit, alone and after a valid pipelined command.
            assert refused_bytes(target, ("SET", "bulk:over", b"x" * (limit + 1))) == REFUSED
            got = refused_bytes(target, ("PING",), ("SET", "bulk:over2", b"x" * (limit + 1)))
            assert got == b"+PONG\r\n" + REFUSED
            assert refused_bytes(target, ("GET", b"k" * (limit + 1))) == REFUSED
            traffic.wait_rounds(5)
            # The well-behaved client is still connected and nothing oversized got through.
            assert ok.command("EXISTS", "bulk:over", "bulk:over2") == 0
            assert ok.command("GET", "bulk:max") == b"v" * limit
    finally:
        traffic.stop()
    if target.is_proxy:
        assert _closed(target) - before == 3


def _closed(target):
    if not target.is_proxy:
        return 0
    m = target.metrics()
    return sum(m.get("redis_tether_client_connections_closed_total", service="main",
                     reason=r) or 0 for r in ("protocol_error", "request_too_large"))
