"""Transactions and pipelines through the proxy as applications drive them.

- The hiredis program pipelines INCRs with WATCH/MULTI/INCR/GET/EXEC transactions in between,
  from 50 connections at once: each client moves between the shared connections and a
  dedicated one many times, and every reply must still be right and in order.
- python3-redis transaction pipelines (MULTI/EXEC) from threads, checked by value.
- python3-redis optimistic locking (`Redis.transaction`: WATCH, GET, MULTI, SET, EXEC and
  retry on a conflict) from threads on one shared counter: a WATCH that did not make a
  conflicting EXEC fail would lose increments, so the final count is exact only if WATCH
  works through the proxy.
- WAIT counts the replicas that acknowledged the client's writes: a stopped replica is
  not counted.

Run in direct mode (TETHER_DIRECT=1) the same checks hold against redis-server itself."""

import os
import signal
import threading

import redis

from harness import RedisServer, wait_until
from test_pipeline import run_pipeline_client

CLIENTS = 50  # below pool.max_dedicated (64): every client may hold a dedicated connection
INCRS = 500
MULTI_EVERY = 7


def run_workers(worker, n, errors):
    """Runs worker(i) for i in range(n) on threads; fails on a hung worker or any error."""
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a worker hung"
    assert not errors, errors[:5]


def test_hiredis_pipelines_with_transactions_in_between(target):
    out = run_pipeline_client(target.address, "--clients", str(CLIENTS), "--incrs", str(INCRS),
                              "--get-every", "10", "--multi-every", str(MULTI_EVERY))
    assert out.returncode == 0, out.stderr
    multis = INCRS // MULTI_EVERY
    plain = INCRS - multis
    per_client = 2 + plain + (INCRS // 10) + 5 * multis
    # GETs follow every 10th INCR unless that INCR was a transaction (which has its own GET).
    per_client -= len([j for j in range(1, INCRS + 1) if j % 10 == 0 and j % MULTI_EVERY == 0])
    assert f"ok: {CLIENTS} clients, {CLIENTS * per_client} replies" in out.stdout, out.stdout
    if target.is_proxy:
        m = target.metrics()
        assert (m.get("redis_tether_error_replies_total", service="main") or 0) == 0, m.text
        assert (m.get("redis_tether_client_connections_closed_total", service="main") or 0) == 0


def test_python_redis_transaction_pipelines_from_threads(target):
    host, port = target.host_port
    errors = []
    threads_n, rounds = 16, 100

    def worker(i):
        try:
            r = redis.Redis(host=host, port=port, socket_timeout=30)
            key, lst = f"tx:{i}:n", f"tx:{i}:l"
            r.delete(key, lst)
            for j in range(1, rounds + 1):
                pipe = r.pipeline(transaction=True)
                pipe.incr(key)
                pipe.rpush(lst, j)
                pipe.get(key)
                pipe.llen(lst)
                got = pipe.execute()
                want = [j, j, str(j).encode(), j]
                if got != want:
                    errors.append(f"thread {i} round {j}: {got!r} != {want!r}")
                    return
            r.delete(key, lst)
        except Exception as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(f"thread {i}: {e!r}")

    run_workers(worker, threads_n, errors)


def test_python_redis_optimistic_locking_loses_no_increment(target):
    host, port = target.host_port
    key = "tx:shared:counter"
    threads_n, increments = 8, 60
    errors = []
    retries = []

    with target.client() as c:
        c.command("SET", key, "0")

    def worker(i):
        try:
            r = redis.Redis(host=host, port=port, socket_timeout=30)
            tries = [0]

            def bump(pipe):
                tries[0] += 1
                value = int(pipe.get(key))  # read while watching: not atomic by itself
                pipe.multi()
                pipe.set(key, value + 1)

            for _ in range(increments):
                r.transaction(bump, key)
            retries.append(tries[0] - increments)
        except Exception as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(f"thread {i}: {e!r}")

    run_workers(worker, threads_n, errors)
    with target.client() as c:
        final = int(c.command("GET", key))
        c.command("DEL", key)
    print(f"optimistic locking: {threads_n * increments} increments, "
          f"{sum(retries)} EXECs aborted by WATCH and retried")
    assert final == threads_n * increments


def test_wait_counts_replicas_that_have_the_clients_writes(target, workdir):
    """WAIT through the proxy means what it means against Redis: the replicas that
    acknowledged the client's writes. A stopped replica is not counted; once it runs
    again it is. (Redis counts acknowledgements of the connection's last write; the
    proxy's dedicated connection first writes a PUBLISH, so that its last write is at
    least as recent as the client's writes on the shared connections.)"""
    master = target.redis
    replica = RedisServer(os.path.join(workdir, "replica"),
                          extra_args=["--replicaof", "127.0.0.1", str(master.port)]).start()
    try:
        def synced():
            with master.client() as c:
                info = c.command("INFO", "replication")
            text = info.decode() if isinstance(info, bytes) else info
            return "connected_slaves:1" in text and ",state=online," in text
        wait_until(synced, 20, what="the replica in sync")
        with target.client() as c:
            assert c.command("SET", "wait:k", "1") == "OK"
            assert c.command("WAIT", "1", "2000") == 1
            replica.proc.send_signal(signal.SIGSTOP)
            try:
                assert c.command("SET", "wait:k", "2") == "OK"
                assert c.command("WAIT", "1", "300") == 0
            finally:
                replica.proc.send_signal(signal.SIGCONT)
            assert c.command("WAIT", "1", "5000") == 1
            assert c.command("GET", "wait:k") == b"2"
    finally:
        replica.stop()
