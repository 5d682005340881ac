"""The command line: --check-config on the shipped example and on a broken file,
--version, --help, usage errors. Exit codes: 0 ok, 2 bad config or usage."""

import os
import re
import subprocess

import pytest

from harness import tether_bin

pytestmark = pytest.mark.proxy_only

EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "config",
                       "redis-tether.yaml")

# One unknown key, one bad duration, one bad size, each on a known line.
BAD_CONFIG = """\
log_level: info
services:
  - name: main
    listen: 127.0.0.1:7000
    upstream: 127.0.0.1:6380
    listen_backlog_typo: 5
    pool:
      connect_timeout: 5 parsecs
    hold:
      max_bytes: 12 zillion
"""
EXPECTED_ERRORS = [
    (6, "services[0].listen_backlog_typo"),
    (8, "services[0].pool.connect_timeout"),
    (10, "services[0].hold.max_bytes"),
]


def run(*args):
    return subprocess.run([tether_bin(), *args], capture_output=True, text=True, timeout=30)


def test_example_config_is_valid():
    path = os.path.normpath(EXAMPLE)
    assert os.path.exists(path), f"{path} is missing"
    out = run("--config", path, "--check-config")
    assert out.returncode == 0, out
    assert f"config OK: {path}" in out.stdout + out.stderr, out


def test_bad_config_reports_every_error_with_line_and_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_CONFIG)
    out = run("--config", str(path), "--check-config")
    assert out.returncode == 2, out
    lines = [ln for ln in out.stderr.splitlines() if ln.startswith(f"{path}:")]
    assert len(lines) == len(EXPECTED_ERRORS), out.stderr
    for (line_no, key), text in zip(EXPECTED_ERRORS, lines):
        assert re.match(rf"^{re.escape(str(path))}:{line_no}: {re.escape(key)}: \S", text), text
    assert "config OK" not in out.stdout + out.stderr


def test_running_with_a_bad_config_exits_2(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_CONFIG)
    out = run("--config", str(path))
    assert out.returncode == 2, out
    assert "listen_backlog_typo" in out.stderr


def test_version_help_and_usage_errors(tmp_path):
    out = run("--version")
    assert out.returncode == 0 and "redis-tether 0.1.0" in out.stdout, out
    out = run("--help")
    assert out.returncode == 0 and "--config" in out.stdout + out.stderr, out
    assert run().returncode == 2
    assert run("--no-such-flag").returncode == 2
    out = run("--config", str(tmp_path / "missing.yaml"), "--check-config")
    assert out.returncode == 2 and "missing.yaml" in out.stderr, out
