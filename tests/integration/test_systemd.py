"""systemd integration: the unit files pass `systemd-analyze verify` and `security`
(exposure at most 2.0); sockets passed by socket activation are served, across a
restart too; sd_notify sends READY, STATUS, repeated WATCHDOG and STOPPING.

No systemd needs to run here: systemd-analyze works on unit files offline,
systemd-socket-activate passes sockets the way systemd does, and the notification socket
is the test's own datagram socket.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

import harness
from harness import HOST, RedisServer, RespClient, free_port, read_tail, wait_until

pytestmark = pytest.mark.proxy_only

UNITS_DIR = os.path.join(os.environ.get("TETHER_SOURCE_DIR", ""), "systemd")
MAX_EXPOSURE = 2.0
SETPRIV = shutil.which("setpriv")


# ---------------------------------------------------------------------------------------
# unit files


@pytest.fixture
def units(tmp_path):
    """The unit files copied to a temp dir, ExecStart= pointing at the built binary (the
    packaged path /usr/bin/redis-tether does not exist here and verify checks it)."""
    for name in ("redis-tether.service", "redis-tether.socket"):
        text = open(os.path.join(UNITS_DIR, name)).read()
        text = text.replace("ExecStart=/usr/bin/redis-tether ",
                            f"ExecStart={harness.tether_bin()} ")
        (tmp_path / name).write_text(text)
    return tmp_path


def test_units_verify_clean(units):
    service = (units / "redis-tether.service").read_text()
    assert f"ExecStart={harness.tether_bin()} --config" in service
    out = subprocess.run(["systemd-analyze", "verify", "--man=no",
                          str(units / "redis-tether.service"), str(units / "redis-tether.socket")],
                         capture_output=True, text=True, timeout=60, cwd=units)
    assert out.returncode == 0 and out.stderr == "" and out.stdout == "", out


def test_service_exposure_at_most_2(units):
    out = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager",
                          str(units / "redis-tether.service")],
                         capture_output=True, text=True, timeout=60, cwd=units)
    assert out.returncode == 0, out
    m = re.search(r"Overall exposure level for redis-tether\.service: (\d+\.\d+)", out.stdout)
    assert m, out.stdout
    print(f"exposure {m.group(1)}")
    assert float(m.group(1)) <= MAX_EXPOSURE, out.stdout


def test_unit_settings(units):
    service = (units / "redis-tether.service").read_text()
    for line in ("Type=notify", "User=redis-tether", "Restart=on-failure",
                 "RestartPreventExitStatus=2"):
        assert f"\n{line}\n" in service
    assert re.search(r"\nWatchdogSec=\d+s\n", service)
    assert "\nExecReload=/bin/kill -HUP $MAINPID\n" in service
    socket_unit = (units / "redis-tether.socket").read_text()
    assert "\nFileDescriptorName=main\n" in socket_unit  # the example config's service
    assert "\nListenStream=127.0.0.1:6379\n" in socket_unit


def test_sysusers_creates_the_service_user(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    out = subprocess.run(["systemd-sysusers", f"--root={root}",
                          os.path.join(UNITS_DIR, "redis-tether.sysusers")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out
    passwd = (root / "etc" / "passwd").read_text()
    assert re.search(r"^redis-tether:x:\d+:\d+:[^:]*:/nonexistent:/usr/sbin/nologin$", passwd,
                     re.M), passwd
    assert re.search(r"^redis-tether:x:\d+:", (root / "etc" / "group").read_text(), re.M)


# ---------------------------------------------------------------------------------------
# processes


@pytest.fixture
def procs():
    """Starts processes like harness does (PDEATHSIG, by PID) and stops them at teardown."""
    started, logs = [], []

    def spawn(argv, log_path, env=None, stdin=subprocess.DEVNULL):
        logs.append(log_path)
        if SETPRIV:
            argv = [SETPRIV, "--pdeathsig", "KILL", "--", *argv]
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=stdin,
                                    env=env)
        harness._live_processes[proc.pid] = proc
        started.append(proc)
        return proc

    yield spawn
    for proc in reversed(started):
        harness.stop_process(proc)
    for path in logs:  # pytest shows this only for a failed test
        print(f"--- {path}:\n{read_tail(path)}")


@pytest.fixture
def redis(tmp_path):
    server = RedisServer(str(tmp_path)).start()
    yield server
    server.stop()


def write_config(path, listen, redis_port, workers=1):
    cfg = harness.default_proxy_config(listen, redis_port, free_port())
    cfg["workers"] = workers
    del cfg["admin"]
    path.write_text(harness.to_yaml(cfg) + "\n")
    return str(path)


def connect_when_listening(address, timeout=harness.START_TIMEOUT_S):
    """A client connected as soon as something listens on `address` (not necessarily the
    proxy: with socket activation the socket exists before it)."""
    def attempt():
        try:
            return RespClient(address, timeout=10.0)
        except OSError:
            return None
    return wait_until(attempt, timeout, what=f"a listener on {address}")


def log_has(path, text, timeout=harness.START_TIMEOUT_S):
    return wait_until(lambda: text in read_tail(path, 100000), timeout,
                      what=f"'{text}' in {path}")


def assert_clean_exit(proc, log_path):
    code = harness.stop_process(proc)
    log = read_tail(log_path, 100000)
    assert code == 0, log
    assert not any(mark in log for mark in harness.SANITIZER_MARKS), log


# ---------------------------------------------------------------------------------------
# socket activation


def test_socket_activation_serves_a_client_that_connected_first(tmp_path, redis, procs):
    # systemd-socket-activate binds, waits for the first connection, then execs the proxy
    # with the socket as fd 3 (LISTEN_FDS=1, LISTEN_FDNAMES=main): the client connects
    # before the proxy runs and must be served.
    port = free_port()
    config = write_config(tmp_path / "tether.yaml", f"{HOST}:{port}", redis.port)
    log_path = str(tmp_path / "tether.log")
    proc = procs(["systemd-socket-activate", "-l", f"{HOST}:{port}", "--fdname=main",
                  harness.tether_bin(), "--config", config], log_path)
    with connect_when_listening((HOST, port)) as early:
        assert early.command("SET", "sd:k", "early") == "OK"
        assert early.command("GET", "sd:k") == b"early"
    log_has(log_path, f"event=listen_inherited service=main fd_name=main address={HOST}:{port}")
    assert "event=listen_inherited_mismatch" not in read_tail(log_path)
    with RespClient((HOST, port)) as later:
        assert later.command("PING") == "PONG"
    assert proc.poll() is None
    assert_clean_exit(proc, log_path)


def test_socket_activation_refuses_a_socket_named_for_no_service(tmp_path, redis, procs):
    port = free_port()
    config = write_config(tmp_path / "tether.yaml", f"{HOST}:{port}", redis.port)
    log_path = str(tmp_path / "tether.log")
    proc = procs(["systemd-socket-activate", "-l", f"{HOST}:{port}", "--fdname=cache",
                  harness.tether_bin(), "--config", config], log_path)
    with connect_when_listening((HOST, port)):
        proc.wait(timeout=harness.START_TIMEOUT_S)
    assert proc.returncode == 1
    assert "event=listen_inherited_failed" in read_tail(log_path)
    assert "'cache' match no service" in read_tail(log_path)


def start_with_socket(procs, sock, name, config, log_path, env_extra=None):
    """Execs the proxy the way systemd does: `sock` as fd 3, LISTEN_PID its own PID."""
    script = ('exec 3<&0 0</dev/null; LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES="$0"; '
              'export LISTEN_PID LISTEN_FDS LISTEN_FDNAMES; exec "$@"')
    env = dict(os.environ, **(env_extra or {}))
    return procs(["sh", "-c", script, name, harness.tether_bin(), "--config", config],
                 log_path, env=env, stdin=sock.fileno())


def test_restart_with_a_passed_socket_refuses_no_connection(tmp_path, redis, procs):
    # The test holds the listening socket as systemd would across a restart: clients that
    # connect while no proxy runs wait in the accept queue and are served by the next one.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((HOST, 0))
    listener.listen(511)
    address = listener.getsockname()
    config = write_config(tmp_path / "tether.yaml", f"{HOST}:{address[1]}", redis.port,
                          workers=2)
    log1, log2 = str(tmp_path / "first.log"), str(tmp_path / "second.log")
    try:
        first = start_with_socket(procs, listener, "main", config, log1)
        log_has(log1, "event=started")
        with RespClient(address) as c:
            assert c.command("SET", "sd:restart", "1") == "OK"
        assert_clean_exit(first, log1)

        waiting = RespClient(address, timeout=10.0)  # connect() succeeds: backlog
        waiting.send_command("INCR", "sd:restart")
        assert not waiting.has_data(0.3)
        second = start_with_socket(procs, listener, "main", config, log2)
        assert waiting.read_reply() == 2
        waiting.close()
        log_has(log2, "event=listen_inherited service=main fd_name=main")
        assert_clean_exit(second, log2)
    finally:
        listener.close()


def test_unix_socket_passed_by_systemd_is_kept_at_exit(tmp_path, redis, procs):
    path = str(tmp_path / "main.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    config = write_config(tmp_path / "tether.yaml", f"unix:{path}", redis.port)
    log_path = str(tmp_path / "tether.log")
    try:
        proc = start_with_socket(procs, listener, "main", config, log_path)
        log_has(log_path, "event=started")
        with RespClient(path) as c:
            assert c.command("PING") == "PONG"
        assert f"address=unix:{path} configured=unix:{path}" in read_tail(log_path)
        assert_clean_exit(proc, log_path)
        assert os.path.exists(path)  # systemd's socket file: the proxy must not remove it
    finally:
        listener.close()


def test_passed_socket_of_the_wrong_kind_is_refused(tmp_path, redis, procs):
    # A TCP socket for a service configured on a unix socket: exit 1, naming both.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((HOST, 0))
    listener.listen(16)
    config = write_config(tmp_path / "tether.yaml", f"unix:{tmp_path}/main.sock", redis.port)
    log_path = str(tmp_path / "tether.log")
    try:
        proc = start_with_socket(procs, listener, "main", config, log_path)
        assert proc.wait(timeout=harness.START_TIMEOUT_S) == 1
        assert "is not a listening unix stream socket" in read_tail(log_path)
    finally:
        listener.close()


# ---------------------------------------------------------------------------------------
# sd_notify


class NotifySocket:
    """The test's own NOTIFY_SOCKET: an AF_UNIX datagram socket in a temp dir, read all
    the time by a thread, as systemd does (a unix datagram socket queues only ~10 messages
    before the sender blocks)."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.1)
        self.messages = []
        self._lock = threading.Lock()
        self._closed = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        while not self._closed:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                self.messages.append(data.decode())

    def collect(self, until, timeout):
        """Waits until until(messages) is true; returns a copy of the messages."""
        def check():
            with self._lock:
                snapshot = list(self.messages)
            return snapshot if until(snapshot) else None
        try:
            return wait_until(check, timeout, what="notifications")
        except TimeoutError:
            with self._lock:
                raise TimeoutError(f"notifications so far: {self.messages}") from None

    def close(self):
        self._closed = True
        self._reader.join(timeout=5)
        self.sock.close()


