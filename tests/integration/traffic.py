"""Background clients that pipeline checked traffic while a test misbehaves elsewhere.

    PipelinedTraffic(target, clients=6)
      thread i: SET key_i 0, then rounds of { window x INCR key_i ; GET key_i } pipelined,
                every reply checked (INCR values consecutive, GET equal to the last INCR)
      .start() ... .wait_rounds(n) ... .stop() -> asserts nothing went wrong

Each thread is bounded (max_seconds, max_rounds) and stops by itself; stop() joins them and
checks that every connection still answers PING. Threading: one RespClient per thread; the
shared state is guarded by a lock.
"""

import threading
import time
import uuid

from harness import ConnectionClosed, encode_command


class PipelinedTraffic:
    def __init__(self, target, clients=6, window=32, max_seconds=60.0, max_rounds=100000):
        self.target = target
        self.clients = clients
        self.window = window
        self.max_seconds = max_seconds
        self.max_rounds = max_rounds
        self.run_id = uuid.uuid4().hex[:8]
        self.lock = threading.Lock()
        self.rounds = [0] * clients
        self.errors = []
        self.alive = [False] * clients
        self.max_round_trip = 0.0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                         for i in range(clients)]

    def start(self):
        for t in self._threads:
            t.start()
        return self

    def _fail(self, msg):
        with self.lock:
            self.errors.append(msg)

    def _run(self, i):
        key = f"bg:{self.run_id}:{i}"
        deadline = time.monotonic() + self.max_seconds
        try:
            with self.target.client(timeout=30) as c:
                if c.command("SET", key, 0) != "OK":
                    self._fail(f"client {i}: SET failed")
                    return
                value = 0
                for _ in range(self.max_rounds):
                    if self._stop.is_set() or time.monotonic() > deadline:
                        break
                    t0 = time.monotonic()
                    batch = [("INCR", key)] * self.window + [("GET", key)]
                    c.send(b"".join(encode_command(*cmd) for cmd in batch))
                    for _cmd in range(self.window):
                        value += 1
                        got = c.read_reply()
                        if got != value:
                            self._fail(f"client {i}: INCR expected {value}, got {got!r}")
                            return
                    got = c.read_reply()
                    if got != str(value).encode():
                        self._fail(f"client {i}: GET expected {value}, got {got!r}")
                        return
                    with self.lock:
                        self.rounds[i] += 1
                        self.max_round_trip = max(self.max_round_trip, time.monotonic() - t0)
                alive = c.command("PING") == "PONG"
                with self.lock:
                    self.alive[i] = alive
        except (OSError, ConnectionClosed) as e:
            self._fail(f"client {i}: connection failed: {type(e).__name__}: {e}")
        except Exception as e:  # noqa: BLE001 - any surprise is the test's failure
            self._fail(f"client {i}: {type(e).__name__}: {e}")

    def min_rounds(self):
        with self.lock:
            return min(self.rounds)

    def wait_rounds(self, extra, timeout=30.0):
        """Waits until every client has done `extra` more rounds than now (traffic flows)."""
        goal = [r + extra for r in self.rounds]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.errors:
                    break
                if all(r >= g for r, g in zip(self.rounds, goal)):
                    return
            time.sleep(0.01)
        raise AssertionError(f"background traffic stalled: rounds {self.rounds}, goal {goal}, "
                             f"errors {self.errors}")

    def stop(self):
        """Stops the threads and asserts every reply was right and every connection alive."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in self._threads), "background client stuck"
        assert not self.errors, "background clients saw errors:\n" + "\n".join(self.errors)
        assert all(self.alive), f"background connections not alive at the end: {self.alive}"
        assert all(r > 0 for r in self.rounds), f"a background client did no work: {self.rounds}"
        return self

