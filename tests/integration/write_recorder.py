"""What the client saw: a python3-redis writer that records every command and every
connection event, and a check of the records against what a node holds afterwards.

    rec = WriteRecorder(("127.0.0.1", port), max_seconds=20).start()
      thread: every 2 ms (tick i): INCR <prefix>counter ; SET <prefix>k:<i> <i>
              one redis.Connection, used directly (no pool, no retry): a lost connection is
              recorded, and the next command reconnects explicitly and counts it
    ... inject faults ...
    rec.stop()
    v = rec.verify(new_master_addr, password)   -> Verification (see there)
    print(v.summary())

Records (rec.records, Record) per command: tick i, command, t_sent, t_done (time.monotonic()),
outcome:
    ok          a reply (value: int for INCR, 'OK' for SET)
    error       an error reply; value = its first word (READONLY, LOADING, OUTCOMEUNKNOWN...)
    disconnect  the connection died with the command sent: outcome unknown
    timeout     no reply within reply_timeout (then the connection is dropped: outcome unknown)
    not_sent    no connection could be made for it (value: the error)
Connection events (rec.conn_events, (t, kind, detail)): connect, reconnect, connect_failed,
disconnect (with a command in flight), eof_idle (closed by the server between commands).

Threading: the writer thread owns the connection and appends to records; read records and
call verify() after stop() (or take snapshot()).
"""

import collections
import threading
import time
from dataclasses import dataclass, field

import redis
from redis.connection import PythonParser

CHUNK = 1000  # keys per MGET in verify()


class _VerbatimErrorParser(PythonParser):
    """python3-redis strips the code of errors it knows (READONLY, LOADING, NOAUTH...) and
    turns `-ERR max number of clients reached` into a ConnectionError; the recorder wants
    every error reply as a ResponseError carrying the server's whole line."""

    def parse_error(self, response):
        return redis.ResponseError(response)


@dataclass(slots=True)
class Record:
    i: int
    command: str  # "INCR" | "SET"
    t_sent: float
    t_done: float
    outcome: str  # ok | error | disconnect | timeout | not_sent
    value: object  # reply, error code, or exception text


