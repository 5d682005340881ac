"""Integration-test harness: real redis-server and redis-tether processes on loopback.

    test ──► Target (address the client dials)
               ├─ proxy mode (default): RedisServer ◄── Proxy (generated YAML, stderr log file)
               └─ direct mode (TETHER_DIRECT=1): RedisServer only, limits mirrored where Redis
                  has them; used to validate the tests' own logic against real Redis

Rules kept here so every test inherits them:
- everything listens on 127.0.0.1 (or a unix socket in a private temp dir);
- ports come from the kernel (bind to port 0), a start that loses a port race is retried;
- every process is started here and ended here by its PID (SIGTERM, then SIGKILL),
  even when the test fails; nothing else is ever signalled;
- every wait is bounded by a deadline.

Threading: a Target and its processes belong to the test that made them; RespClient
objects are used by one thread each.
"""

import atexit
import os
import shutil
import select
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

HOST = "127.0.0.1"
REDIS_SERVER = os.environ.get("REDIS_SERVER", "redis-server")
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0
# Lines that ASan, LSan and UBSan print when they find something (the ASan+UBSan CI build).
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "SUMMARY: AddressSanitizer", "SUMMARY: UndefinedBehaviorSanitizer")

# Processes started by this module and not yet reaped: the atexit handler ends any
# left behind (e.g. the test process is interrupted between start and fixture teardown).
_live_processes = {}


def direct_mode():
    """True when tests target redis-server directly (TETHER_DIRECT=1)."""
    return os.environ.get("TETHER_DIRECT", "") not in ("", "0")


def tether_bin():
    path = os.environ.get("TETHER_BIN")
    if not path:
        raise RuntimeError("TETHER_BIN is not set (ctest sets it to the built redis-tether)")
    return path


def free_port():
    """A loopback port the kernel just handed out; a later bind may still lose a race."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout, interval=0.02, what="condition"):
    """Polls predicate() until it returns a truthy value; raises TimeoutError after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# setpriv (util-linux, Essential in Debian) sets PR_SET_PDEATHSIG and execs the program:
# if the test process dies (e.g. killed by ctest's TIMEOUT) the kernel SIGKILLs the child,
# so nothing is orphaned. (All processes are started from the pytest main thread, whose
# exit is what the signal follows.)
_SETPRIV = shutil.which("setpriv")


def _start_process(argv, log_path, env=None):
    log = open(log_path, "ab")
    try:
        if _SETPRIV:
            argv = [_SETPRIV, "--pdeathsig", "KILL", "--", *argv]
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env)
    finally:
        log.close()
    _live_processes[proc.pid] = proc
    return proc


def stop_process(proc, sig=signal.SIGTERM, timeout=STOP_TIMEOUT_S):
    """Ends one process we started, by PID: `sig`, then SIGKILL after `timeout`. Idempotent."""
    if proc is None:
        return None
    if proc.poll() is None:
        try:
            os.kill(proc.pid, sig)
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=timeout)
        except ProcessLookupError:
            pass
    _live_processes.pop(proc.pid, None)
    return proc.returncode


@atexit.register
def _stop_leftovers():
    for proc in list(_live_processes.values()):
        stop_process(proc, signal.SIGKILL)


def _can_connect(addr):
    try:
        with _connect_socket(addr, 0.5):
            return True
    except OSError:
        return False


def _connect_socket(addr, timeout):
    if isinstance(addr, str):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(addr)
    except OSError:
        s.close()
        raise
    return s


def read_tail(path, max_lines=200):
    try:
        with open(path, "r", errors="replace") as f:
            lines = f.readlines()
    except OSError:
        return ""
    return "".join(lines[-max_lines:])


# ---------------------------------------------------------------------------------------
# redis-server


