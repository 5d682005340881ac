"""bench/failover.sh, briefly, so that it does not rot: one planned failover through
redis-tether completes and prints its table row (plain and Markdown). Not a check of
the numbers (test_sentinel_failover.py asserts what the client saw)."""

import os
import re
import subprocess

import pytest

import harness

pytestmark = pytest.mark.proxy_only
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_failover_bench_prints_a_row(workdir):
    script = os.path.join(REPO, "bench", "failover.sh")
    env = dict(os.environ, TETHER_BIN=harness.tether_bin(), TMPDIR=workdir)
    code, stdout, stderr = run_bounded([script, "--reps", "1", "--scenarios", "planned",
                                        "--systems", "tether", "--markdown"], env)
    text = stdout + stderr
    assert code == 0, text
    assert "FAILED" not in stdout, text
    # system, errors, disconnects, promoted->ack ms, acked writes lost, target met
    assert re.search(r"^\s+redis-tether\s+\d+\s+\d+\s+\d+\s+\d+\s+\d/1\s*$", stdout,
                     re.M), text
    assert re.search(r"^\| planned \| redis-tether \| \d+ \| \d+ \| \d+ \| \d+ \| \d/1 \|$",
                     stdout, re.M), text
    assert not os.listdir(workdir), "the benchmark left its temp dir behind"


def run_bounded(argv, env, timeout=100):
    """Runs argv; past `timeout` SIGTERMs it (by PID: its trap stops what it started),
    then SIGKILLs it. -> (exit code, stdout, stderr)."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            stdout, stderr = proc.communicate(timeout=45)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
        raise AssertionError(f"bench/failover.sh ran past {timeout}s:\n{stdout}{stderr}")
    return proc.returncode, stdout, stderr
