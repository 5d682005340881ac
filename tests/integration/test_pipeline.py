"""Many concurrent pipelining clients: every reply reaches the right client, in order.

The hiredis program (pipeline_client.cpp) runs 200 clients x (SET + 1,000 INCR + 100 GET +
DEL) in one poll loop and checks every reply by value; python3-redis pipelines do the same
from threads with a mix of value types."""

import os
import subprocess
import threading
import time

import redis

CLIENTS = 200
INCRS = 1000


def run_pipeline_client(address, *extra, timeout=150):
    argv = [os.environ["HIREDIS_CLIENT"]]
    if isinstance(address, str):
        argv += ["--unix", address]
    else:
        argv += ["--host", address[0], "--port", str(address[1])]
    argv += [*extra, "--timeout-s", str(timeout - 30)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def test_hiredis_200_clients_pipelining(make_target):
    target = make_target({"workers": 2, "service": {"pool": {"size": 2}}})
    out = run_pipeline_client(target.address, "--clients", str(CLIENTS), "--incrs", str(INCRS),
                              "--get-every", "10")
    assert out.returncode == 0, out.stderr
    assert f"ok: {CLIENTS} clients, {CLIENTS * (INCRS + INCRS // 10 + 2)} replies" in out.stdout
    if target.is_proxy:
        m = target.metrics()
        assert m.require("redis_tether_commands_forwarded_total",
                         service="main") >= CLIENTS * (INCRS + INCRS // 10 + 2)
        assert (m.get("redis_tether_error_replies_total", service="main") or 0) == 0, m.text


def test_hiredis_client_detects_a_wrong_reply(target):
    # The checker itself must fail when a reply is wrong: another connection INCRs the
    # program's key the whole time, so the values the program sees are shifted.
    with target.client() as c:
        prefix = "pipeline:selftest"
        stop = threading.Event()

        def meddle():
            deadline = time.monotonic() + 60
            with target.client() as m:
                while not stop.is_set() and time.monotonic() < deadline:
                    m.command("INCR", f"{prefix}:0")

        t = threading.Thread(target=meddle)
        t.start()
        try:
            out = run_pipeline_client(target.address, "--clients", "1", "--incrs", "20000",
                                      "--prefix", prefix, timeout=60)
        finally:
            stop.set()
            t.join(timeout=30)
        c.command("DEL", f"{prefix}:0")
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert "FAIL client 0" in out.stderr


def test_python_redis_pipelines_from_threads(target):
    host, port = target.host_port
    errors = []
    threads_n, ops = 20, 500

    def worker(i):
        try:
            r = redis.Redis(host=host, port=port, socket_timeout=30)
            key, lst, h = f"py:{i}:n", f"py:{i}:l", f"py:{i}:h"
            pipe = r.pipeline(transaction=False)
            pipe.delete(key, lst, h)
            expected = [None]
            for j in range(1, ops + 1):
                pipe.incr(key, i + 1)
                expected.append((i + 1) * j)
                if j % 50 == 0:
                    pipe.rpush(lst, f"{i}-{j}")
                    expected.append(j // 50)
                    pipe.hset(h, f"f{j}", b"\x00\r\n" * j)
                    expected.append(1)
                    pipe.get(key)
                    expected.append(str((i + 1) * j).encode())
            got = pipe.execute()
            got[0] = None  # DEL's count depends on earlier runs
            if got != expected:
                first = next(k for k, (a, b) in enumerate(zip(got, expected)) if a != b)
                errors.append(f"thread {i}: reply {first}: got {got[first]!r}, "
                              f"expected {expected[first]!r}")
                return
            if r.lrange(lst, 0, -1) != [f"{i}-{j}".encode() for j in range(50, ops + 1, 50)]:
                errors.append(f"thread {i}: list content wrong")
            fields = r.hgetall(h)
            if fields != {f"f{j}".encode(): b"\x00\r\n" * j for j in range(50, ops + 1, 50)}:
                errors.append(f"thread {i}: hash content wrong")
            big = os.urandom(3 << 20)
            r.set(f"py:{i}:big", big)
            if r.get(f"py:{i}:big") != big:
                errors.append(f"thread {i}: 3 MiB value corrupted")
            r.close()
        except Exception as e:  # noqa: BLE001 - reported as the test's failure
            errors.append(f"thread {i}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a worker thread is stuck"
    assert not errors, "\n".join(errors)