class RedisServer:
    """One redis-server on 127.0.0.1:port with its data dir under workdir.

    extra_args: additional `--name value` arguments (e.g. appendonly for persistence).
    The same object can be killed and started again on the same port and dir.
    """

    def __init__(self, workdir, extra_args=(), port=None):
        self.workdir = workdir
        self.dir = os.path.join(workdir, "redis-data")
        os.makedirs(self.dir, exist_ok=True)
        self.extra_args = list(extra_args)
        self.port = port
        self.proc = None
        self.log_path = os.path.join(workdir, "redis-server.log")
        self.starts = 0

    @property
    def address(self):
        return (HOST, self.port)

    def _argv(self):
        argv = [REDIS_SERVER, "--port", str(self.port), "--bind", HOST, "--save", "",
                "--appendonly", "no", "--dir", self.dir, "--daemonize", "no",
                "--protected-mode", "no", "--logfile", ""]
        return argv + self.extra_args

    def start(self):
        fixed_port = self.port is not None
        for _ in range(3):
            if not fixed_port:
                self.port = free_port()
            self.starts += 1
            self.proc = _start_process(self._argv(), self.log_path)
            try:
                wait_until(lambda: self.proc.poll() is not None or self._pong(),
                           START_TIMEOUT_S, what=f"redis-server on port {self.port}")
            except TimeoutError:
                stop_process(self.proc, signal.SIGKILL)
                raise
            if self.proc.poll() is None:
                return self
            stop_process(self.proc)
            if fixed_port:
                # The port was ours a moment ago (restart after kill): try again briefly.
                time.sleep(0.2)
        raise RuntimeError(f"redis-server did not start; log:\n{read_tail(self.log_path)}")

    def _pong(self):
        try:
            with RespClient(self.address, timeout=1.0) as c:
                return c.command("PING") == "PONG"
        except (OSError, ProtocolViolation):
            return False

    def kill(self, sig=signal.SIGKILL):
        """Ends redis-server abruptly (default SIGKILL) and reaps it."""
        stop_process(self.proc, sig)

    def stop(self):
        stop_process(self.proc)

    def client(self, timeout=10.0):
        return RespClient(self.address, timeout=timeout)


# ---------------------------------------------------------------------------------------
# redis-tether


def default_proxy_config(service_listen, upstream_port, admin_port):
    """The config every test starts from; tests override single keys with `overrides`."""
    return {
        "log_level": "info",
        "workers": 1,
        "admin": {"listen": f"{HOST}:{admin_port}"},
        "services": [{
            "name": "main",
            "listen": service_listen,
            "upstream": f"{HOST}:{upstream_port}",
            "pool": {"size": 2, "connect_timeout": "1s", "reconnect_min": "20ms",
                     "reconnect_max": "200ms"},
            "hold": {"timeout": "5s", "max_bytes": "16MiB"},
            "limits": {},
        }],
    }


def deep_merge(base, overrides):
    """Returns base with overrides applied; nested dicts merge, the services list merges
    into its first element (tests configure a single service)."""
    out = dict(base)
    for key, value in overrides.items():
        if key == "service":
            svc = deep_merge(out["services"][0], value)
            out["services"] = [svc] + out["services"][1:]
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def to_yaml(value, indent=0):
    """Minimal YAML emitter for the config shape (dicts, lists of dicts, scalars)."""
    pad = " " * indent
    lines = []
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, dict):
                lines.append(f"{pad}{k}:" + ("" if v else " {}"))
                if v:
                    lines.append(to_yaml(v, indent + 2))
            elif isinstance(v, list):
                lines.append(f"{pad}{k}:")
                for item in v:
                    body = to_yaml(item, indent + 4).splitlines()
                    lines.append(f"{pad}  - " + body[0].lstrip())
                    lines.extend(body[1:])
            else:
                lines.append(f"{pad}{k}: {_scalar(v)}")
    return "\n".join(lines)


def _scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


class Proxy:
    """One redis-tether process with a generated config; stderr goes to log_path."""

    def __init__(self, workdir, redis, overrides=None, unix_path=None):
        self.workdir = workdir
        self.redis = redis
        self.overrides = overrides or {}
        self.unix_path = unix_path
        self.config_path = os.path.join(workdir, "redis-tether.yaml")
        self.log_path = os.path.join(workdir, "redis-tether.log")
        self.proc = None
        self.port = None
        self.admin_port = None
        self.env = None  # extra environment variables for the process

    @property
    def address(self):
        return self.unix_path if self.unix_path else (HOST, self.port)

    @property
    def admin_address(self):
        return (HOST, self.admin_port)

    def write_config(self):
        listen = f"unix:{self.unix_path}" if self.unix_path else f"{HOST}:{self.port}"
        cfg = deep_merge(default_proxy_config(listen, self.redis.port, self.admin_port),
                         self.overrides)
        with open(self.config_path, "w") as f:
            f.write(to_yaml(cfg) + "\n")
        return cfg

    def start(self):
        for _ in range(3):
            self.port, self.admin_port = free_port(), free_port()
            self.write_config()
            env = dict(os.environ, **self.env) if self.env else None
            self.proc = _start_process([tether_bin(), "--config", self.config_path],
                                       self.log_path, env=env)
            try:
                wait_until(lambda: self.proc.poll() is not None or self._ready(),
                           START_TIMEOUT_S, what="redis-tether to listen")
            except TimeoutError:
                stop_process(self.proc, signal.SIGKILL)
                raise RuntimeError("redis-tether did not become ready; log:\n"
                                   + read_tail(self.log_path))
            if self.proc.poll() is None:
                return self
            code = self.proc.returncode
            stop_process(self.proc)
            if code != 1:  # 1 = runtime start failure such as a lost port race
                break
        raise RuntimeError(f"redis-tether exited with {self.proc.returncode}; log:\n"
                           + read_tail(self.log_path))

    def _ready(self):
        return _can_connect(self.admin_address) and _can_connect(self.address)

    def stop(self):
        return stop_process(self.proc)

    def metrics(self):
        return scrape_metrics(self.admin_address)

    def exit_problems(self, code):
        """A clean SIGTERM exit is 0 and leaves no sanitizer report in the log."""
        problems = []
        if code != 0:
            problems.append(f"redis-tether exited with {code} after SIGTERM")
        problems += [ln for ln in self.log().splitlines()
                     if any(mark in ln for mark in SANITIZER_MARKS)][:20]
        return problems

    def log(self):
        return read_tail(self.log_path, max_lines=100000)


