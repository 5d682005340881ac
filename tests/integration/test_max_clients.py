"""limits.max_clients 5: the sixth connection gets Redis's
`-ERR max number of clients reached` and is closed; the first five keep working, and a
slot freed by a leaving client can be taken again."""

import time

from harness import wait_until

REFUSED = b"-ERR max number of clients reached\r\n"


def connections(target):
    if not target.is_proxy:
        return None
    return target.metrics().require("redis_tether_client_connections", service="main")


def wait_connections(target, n):
    if target.is_proxy:
        wait_until(lambda: connections(target) == n, 10, what=f"{n} client connections")
    else:
        time.sleep(0.2)  # Redis notices a closed client within one event-loop turn


def test_sixth_client_refused(make_target):
    target = make_target({"service": {"limits": {"max_clients": 5}}})
    before = _refused(target)
    wait_connections(target, 0)  # the harness's readiness probe has gone
    clients = [target.client() for _ in range(5)]
    try:
        for i, c in enumerate(clients):
            assert c.command("SET", f"maxc:{i}", i) == "OK"
        with target.client() as sixth:
            # Refused without sending anything; a command sent anyway is not answered.
            try:
                sixth.send(b"PING\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass
            assert sixth.read_raw_until_eof() == REFUSED
        for i, c in enumerate(clients):
            assert c.command("GET", f"maxc:{i}") == str(i).encode()
        # Freeing a slot lets the next client in.
        clients.pop().close()
        wait_connections(target, 4)
        with target.client() as again:
            assert again.command("PING") == "PONG"
        assert all(c.is_alive() for c in clients)
    finally:
        for c in clients:
            c.close()
    if target.is_proxy:
        assert _refused(target) - before == 1
        assert target.metrics().get("redis_tether_limit_hits_total", service="main",
                                    limit="max_clients") == 1


def _refused(target):
    if not target.is_proxy:
        return 0
    return target.metrics().get("redis_tether_client_connections_closed_total",
                                service="main", reason="max_clients") or 0
