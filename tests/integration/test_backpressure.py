"""A client that pipelines without reading: the proxy stops reading from it, its buffers
stay bounded (the proxy's own accounting), and other clients are unaffected.

The slow client sends 200,000 `GET bp:v` (a 1 KiB value) as fast as the socket takes them
and reads nothing. Config: max_pending 256, output_soft_limit 256 KiB.

Bound on redis_tether_client_buffer_bytes (in + out, all clients of the service):
  out: reading pauses once the client's unsent replies reach output_soft_limit or its
       pending requests reach max_pending; requests already forwarded still get their
       replies after that, at most max_pending of them:
         out <= output_soft_limit + max_pending * REPLY_BYTES = 256 KiB + 256 * 1033 B
  in:  bytes read from the socket but not yet forwarded: the tail of the last read, one
       read buffer at most: READ_SLACK = 128 KiB (generous; a proxy that keeps reading
       while paused grows this without bound)
  others: the probe client's few small requests and replies: OTHERS_SLACK = 16 KiB
  BOUND = 256 KiB + 264,448 B + 128 KiB + 16 KiB = 674,048 B (~658 KiB), against the
  ~206 MB of replies (200,000 x 1,033 B) a proxy without backpressure would buffer.
Afterwards the slow client reads everything: every reply arrives, byte-exact, in order.
"""

import select
import socket
import threading
import time

from harness import encode_command, wait_until

REQUESTS = 200_000
VALUE = bytes((i * 7 + 3) % 251 for i in range(1024))
REPLY = b"$1024\r\n" + VALUE + b"\r\n"
REPLY_BYTES = len(REPLY)  # 1,033
SOFT_LIMIT = 256 * 1024
MAX_PENDING = 256
READ_SLACK = 128 * 1024
OTHERS_SLACK = 16 * 1024
BOUND = SOFT_LIMIT + MAX_PENDING * REPLY_BYTES + READ_SLACK + OTHERS_SLACK
CONFIG = {"service": {"limits": {"output_soft_limit": "256KiB", "max_pending": MAX_PENDING}}}


class NonReadingSender(threading.Thread):
    """Writes REQUESTS GETs without reading until told to drain (bounded by deadlines)."""

    def __init__(self, address):
        super().__init__(daemon=True)
        self.sock = socket.create_connection(address, timeout=10)
        self.sock.setblocking(False)
        self.data = encode_command("GET", "bp:v") * REQUESTS
        self.sent = 0
        self.drain = threading.Event()
        self.received = 0
        self.failure = None
        self.done = threading.Event()

    def run(self):
        try:
            self._send_without_reading(deadline=time.monotonic() + 60)
            self._drain(deadline=time.monotonic() + 120)
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.failure = f"{type(e).__name__}: {e}"
        finally:
            self.done.set()

    def _send_without_reading(self, deadline):
        while self.sent < len(self.data) and not self.drain.is_set():
            if time.monotonic() > deadline:
                return
            try:
                self.sent += self.sock.send(self.data[self.sent:self.sent + (1 << 20)])
            except BlockingIOError:
                select.select([], [self.sock], [], 0.05)

    def _drain(self, deadline):
        self.drain.wait(timeout=60)
        expected_block = REPLY * 1024
        while True:
            total_requests = self.sent // len(encode_command("GET", "bp:v"))
            if self.sent == len(self.data) and self.received == total_requests * REPLY_BYTES:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"drain: {self.received} of {total_requests * REPLY_BYTES} "
                                   f"bytes after sending {self.sent} of {len(self.data)}")
            want_write = [self.sock] if self.sent < len(self.data) else []
            readable, writable, _ = select.select([self.sock], want_write, [], 1.0)
            if writable:
                try:
                    self.sent += self.sock.send(self.data[self.sent:self.sent + (1 << 20)])
                except BlockingIOError:
                    pass
            if readable:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    raise ConnectionError(f"EOF after {self.received} reply bytes")
                self._check(chunk, expected_block)

    def _check(self, chunk, block):
        pos = 0
        while pos < len(chunk):
            off = self.received % len(block)
            n = min(len(chunk) - pos, len(block) - off)
            if chunk[pos:pos + n] != block[off:off + n]:
                raise AssertionError(f"reply stream differs near byte {self.received}: "
                                     f"{chunk[pos:pos + 64]!r}")
            pos += n
            self.received += n


def buffer_bytes(m):
    return sum(m.require("redis_tether_client_buffer_bytes", service="main", direction=d)
               for d in ("in", "out"))


def test_non_reading_client_is_paused_and_bounded(make_target):
    target = make_target(CONFIG)
    with target.client() as probe:
        assert probe.command("SET", "bp:v", VALUE) == "OK"
        sender = NonReadingSender(target.host_port)
        sender.start()
        try:
            samples = []
            if target.is_proxy:
                wait_until(lambda: target.metrics().require(
                    "redis_tether_client_reads_paused", service="main") == 1, 20,
                    what="redis_tether_client_reads_paused == 1")
            latencies = []
            forwarded_start = _forwarded(target)
            for i in range(100):  # ~2 s of other traffic while the slow client is stuck
                t0 = time.monotonic()
                assert probe.command("SET", f"bp:probe:{i}", i) == "OK"
                assert probe.command("GET", f"bp:probe:{i}") == str(i).encode()
                latencies.append(time.monotonic() - t0)
                if target.is_proxy:
                    m = target.metrics()
                    samples.append((buffer_bytes(m),
                                    m.require("redis_tether_client_reads_paused", service="main")))
                time.sleep(0.02)
            forwarded_delta = _forwarded(target) - forwarded_start
        finally:
            sender.drain.set()
        assert sender.done.wait(timeout=150), "the slow client never finished draining"
        assert sender.failure is None, sender.failure
        assert max(latencies) < 1.0, f"probe round trips up to {max(latencies):.3f}s"
        assert probe.is_alive()
    n = sender.sent // len(encode_command("GET", "bp:v"))
    assert n == REQUESTS and sender.received == n * REPLY_BYTES
    if target.is_proxy:
        peak = max(b for b, _ in samples)
        assert peak <= BOUND, f"client buffers reached {peak} B, bound {BOUND} B: {samples}"
        assert all(p == 1 for _, p in samples), f"reading resumed while nobody read: {samples}"
        # While paused, the slow client's requests are not forwarded (the probe's 200 are).
        assert forwarded_delta <= 200 + MAX_PENDING, forwarded_delta
        wait_until(lambda: target.metrics().require(
            "redis_tether_client_reads_paused", service="main") == 0, 10, what="unpause")
        wait_until(lambda: buffer_bytes(target.metrics()) < OTHERS_SLACK, 10,
                   what="client buffers to empty")


def _forwarded(target):
    if not target.is_proxy:
        return 0
    return target.metrics().require("redis_tether_commands_forwarded_total", service="main")