class WriteRecorder:
    """target: (host, port) or a unix socket path, or a callable returning one, asked at
    every (re)connect."""

    def __init__(self, target, password=None, interval=0.002, max_seconds=30.0,
                 max_count=None, reply_timeout=10.0, connect_timeout=1.0, key_prefix=""):
        self.target = target
        self.password = password
        self.interval = interval
        self.max_seconds = max_seconds
        self.max_count = max_count
        self.reply_timeout = reply_timeout
        self.connect_timeout = connect_timeout
        self.counter_key = f"{key_prefix}counter"
        self.key_prefix = f"{key_prefix}k:"
        self.records = []
        self.conn_events = []
        self.failure = None  # an unexpected exception in the writer thread
        self.ticks = 0
        self._lock = threading.Lock()
        self._conn = None
        self._connects = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="write-recorder")

    # -- control -------------------------------------------------------------------------

    def start(self):
        self._thread.start()
        return self

    def stop(self, timeout=None):
        """Stops the writer and joins it (bounded by the reply and connect timeouts)."""
        self._stop.set()
        self._thread.join(timeout or self.reply_timeout + self.connect_timeout + 5)
        assert not self._thread.is_alive(), "write recorder stuck"
        return self

    def join(self, timeout=None):
        """Waits for a bounded run (max_seconds / max_count) to end by itself."""
        self._thread.join(timeout or self.max_seconds + self.reply_timeout + 5)
        assert not self._thread.is_alive(), "write recorder did not finish"
        return self

    def wait_acked(self, n, timeout=10.0):
        """Waits until n commands got an ok reply (traffic flows)."""
        deadline = time.monotonic() + timeout
        while self.count("ok") < n:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise TimeoutError(f"write recorder: {self.count('ok')} of {n} acked; "
                                   f"{self.snapshot()[-3:]}")
            time.sleep(0.01)

    def snapshot(self):
        with self._lock:
            return list(self.records)

    def count(self, outcome):
        with self._lock:
            return sum(1 for r in self.records if r.outcome == outcome)

    def first_ack_after(self, t):
        """t_done of the first ok reply to a command sent at or after t, or None."""
        return min((r.t_done for r in self.snapshot() if r.outcome == "ok" and r.t_sent >= t),
                   default=None)

    # -- writer thread -------------------------------------------------------------------

    def _run(self):
        deadline = time.monotonic() + self.max_seconds
        next_tick = time.monotonic()
        i = 0
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                if self.max_count is not None and i >= self.max_count:
                    break
                delay = next_tick - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
                # Behind schedule (a stalled reply): carry on from now, never burst.
                next_tick = max(next_tick + self.interval, time.monotonic())
                self._one("INCR", i, self.counter_key)
                self._one("SET", i, f"{self.key_prefix}{i}", i)
                i += 1
                self.ticks = i
        except Exception as e:  # noqa: BLE001 - reported by verify(), never swallowed
            self.failure = f"{type(e).__name__}: {e}"
        finally:
            if self._conn is not None:
                self._conn.disconnect()

    def _event(self, kind, detail=""):
        with self._lock:
            self.conn_events.append((time.monotonic(), kind, detail))

    def _record(self, *fields):
        with self._lock:
            self.records.append(Record(*fields))

    def _connect(self):
        target = self.target() if callable(self.target) else self.target
        common = dict(password=self.password, parser_class=_VerbatimErrorParser,
                      socket_timeout=self.reply_timeout)
        if isinstance(target, str):
            conn = redis.UnixDomainSocketConnection(path=target, **common)
        else:
            conn = redis.Connection(host=target[0], port=target[1],
                                    socket_connect_timeout=self.connect_timeout, **common)
        try:
            conn.connect()
        except (redis.ConnectionError, redis.TimeoutError, OSError, redis.ResponseError) as e:
            conn.disconnect()
            self._event("connect_failed", f"{target}: {_first_line(e)}")
            return None
        self._connects += 1
        self._event("connect" if self._connects == 1 else "reconnect", str(target))
        return conn

    def _live_connection(self):
        """The connection, after checking the server did not close it while idle; makes
        a new one (recorded) when there is none. None when connecting failed."""
        if self._conn is not None:
            try:
                self._conn.can_read(timeout=0)  # EOF raises; stray data is a bug here
            except (redis.ConnectionError, OSError) as e:
                self._conn.disconnect()
                self._conn = None
                self._event("eof_idle", _first_line(e))
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def _one(self, command, i, *args):
        t_sent = time.monotonic()
        conn = self._live_connection()
        if conn is None:
            self._record(i, command, t_sent, time.monotonic(), "not_sent",
                         self.conn_events[-1][2])
            return
        t_sent = time.monotonic()
        try:
            conn.send_command(command, *args)
            reply = conn.read_response()
            outcome, value = "ok", (reply.decode() if isinstance(reply, bytes) else reply)
        except redis.ResponseError as e:
            outcome, value = "error", str(e).split(" ", 1)[0]
        except redis.TimeoutError as e:
            outcome, value = "timeout", _first_line(e)
        except (redis.ConnectionError, OSError) as e:
            outcome, value = "disconnect", _first_line(e)
        if outcome in ("timeout", "disconnect"):
            conn.disconnect()  # a late reply must never be read as the next command's
            self._conn = None
            self._event("disconnect", f"{outcome} during {command} {i}: {value}")
        self._record(i, command, t_sent, time.monotonic(), outcome, value)

    # -- afterwards ----------------------------------------------------------------------

    def verify(self, node_addr, password=None):
        """Reads every k:<i> and the counter from node_addr and compares them with what
        was acknowledged. Call after stop()/join()."""
        assert not self._thread.is_alive(), "verify() needs the writer stopped"
        ticks = max((r.i for r in self.records), default=-1) + 1
        client = redis.Redis(host=node_addr[0], port=node_addr[1], password=password,
                             socket_timeout=10)
        try:
            values = {}
            for start in range(0, ticks, CHUNK):
                idx = list(range(start, min(start + CHUNK, ticks)))
                for i, v in zip(idx, client.mget([f"{self.key_prefix}{i}" for i in idx])):
                    values[i] = v
            counter = client.get(self.counter_key)
        finally:
            client.close()
        v = analyze(self.records, values, None if counter is None else int(counter),
                    self.conn_events)
        v.node = tuple(node_addr)
        v.failure = self.failure
        return v


