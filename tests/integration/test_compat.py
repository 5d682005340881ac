"""The differential compatibility tool (tests/compat/compat_diff.py) in CI.

It runs the whole catalogue against redis-server directly and through redis-tether, in
RESP2 and RESP3 and in both pool modes, and prints `N of M identical`. Differences are measurements, but each
must be one the tool documents (EXPECTED_DIFFERENCES, KNOWN_PROXY_BUGS, RESP3 while HELLO
is refused) and that README's "Compatibility" table lists: a new difference is a
regression and fails here.
"""

import os
import re
import subprocess
import sys

import pytest

COMPAT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "compat")
TOOL = os.path.join(COMPAT_DIR, "compat_diff.py")
sys.path.insert(0, COMPAT_DIR)

import compat_diff  # noqa: E402

# ctest gives this file 120 s; the tool bounds itself below that.
RUN_TIMEOUT_S = 110
MIN_CASES = 200
SUMMARY = re.compile(r"^(RESP2|RESP3|total): (\d+) of (\d+) identical$", re.M)
DIFF_LINE = re.compile(r"^DIFF (resp2|resp3) (\S+): (expected (.+)|UNEXPECTED)$", re.M)


def run_tool(*args):
    out = subprocess.run([sys.executable, TOOL, "--deadline", "100", *args],
                         capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert out.returncode == 0, f"compat_diff exited {out.returncode}\n{out.stdout}\n{out.stderr}"
    return out.stdout


@pytest.fixture(scope="module", params=["shared", "session"])
def report(request):
    """The tool's report in each pool.mode."""
    if os.environ.get("TETHER_DIRECT", "") not in ("", "0"):
        pytest.skip("the tool compares Redis with the proxy; nothing to do in direct mode")
    return run_tool("--resp", "both", "--mode", request.param)


def documented_keys():
    keys = set(compat_diff.EXPECTED_DIFFERENCES) | {compat_diff.RESP3_KEY}
    return keys | {f"BUG {name}" for name, _ in compat_diff.KNOWN_PROXY_BUGS.values()}


def test_prints_n_of_m_identical_for_both_protocols(report):
    found = {proto: (int(n), int(m)) for proto, n, m in SUMMARY.findall(report)}
    assert set(found) == {"RESP2", "RESP3", "total"}, report[-2000:]
    for proto in ("RESP2", "RESP3"):
        n, m = found[proto]
        assert m >= MIN_CASES and 0 <= n <= m, (proto, n, m)
    assert found["total"] == (found["RESP2"][0] + found["RESP3"][0],
                              found["RESP2"][1] + found["RESP3"][1])


def test_every_difference_is_a_documented_one(report):
    diffs = DIFF_LINE.findall(report)
    unexpected = [(proto, case) for proto, case, verdict, _ in diffs if verdict == "UNEXPECTED"]
    assert not unexpected, ("differences that are not documented (a proxy regression, or "
                            "add them to compat_diff.py and README with the reason):\n"
                            + "\n".join(f"  {p} {c}" for p, c in unexpected)
                            + "\n" + report[-6000:])
    for proto, case, _, key in diffs:
        assert key in documented_keys(), (proto, case, key)
        if key.startswith("BUG "):
            assert compat_diff.KNOWN_PROXY_BUGS[case][0] == key[4:], (case, key)


def readme_compatibility_commands():
    """The `quoted` names in the first column of README's Compatibility table."""
    path = os.path.join(os.environ.get("TETHER_SOURCE_DIR",
                                       os.path.join(COMPAT_DIR, "..", "..")), "README.md")
    with open(path) as f:
        text = f.read()
    section = re.search(r"^## Compatibility\n(.*?)(?=^## )", text, re.M | re.S)
    assert section, "README has no '## Compatibility' section"
    cells = re.findall(r"^\| ([^|]*) \|", section.group(1), re.M)
    return {name for cell in cells for name in re.findall(r"`([^`]+)`", cell)}


def test_readme_lists_every_difference_seen(report):
    seen = {key.removeprefix("BUG ") for _, _, _, key in DIFF_LINE.findall(report) if key}
    documented = {key.removeprefix("BUG ") for key in documented_keys()}
    listed = readme_compatibility_commands()
    assert seen <= listed, f"README's Compatibility table lacks {sorted(seen - listed)}"
    assert listed <= documented, \
        f"README lists differences the tool does not document: {sorted(listed - documented)}"


def test_catalogue_is_deterministic_against_redis_itself():
    # Two direct runs must agree on every case, or a case needs a normaliser.
    out = run_tool("--self-check", "--resp", "both")
    found = {proto: (int(n), int(m)) for proto, n, m in SUMMARY.findall(out)}
    assert found["RESP2"][0] == found["RESP2"][1] >= MIN_CASES, out[-3000:]
    assert found["RESP3"][0] == found["RESP3"][1] >= MIN_CASES, out[-3000:]