# ---------------------------------------------------------------------------------------
# Target: what a test talks to


class Target:
    """What the client under test dials. In direct mode `proxy` is None and limits that
    Redis also has are configured on redis-server instead."""

    def __init__(self, workdir, overrides=None, unix=False, redis_args=()):
        self.workdir = workdir
        self.overrides = overrides or {}
        self.sockdir = tempfile.mkdtemp(prefix="tether-sock-") if unix else None
        self.unix_path = os.path.join(self.sockdir, "main.sock") if unix else None
        limits = self.overrides.get("service", {}).get("limits", {})
        self.max_bulk_len = _parse_size(limits.get("max_bulk_len", "512MiB"))
        self.proxy = None
        extra = list(redis_args)
        if direct_mode():
            extra += self._mirror_limits(limits)
        self.redis = RedisServer(workdir, extra_args=extra)

    def _mirror_limits(self, limits):
        args = []
        if "max_clients" in limits:
            args += ["--maxclients", str(limits["max_clients"])]
        if "max_bulk_len" in limits:
            # Redis refuses proto-max-bulk-len below 1 MiB.
            self.max_bulk_len = max(self.max_bulk_len, 1 << 20)
            args += ["--proto-max-bulk-len", str(self.max_bulk_len)]
        if self.unix_path:
            args += ["--unixsocket", self.unix_path, "--unixsocketperm",
                     str(self.overrides.get("service", {}).get("listen_mode", "0660"))]
        return args

    def start(self):
        self.redis.start()
        if not direct_mode():
            self.proxy = Proxy(self.workdir, self.redis, self.overrides, self.unix_path).start()
        elif self.unix_path:
            wait_until(lambda: _can_connect(self.unix_path), START_TIMEOUT_S, what="unix socket")
        return self

    @property
    def is_proxy(self):
        return self.proxy is not None

    @property
    def address(self):
        if self.proxy:
            return self.proxy.address
        return self.unix_path if self.unix_path else self.redis.address

    @property
    def host_port(self):
        assert not isinstance(self.address, str)
        return self.address

    def client(self, timeout=10.0):
        return RespClient(self.address, timeout=timeout)

    def metrics(self):
        assert self.proxy, "metrics exist only in proxy mode"
        return self.proxy.metrics()

    def stop(self):
        """Ends every process; returns problems seen in the proxy's exit (empty if none)."""
        problems = []
        if self.proxy:
            problems = self.proxy.exit_problems(self.proxy.stop())
        self.redis.stop()
        if self.sockdir:
            shutil.rmtree(self.sockdir, ignore_errors=True)
        return problems

    def logs(self):
        parts = []
        if self.proxy:
            parts.append(f"--- redis-tether log ({self.proxy.log_path}), last lines:\n"
                         + read_tail(self.proxy.log_path))
            parts.append(f"--- config ({self.proxy.config_path}):\n"
                         + read_tail(self.proxy.config_path))
        parts.append(f"--- redis-server log ({self.redis.log_path}), last lines:\n"
                     + read_tail(self.redis.log_path, 40))
        return "\n".join(parts)


_SIZE_UNITS = {"": 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}


def _parse_size(text):
    if isinstance(text, int):
        return text
    digits = text.rstrip("KMGiB")
    return int(digits) * _SIZE_UNITS[text[len(digits):]]


# ---------------------------------------------------------------------------------------
# Metrics


class Metrics:
    """Parsed Prometheus text exposition: {(name, frozenset(labels)): value}."""

    def __init__(self, text):
        self.text = text
        self.series = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            head, _, value = line.rpartition(" ")
            name, labels = head, {}
            if "{" in head:
                name, _, rest = head.partition("{")
                labels = _parse_labels(rest.rstrip("}"))
            self.series[(name, frozenset(labels.items()))] = float(value)

    def get(self, name, **labels):
        """Sum of the series of `name` whose labels include `labels`; None when none match."""
        want = set(labels.items())
        values = [v for (n, ls), v in self.series.items() if n == name and want <= ls]
        return sum(values) if values else None

    def require(self, name, **labels):
        value = self.get(name, **labels)
        assert value is not None, f"metric {name}{labels} missing from /metrics:\n{self.text}"
        return value