def _first_line(e):
    return str(e).splitlines()[0] if str(e) else type(e).__name__


@dataclass
class Verification:
    """What the client saw, checked against one node.

    missing_sets    SET records acknowledged OK whose key is absent (or different) there
    unacked_present SETs that got no OK (error / disconnect / timeout) yet are there
    incr_backwards  (record, drop): an INCR reply not above the previous acknowledged
                    one; drop = previous - this reply (0 = the same value twice). Each
                    return to a stale history counts once (like "went backwards N times")
    incr_stale      INCR replies not above the highest earlier reply (all replies that
                    came from a stale history)
    counter_deficit highest acknowledged INCR - the counter there (> 0: acknowledged
                    increments lost; < 0: increments with unknown outcome that ran)
    errors_by_code  error replies by first word; outcomes: records by outcome
    disconnects     connections lost with a command in flight or closed while idle
    reconnects      successful connects after the first; connect_failures likewise
    """
    commands: int = 0
    outcomes: collections.Counter = field(default_factory=collections.Counter)
    errors_by_code: collections.Counter = field(default_factory=collections.Counter)
    acked_sets: int = 0
    missing_sets: list = field(default_factory=list)
    unacked_present: int = 0
    acked_incrs: int = 0
    incr_backwards: list = field(default_factory=list)
    incr_stale: int = 0
    incr_max_acked: int | None = None
    counter_final: int | None = None
    counter_deficit: int = 0
    disconnects: int = 0
    reconnects: int = 0
    connect_failures: int = 0
    node: tuple | None = None
    conn_events: list = field(default_factory=list)
    failure: str | None = None

    @property
    def max_backwards_drop(self):
        return max((d for _, d in self.incr_backwards), default=0)

    def summary(self):
        return (f"commands {self.commands} {dict(self.outcomes)}; "
                f"errors {dict(self.errors_by_code)}; "
                f"SETs acked {self.acked_sets}, acked-but-missing {len(self.missing_sets)}, "
                f"unacked-but-present {self.unacked_present}; INCRs acked {self.acked_incrs}, "
                f"backwards {len(self.incr_backwards)} (max drop {self.max_backwards_drop}, "
                f"stale replies {self.incr_stale}), "
                f"max acked {self.incr_max_acked}, counter on node {self.counter_final} "
                f"(deficit {self.counter_deficit}); disconnects {self.disconnects}, "
                f"reconnects {self.reconnects}, connect failures {self.connect_failures}"
                + (f"; WRITER FAILED: {self.failure}" if self.failure else ""))


def analyze(records, values, counter_final, conn_events=()):
    """Pure check of records against a node's contents: values {tick: bytes or None} for
    k:<tick>, counter_final the node's counter (None if absent). Returns a Verification."""
    v = Verification(commands=len(records), counter_final=counter_final)
    highest = previous = None
    for r in records:
        v.outcomes[r.outcome] += 1
        if r.outcome == "error":
            v.errors_by_code[r.value] += 1
        if r.command == "SET":
            present = values.get(r.i) == str(r.i).encode()
            if r.outcome == "ok":
                v.acked_sets += 1
                if not present:
                    v.missing_sets.append(r)
            elif present:
                v.unacked_present += 1
        elif r.outcome == "ok":
            v.acked_incrs += 1
            if previous is not None and r.value <= previous:
                v.incr_backwards.append((r, previous - r.value))
            if highest is not None and r.value <= highest:
                v.incr_stale += 1
            previous = r.value
            highest = r.value if highest is None else max(highest, r.value)
    v.incr_max_acked = highest
    v.counter_deficit = (highest or 0) - (counter_final or 0)
    v.conn_events = list(conn_events)
    kinds = collections.Counter(kind for _, kind, _ in v.conn_events)
    v.disconnects = kinds["disconnect"] + kinds["eof_idle"]
    v.reconnects = kinds["reconnect"]
    v.connect_failures = kinds["connect_failed"]
    return v
