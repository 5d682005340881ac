"""A client that pipelines without reading: the proxy stops reading from it, its buffers
stay bounded (the proxy's own accounting), and other clients are unaffected.

The slow client sends 200,000 `GET bp:v` (a 1 KiB value) as fast as the socket takes them
and reads nothing; later it reads everything back (every reply must arrive, byte-exact, in
order). Config: max_pending 256, output_soft_limit 256 KiB.

Bound on redis_tether_client_buffer_bytes (in + out, summed over the service's clients;
the metric counts allocated capacity), checked from the first request to the last reply:
  out: reading pauses once the client's unsent replies reach output_soft_limit or its
       pending requests reach max_pending; requests already forwarded still get their
       replies after that, at most max_pending of them, so the content is at most
         output_soft_limit + max_pending * REPLY_BYTES = 256 KiB + 256 * 1,033 B = 526,592 B
       The metric counts allocated capacity, and replies go through two growable strings
       (one being written to the socket while the other fills; src/proxy/client_session.cpp),
       each allocated at most twice the content it ever held (doubling growth):
         out <= 2 * 2 * 526,592 B = 2,106,368 B
  in:  bytes read from the socket but not yet forwarded: one read buffer at most,
       READ_SLACK = 128 KiB (generous; a proxy that keeps reading while paused grows this
       without bound)
  others: the probe client's small requests and replies: OTHERS_SLACK = 16 KiB
  BOUND = 2,106,368 + 131,072 + 16,384 = 2,253,824 B (~2.15 MiB), against the ~206 MB of
  replies (200,000 x 1,033 B) a proxy without backpressure would end up buffering.
While paused (measured once the kernel socket buffers have filled): reads_paused stays 1,
the slow client's socket takes no more bytes, nothing more of its requests is forwarded,
and a probe client's SET/GET round trips stay prompt and correct.
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
BOUND = 2 * 2 * (SOFT_LIMIT + MAX_PENDING * REPLY_BYTES) + READ_SLACK + OTHERS_SLACK
CONFIG = {"service": {"limits": {"output_soft_limit": "256KiB", "max_pending": MAX_PENDING}}}


class NonReadingSender(threading.Thread):
    """Writes REQUESTS GETs without reading until told to drain (bounded by deadlines)."""

    def __init__(self, address):
        super().__init__(daemon=True)
        # Small kernel buffers on our side, so that the proxy's pause shows as a blocked
        # socket long before all requests are written (loopback autotuning would otherwise
        # absorb megabytes).
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        self.sock.settimeout(10)
        self.sock.connect(address)
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


class MetricsSampler(threading.Thread):
    """Scrapes (buffer bytes, reads paused) every 50 ms until stopped (at most 5 minutes)."""

    def __init__(self, target):
        super().__init__(daemon=True)
        self.target, self.samples, self.stop_event = target, [], threading.Event()

    def run(self):
        deadline = time.monotonic() + 300
        while not self.stop_event.is_set() and time.monotonic() < deadline:
            m = self.target.metrics()
            self.samples.append((buffer_bytes(m), m.require("redis_tether_client_reads_paused",
                                                            service="main")))
            time.sleep(0.05)

    def stop(self):
        self.stop_event.set()
        self.join(timeout=30)
        return self.samples


def test_non_reading_client_is_paused_and_bounded(make_target):
    target = make_target(CONFIG)
    sampler = MetricsSampler(target) if target.is_proxy else None
    with target.client() as probe:
        assert probe.command("SET", "bp:v", VALUE) == "OK"
        sender = NonReadingSender(target.host_port)
        if sampler:
            sampler.start()
        sender.start()
        try:
            if target.is_proxy:
                wait_until(lambda: target.metrics().require(
                    "redis_tether_client_reads_paused", service="main") == 1, 20,
                    what="redis_tether_client_reads_paused == 1")
            # Kernel buffers fill a moment after the first pause; measure from the steady state.
            forwarded_start, sent_start = wait_steady(target, sender)
            paused_from = len(sampler.samples) if sampler else 0
            latencies = []
            for i in range(100):  # ~2 s of other traffic while the slow client is stuck
                t0 = time.monotonic()
                assert probe.command("SET", f"bp:probe:{i}", i) == "OK"
                assert probe.command("GET", f"bp:probe:{i}") == str(i).encode()
                latencies.append(time.monotonic() - t0)
                time.sleep(0.02)
            paused_to = len(sampler.samples) if sampler else 0
            forwarded_delta = _forwarded(target) - forwarded_start
        finally:
            sender.drain.set()
        assert sender.done.wait(timeout=150), "the slow client never finished draining"
        samples = sampler.stop() if sampler else []
        assert sender.failure is None, sender.failure
        assert max(latencies) < 1.0, f"probe round trips up to {max(latencies):.3f}s"
        assert probe.is_alive()
    n = sender.sent // len(encode_command("GET", "bp:v"))
    assert n == REQUESTS and sender.received == n * REPLY_BYTES
    if target.is_proxy:
        peak = max(b for b, _ in samples)
        assert peak <= BOUND, f"client buffers reached {peak} B, bound {BOUND} B: {samples}"
        paused = samples[paused_from:paused_to]
        assert len(paused) >= 10 and all(p == 1 for _, p in paused), \
            f"reading resumed while nobody read: {paused}"
        # While paused, the slow client's requests are not forwarded (the probe's 200 are;
        # MAX_PENDING allows for one more read the kernel made room for), and its socket
        # stays blocked with most requests unsent. (Bytes the client manages to push into
        # kernel buffers are not a measure of the proxy's reading: the kernel sometimes makes
        # room by collapsing queued segments.)
        assert forwarded_delta <= 200 + MAX_PENDING, forwarded_delta
        assert sent_start < len(sender.data) // 2, f"{sent_start} of {len(sender.data)} B sent"
        wait_until(lambda: target.metrics().require(
            "redis_tether_client_reads_paused", service="main") == 0, 10, what="unpause")
        after = buffer_bytes(target.metrics())
        assert after <= BOUND, f"client buffers at {after} B after the drain"
        print(f"peak client buffers {peak} B (bound {BOUND} B), {after} B after the drain; "
              f"{sent_start} of {len(sender.data)} request bytes sent when blocked")


def wait_steady(target, sender, timeout=20.0):
    """Waits until the slow client's socket has stopped taking bytes (three equal samples
    100 ms apart); returns (forwarded commands, bytes sent) at that point."""
    history = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        history.append((_forwarded(target), sender.sent))
        if len(history) >= 3 and len(set(history[-3:])) == 1:
            return history[-1]
        time.sleep(0.1)
    raise AssertionError(f"the slow client never blocked: (forwarded, sent) {history[-5:]}")


def _forwarded(target):
    if not target.is_proxy:
        return 0
    return target.metrics().require("redis_tether_commands_forwarded_total", service="main")