def _parse_labels(text):
    labels, i = {}, 0
    while i < len(text):
        eq = text.index("=", i)
        key = text[i:eq].strip().lstrip(",").strip()
        j, value = eq + 2, []
        while text[j] != '"':
            if text[j] == "\\":
                j += 1
            value.append(text[j])
            j += 1
        labels[key] = "".join(value)
        i = j + 1
    return labels


def scrape_metrics(admin_address, timeout=5.0):
    url = f"http://{admin_address[0]}:{admin_address[1]}/metrics"
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return Metrics(resp.read().decode())


# ---------------------------------------------------------------------------------------
# A small RESP client over a raw socket: sees exactly what the server sent, including
# error replies (returned as RespError values, never raised) and EOF.


class ProtocolViolation(Exception):
    """The server sent bytes that are not RESP."""


class ConnectionClosed(Exception):
    """EOF (or reset) where a reply was expected."""


def _key(k):
    return k.decode() if isinstance(k, bytes) else k


class Push(list):
    """A RESP3 push frame (>): never the reply to a command."""


class RespError(str):
    """An error reply; the string is the line without the leading '-'."""

    @property
    def code(self):
        return self.split(" ", 1)[0]


def encode_command(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, int):
            a = str(a)
        if isinstance(a, str):
            a = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class RespClient:
    def __init__(self, address, timeout=10.0):
        self.address = address
        self.sock = _connect_socket(address, timeout)
        self.timeout = timeout
        self.buf = bytearray()
        self.closed = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def send_command(self, *args):
        self.sock.sendall(encode_command(*args))

    def command(self, *args):
        self.send_command(*args)
        return self.read_reply()

    def _fill(self, timeout=None):
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        try:
            chunk = self.sock.recv(1 << 16)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.closed = True
            raise ConnectionClosed(f"connection closed; unread bytes {bytes(self.buf)!r}")
        self.buf += chunk

    def _line(self):
        while True:
            idx = self.buf.find(b"\r\n")
            if idx >= 0:
                line = bytes(self.buf[:idx])
                del self.buf[:idx + 2]
                return line
            self._fill()

    def _exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data = bytes(self.buf[:n])
        if self.buf[n:n + 2] != b"\r\n":
            raise ProtocolViolation(f"bulk not followed by CRLF: {bytes(self.buf[:n + 2])!r}")
        del self.buf[:n + 2]
        return data

    def read_reply(self):
        line = self._line()
        if not line:
            raise ProtocolViolation("empty reply line")
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RespError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read_reply() for _ in range(n)]
        # RESP3 (after HELLO 3); map keys that are strings come back as str.
        if kind == b">":
            return Push(self.read_reply() for _ in range(int(rest)))
        if kind == b"%":
            return {_key(self.read_reply()): self.read_reply() for _ in range(int(rest))}
        if kind == b"~":
            return [self.read_reply() for _ in range(int(rest))]
        if kind == b"_":
            return None
        if kind == b"#":
            return rest == b"t"
        if kind == b",":
            return float(rest)
        if kind == b"(":
            return int(rest)
        if kind in (b"=", b"!"):  # verbatim string (with its format prefix), blob error
            data = self._exact(int(rest))
            return data if kind == b"=" else RespError(data.decode(errors="replace"))
        raise ProtocolViolation(f"unexpected reply line {line!r}")

    def raw_type_of_next(self):
        """The type byte of the next reply, without consuming it."""
        while not self.buf:
            self._fill()
        return bytes(self.buf[:1])

    def read_raw_until_eof(self, timeout=5.0, limit=1 << 20):
        """Returns every byte the peer sends until it closes; raises TimeoutError if it
        does not close within `timeout`. Used for 'reply, then closed' checks."""
        deadline = time.monotonic() + timeout
        while not self.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"peer did not close within {timeout}s; got {bytes(self.buf)!r}")
            try:
                self._fill(timeout=left)
            except ConnectionClosed:
                break
            except socket.timeout:
                continue
            if len(self.buf) > limit:
                break
        data = bytes(self.buf)
        self.buf.clear()
        return data

    def has_data(self, timeout):
        """True if reply bytes are buffered or arrive (or EOF) within timeout seconds."""
        if self.buf:
            return True
        readable, _, _ = select.select([self.sock], [], [], timeout)
        return bool(readable)

    def is_alive(self):
        """PING round trip on this connection."""
        try:
            return self.command("PING") == "PONG"
        except (OSError, ConnectionClosed, ProtocolViolation):
            return False