def fields(message):
    return dict(line.split("=", 1) for line in message.splitlines() if "=" in line)


def start_notified(procs, tmp_path, redis, watchdog_pid="self", workers=2):
    notify = NotifySocket(str(tmp_path / "notify.sock"))
    port = free_port()
    config = write_config(tmp_path / "tether.yaml", f"{HOST}:{port}", redis.port, workers)
    log_path = str(tmp_path / "tether.log")
    env = dict(os.environ, NOTIFY_SOCKET=notify.path, WATCHDOG_USEC="1000000")
    # WATCHDOG_PID must be the proxy's own PID: the shell execs it, keeping its PID.
    pid = "$$" if watchdog_pid == "self" else watchdog_pid
    proc = procs(["sh", "-c", f'WATCHDOG_PID={pid}; export WATCHDOG_PID; exec "$@"', "sh",
                  harness.tether_bin(), "--config", config], log_path, env=env)
    return notify, proc, port, log_path


def test_notify_ready_status_watchdog_stopping(tmp_path, redis, procs):
    notify, proc, port, log_path = start_notified(procs, tmp_path, redis)
    try:
        msgs = notify.collect(lambda m: any("READY=1" in x for x in m), harness.START_TIMEOUT_S)
        ready = fields(next(x for x in msgs if "READY=1" in x))
        assert ready["STATUS"] == (f"serving 1 service on 2 workers; "
                                   f"main: upstream {HOST}:{redis.port}"), msgs
        # READY=1 comes once the listener is open: a client is served straight away.
        with RespClient((HOST, port)) as c:
            assert c.command("PING") == "PONG"

        # WATCHDOG_USEC=1s: a ping every 500ms while both workers answer their probes
        # (the bound is generous for a loaded CI machine).
        notify.collect(lambda m: sum(x == "WATCHDOG=1" for x in m) >= 4, 15.0)
        assert "event=watchdog_enabled interval_ms=500 probed=2" in read_tail(log_path)

        # SIGHUP: RELOADING=1, then READY=1 again once the file is re-read.
        os.kill(proc.pid, signal.SIGHUP)
        msgs = notify.collect(lambda m: any("RELOADING=1" in x for x in m) and any(
            "READY=1" in x for x in m[[i for i, x in enumerate(m) if "RELOADING=1" in x][0]:]),
            10.0)
        assert "event=reloaded" in read_tail(log_path)

        os.kill(proc.pid, signal.SIGTERM)
        msgs = notify.collect(lambda m: any("STOPPING=1" in x for x in m),
                              harness.STOP_TIMEOUT_S)
        stopping = fields(next(x for x in msgs if "STOPPING=1" in x))
        assert stopping["STATUS"] == "stopping (SIGTERM)"
        assert_clean_exit(proc, log_path)
        # The order systemd expects: READY first, STOPPING last, no ping after STOPPING.
        time.sleep(0.2)
        msgs = notify.collect(lambda m: True, 1.0)
        kinds = [x.split("=", 1)[0] for x in msgs]
        assert kinds[0] == "READY" and kinds[-1] == "STOPPING", msgs
    finally:
        notify.close()


