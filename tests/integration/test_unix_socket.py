"""A unix-socket listener: redis-cli -s and the hiredis program through it."""

import os
import stat
import subprocess

import pytest

from test_pipeline import run_pipeline_client

CONFIG = {"service": {"listen_mode": "0600"}}


@pytest.fixture
def unix_target(make_target):
    return make_target(CONFIG, unix=True)


def cli(path, *args, stdin=None):
    return subprocess.run(["redis-cli", "-s", path, *args], input=stdin, capture_output=True,
                          timeout=30)


def test_redis_cli_over_unix_socket(unix_target):
    path = unix_target.address
    assert isinstance(path, str)
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert cli(path, "SET", "unix:k", "over a unix socket").stdout == b"OK\n"
    assert cli(path, "GET", "unix:k").stdout == b"over a unix socket\n"
    out = cli(path, stdin=b"INCR unix:n\nINCR unix:n\nGET unix:n\n")
    assert out.stdout.decode().splitlines() == ["1", "2", "2"], out


def test_pipelining_clients_over_unix_socket(unix_target):
    out = run_pipeline_client(unix_target.address, "--clients", "20", "--incrs", "500")
    assert out.returncode == 0, out.stderr
