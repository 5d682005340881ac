"""Secrets (issue 5, item 6): the upstream, Sentinel and client passwords come from the
environment (`${VAR}`) and from a systemd credentials directory
(`${CREDENTIALS_DIRECTORY}/name`), never from the config file, and never appear in the
log of a full run (debug level: start-up, traffic, a planned failover, a proxy with a
wrong password retrying, a client sending a wrong and then the right client password),
in /status, /metrics or /health.
"""

import os
import time
import urllib.request

import pytest

from harness import HOST, RespError, RespClient, wait_until
from sentinel_topology import MASTER_NAME, make_topology  # noqa: F401  (pytest fixture)
from test_sentinel_failover import SentinelProxy, start_recorder, wait_first_ack, wait_switch

pytestmark = pytest.mark.proxy_only

NODE_PASSWORD = "node-Pw-7d1e9c"
SENTINEL_PASSWORD = "sentinel-Pw-5b2a44"
WRONG_PASSWORD = "wrong-Pw-0c3f81"
CLIENT_PASSWORD = "client-Pw-3e8d27"
WRONG_CLIENT_PASSWORD = "wrong-client-Pw-91ab5c"
SECRETS = (NODE_PASSWORD, SENTINEL_PASSWORD, WRONG_PASSWORD, CLIENT_PASSWORD,
           WRONG_CLIENT_PASSWORD)


def admin_text(proxy, path):
    url = f"http://{HOST}:{proxy.admin_port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.read().decode()


@pytest.fixture
def proxies(workdir):
    made = []
    yield made
    for p in made:
        p.stop()


def start_proxy(workdir, topo, name, upstream_password_env, proxies, hold="15s",
                client_password=False):
    """A proxy whose config names only variables: the upstream password from the
    environment, the Sentinel password (and the client password, if asked) from a
    credentials directory."""
    creds = os.path.join(workdir, f"{name}-credentials")
    os.makedirs(creds)
    with open(os.path.join(creds, "sentinel"), "w") as f:
        f.write(SENTINEL_PASSWORD + "\n")
    service = {"upstream_password": "${TETHER_TEST_UPSTREAM_PW}",
               "sentinel_password_file": "${CREDENTIALS_DIRECTORY}/sentinel",
               "hold": {"timeout": hold}}
    if client_password:
        with open(os.path.join(creds, "clients"), "w") as f:
            f.write(CLIENT_PASSWORD + "\n")
        service["client_password_file"] = "${CREDENTIALS_DIRECTORY}/clients"
    proxy = SentinelProxy(os.path.join(workdir, name), topo.sentinel_addresses, MASTER_NAME,
                          {"log_level": "debug", "service": service})
    proxy.env = {"TETHER_TEST_UPSTREAM_PW": upstream_password_env,
                 "CREDENTIALS_DIRECTORY": creds}
    proxies.append(proxy)
    proxy.start()
    with open(proxy.config_path) as f:
        config = f.read()
    assert not any(s in config for s in SECRETS), config
    return proxy


def test_passwords_stay_out_of_logs_and_admin_pages(workdir, make_topology, proxies):  # noqa: F811
    topo = make_topology(password=NODE_PASSWORD, sentinel_password=SENTINEL_PASSWORD)
    good = start_proxy(workdir, topo, "good", NODE_PASSWORD, proxies)
    bad = start_proxy(workdir, topo, "bad", WRONG_PASSWORD, proxies, hold="1s",
                      client_password=True)
    rec = start_recorder(good)
    old = topo.current_master()
    t_failover = topo.planned_failover(sentinel=0)
    sw = wait_switch(topo, old.address, t_failover)
    wait_first_ack(rec, sw.t_switch)
    rec.stop()
    v = rec.verify(sw.new, password=NODE_PASSWORD)
    assert not v.errors_by_code and not v.missing_sets, v.summary()
    with RespClient(bad.address, timeout=20) as c:
        assert c.command("GET", "x").code == "NOAUTH"
        assert c.command("AUTH", WRONG_CLIENT_PASSWORD).code == "WRONGPASS"
        assert c.command("AUTH", "default", CLIENT_PASSWORD) == "OK"
        reply = c.command("GET", "x")  # held, then -NOMASTER naming the AUTH failure
    assert isinstance(reply, RespError) and reply.code == "NOMASTER", reply
    assert "WRONGPASS" in reply or "AUTH" in reply, reply
    time.sleep(0.5)

    pages = {}
    for proxy in (good, bad):
        for path in ("/status", "/metrics", "/health"):
            pages[f"{proxy.workdir} {path}"] = admin_text(proxy, path)
        assert proxy.stop() == 0
        pages[f"{proxy.workdir} log"] = proxy.log()
    pages["-NOMASTER reply"] = reply
    assert "event=upstream_connect_failed" in pages[f"{bad.workdir} log"]
    assert sum(len(t) for t in pages.values()) > 10000  # a real run was searched
    leaks = [(where, s) for where, text in pages.items() for s in SECRETS if s in text]
    print(f"\nsearched {sum(len(t) for t in pages.values())} bytes of logs and admin pages "
          f"for {len(SECRETS)} passwords: {len(leaks)} found")
    assert not leaks, leaks