def test_watchdog_pings_only_for_its_own_pid(tmp_path, redis, procs):
    # WATCHDOG_PID naming another process (e.g. inherited from a parent): no pings.
    notify, proc, _, log_path = start_notified(procs, tmp_path, redis, watchdog_pid="1",
                                               workers=1)
    try:
        notify.collect(lambda m: any("READY=1" in x for x in m), harness.START_TIMEOUT_S)
        time.sleep(1.5)  # a ping would be due every 500ms
        msgs = notify.collect(lambda m: True, 1.0)
        assert "WATCHDOG=1" not in msgs, msgs
        assert "event=watchdog_enabled" not in read_tail(log_path)
        assert_clean_exit(proc, log_path)
    finally:
        notify.close()


def test_without_systemd_nothing_changes(tmp_path, redis, procs):
    port = free_port()
    config = write_config(tmp_path / "tether.yaml", f"{HOST}:{port}", redis.port)
    log_path = str(tmp_path / "tether.log")
    env = {k: v for k, v in os.environ.items()
           if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS",
                        "LISTEN_PID", "LISTEN_FDNAMES")}
    proc = procs([harness.tether_bin(), "--config", config], log_path, env=env)
    with connect_when_listening((HOST, port)) as c:
        assert c.command("PING") == "PONG"
    log = read_tail(log_path)
    assert "event=listen_inherited" not in log and "event=watchdog" not in log
    assert_clean_exit(proc, log_path)
