"""Malformed RESP from one client amid other clients' pipelined traffic.

The cases are those of Redis's tests/unit/protocol.tcl. The bad client first pipelines a
valid SET in the same write; it must get exactly `+OK` and then Redis's own
`-ERR Protocol error: ...` line, then EOF, and nothing else. The background clients must
see only correct replies and keep their connections (traffic.PipelinedTraffic).
Run with TETHER_DIRECT=1 the same test checks the expected words against redis-server."""

import pytest

from harness import encode_command
from traffic import PipelinedTraffic

BIG = 70 * 1024  # above the 64 KiB inline / header-line limit (PROTO_INLINE_MAX_SIZE)

# (id, bytes after the valid SET, Redis's words after "Protocol error: ")
CASES = [
    ("multibulk-length-out-of-range", b"*3000000000\r\n", "invalid multibulk length"),
    ("multibulk-length-not-a-number", b"*abc\r\n", "invalid multibulk length"),
    ("wrong-payload-header", b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n", "expected '$', got 'f'"),
    ("negative-bulk-length", b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n", "invalid bulk length"),
    ("bulk-length-out-of-range", b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n",
     "invalid bulk length"),
    ("bulk-length-not-a-number", b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n",
     "invalid bulk length"),
    ("multibulk-not-followed-by-bulk", b"*1\r\nfoo\r\n", "expected '$', got 'f'"),
    ("unbalanced-quotes", b'set """test-key""" test-value\r\nping\r\n',
     "unbalanced quotes in request"),
    ("too-big-inline", b"A" * BIG, "too big inline request"),
    ("too-big-multibulk-count", b"*" + b"1" * BIG, "too big mbulk count string"),
    ("too-big-bulk-count", b"*1\r\n$" + b"1" * BIG, "too big bulk count string"),
]


def send_malformed(target, case_id, payload):
    """Returns every byte the server sent back before closing."""
    with target.client(timeout=10) as c:
        data = encode_command("SET", f"proto:bad:{case_id}", "1") + payload
        try:
            c.send(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may close before it has read everything; replies still count
        return c.read_raw_until_eof(timeout=10)


@pytest.fixture
def proto_target(make_target):
    return make_target()


def test_malformed_requests_amid_pipelined_traffic(proto_target):
    target = proto_target
    before = _closed(target, "protocol_error")
    traffic = PipelinedTraffic(target, clients=6).start()
    try:
        traffic.wait_rounds(5)
        failures = []
        for case_id, payload, words in CASES:
            got = send_malformed(target, case_id, payload)
            want = b"+OK\r\n-ERR Protocol error: " + words.encode() + b"\r\n"
            if got != want:
                failures.append(f"{case_id}: expected {want!r} then EOF, got {got!r}")
            traffic.wait_rounds(2)  # the others keep going between cases
        assert not failures, "\n".join(failures)
    finally:
        traffic.stop()
    # The valid SET pipelined before the malformed bytes was executed.
    with target.client() as c:
        for case_id, _, _ in CASES:
            assert c.command("GET", f"proto:bad:{case_id}") == b"1", case_id
    if target.is_proxy:
        assert _closed(target, "protocol_error") - before == len(CASES)


def test_benign_oddities_are_not_errors(proto_target):
    # Redis ignores empty multibulks and empty inline lines; the proxy must not refuse them.
    with proto_target.client() as c:
        c.send(b"*0\r\n*-1\r\n\r\n\n   \r\nPING\r\n*1\r\n$4\r\nPING\r\n")
        assert c.read_reply() == "PONG"
        assert c.read_reply() == "PONG"
        assert c.is_alive()


def _closed(target, reason):
    if not target.is_proxy:
        return 0
    return target.metrics().get("redis_tether_client_connections_closed_total",
                                service="main", reason=reason) or 0
