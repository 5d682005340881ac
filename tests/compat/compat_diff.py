#!/usr/bin/python3
"""Differential compatibility check: the catalogue run against redis-server directly and
through redis-tether, reply bytes compared.

    catalogue.py ──► for each protocol (RESP2; RESP3 = HELLO 3 first on each connection)
                       for each case:  reset ─► run direct ─► reset ─► run via proxy
                                        │          │                      │
                     admin connection ──┘   redis-server ◄── redis-tether ┘
                     (FLUSHALL, SCRIPT FLUSH,   (one, on a free loopback port)
                      FUNCTION FLUSH, CLIENT KILL)
                   ──► per-step compare of the normalised bytes ──► "N of M identical"

One redis-server serves both runs, the direct one first: replies that depend on the
server's random hash seed (iteration order of hash-table sets, hashes and the keyspace:
SMEMBERS, HGETALL, SCAN, KEYS) and server-wide values (LASTSAVE, run state) are then equal
without normalising them, so a reordering or a changed value is a real difference. Each
run starts from an empty server; the direct run's connections are killed with CLIENT KILL
(synchronous) so nothing they left (subscriptions, MONITOR) leaks into the proxied run.

Only replies that genuinely vary are normalised (runner.NORMALISERS, chosen per step in
the catalogue): TIME, client ids, HELLO's `id`. Everything else is compared byte for byte.

A difference is expected when the first differing reply is the proxy's own refusal
(`-NOTSUPPORTED`/`-DENIED`) of a command of EXPECTED_DIFFERENCES, in the place of that
command's reply; later replies of that case are consequences. KNOWN_PROXY_BUGS lists
the cases where the proxy refuses what it should forward (reported, to be fixed). In
RESP3 a refused HELLO 3 is expected only if every later reply equals the proxy's RESP2
reply to the same case. Anything else is UNEXPECTED: a proxy bug or a regression.

The catalogue and how a case runs: catalogue.py, runner.py; reply frames: raw_resp.py.

Exit status: 0 when the run completed (differences are measurements, not failures);
1 when the tool could not measure (a process failed, the deadline passed, a catalogue
case misbehaved against Redis directly, the proxy crashed or a sanitizer reported);
2 for a bad command line or an unsupported --mode.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import harness  # noqa: E402
from runner import REPLY_TIMEOUT_S, ToolFailure, load_cases, run_case  # noqa: E402

# Whole run; CI allows 120 s for the ASan build.
DEFAULT_DEADLINE_S = 100.0
SHOW_BYTES = 160  # escaped characters shown per reply
SHOW_STEPS = 3  # differing steps shown per case

# Differences the proxy is known to have today: command -> (its error code, reason).
# test_compat.py fails on any difference not listed; README's "Compatibility" table is
# this list.
EXPECTED_DIFFERENCES = {
    "SCRIPT": ("NOTSUPPORTED", "SCRIPT DEBUG only (a Lua debugger session on the "
               "connection): not supported by redis-tether"),
    "REPLICAOF": ("DENIED", "in the default deny_commands: would change the topology"),
    "SLAVEOF": ("DENIED", "in the default deny_commands: would change the topology"),
    "FAILOVER": ("DENIED", "in the default deny_commands: would change the topology"),
}
# Cases where the proxy refuses a command it should forward: case id -> the bug. Each
# stays in the catalogue so the fix shows as a case turning identical.
KNOWN_PROXY_BUGS = {}
RESP3_KEY = "HELLO 3"
RESP3_REASON = ("RESP3 run: the case's HELLO 3 is refused (NOTSUPPORTED), so the "
                "connection stays RESP2 and every later reply is the proxy's RESP2 reply")

_REFUSAL = re.compile(rb"^-(NOTSUPPORTED|DENIED) '([A-Z0-9_|-]+)'")


class UsageError(Exception):
    """The run cannot be made as asked (exit status 2)."""


# ---------------------------------------------------------------------------------------
# Comparing


def first_refusal(reply):
    m = _REFUSAL.match(reply)
    return (m.group(1).decode(), m.group(2).decode()) if m else None


def classify(case, direct, proxy, proxy_resp2=None):
    """None when identical; else (key, expected, differing step indexes). `key` is the
    refused command, RESP3_KEY, "BUG <command>" or "UNEXPECTED"."""
    if len(direct) != len(proxy):
        raise ToolFailure(f"{case.id}: runs have different step counts")
    diffs = [i for i, (d, p) in enumerate(zip(direct, proxy)) if d.frames != p.frames]
    if not diffs:
        return None
    step, dframes, pframes = proxy[diffs[0]].step, direct[diffs[0]].frames, proxy[diffs[0]].frames
    k = next((j for j, (a, b) in enumerate(zip(dframes, pframes)) if a != b),
             min(len(dframes), len(pframes)))
    refusal = first_refusal(pframes[k]) if k < len(pframes) else None
    if refusal is None:
        return ("UNEXPECTED", False, diffs)
    code, name = refusal
    # The refusal must stand where that command's reply belongs (a read step answers
    # earlier sends of the case).
    if step.frame_names is None:
        in_place = name in case.command_names
    else:
        in_place = k < len(step.frame_names) and step.frame_names[k] == name
    if not in_place:
        return ("UNEXPECTED", False, diffs)
    if step.preface:
        later = [r.frames for r in proxy if not r.step.preface]
        if proxy_resp2 is not None and later == [r.frames for r in proxy_resp2]:
            return (RESP3_KEY, True, diffs)
        return ("UNEXPECTED", False, diffs)
    if KNOWN_PROXY_BUGS.get(case.id, (None,))[0] == name:
        return (f"BUG {name}", True, diffs)
    known = EXPECTED_DIFFERENCES.get(name)
    expected = known is not None and known[0] == code
    return (name if expected else "UNEXPECTED", expected, diffs)


def show(reply):
    """Bytes escaped as in a Python literal, truncated; a str (a step label) truncated."""
    text = reply if isinstance(reply, str) else repr(reply)[2:-1]
    if len(text) > SHOW_BYTES:
        unit = "chars" if isinstance(reply, str) else "bytes"
        text = text[:SHOW_BYTES] + f"... ({len(reply)} {unit})"
    return text


def report_case(proto, case, direct, proxy, verdict, details):
    key, expected, diffs = verdict
    tag = f"expected {key}" if expected else "UNEXPECTED"
    print(f"DIFF {proto} {case.id}: {tag}")
    if not details:
        return
    shown = diffs if not expected else diffs[:1]
    for i in shown[:SHOW_STEPS]:
        print(f"    step {i + 1}: {show(direct[i].step.label)}")
        print(f"      direct: {show(direct[i].reply)}")
        print(f"      proxy:  {show(proxy[i].reply)}")
    if len(diffs) > len(shown[:SHOW_STEPS]):
        more = len(diffs) - len(shown[:SHOW_STEPS])
        why = ", consequences of the first" if expected else ""
        print(f"    (+{more} more differing step{'s' if more > 1 else ''}{why})")


# ---------------------------------------------------------------------------------------
# Processes


def session_mode_overrides(tether, workdir):
    """The proxy config for --mode session, if this redis-tether accepts pool.mode."""
    overrides = {"service": {"pool": {"mode": "session"}}}
    path = os.path.join(workdir, "session-check.yaml")
    cfg = harness.deep_merge(harness.default_proxy_config("127.0.0.1:1", 2, 3), overrides)
    with open(path, "w") as f:
        f.write(harness.to_yaml(cfg) + "\n")
    out = subprocess.run([tether, "--config", path, "--check-config"], capture_output=True,
                         text=True, timeout=30)
    if out.returncode != 0:
        said = (out.stdout + out.stderr).strip().splitlines()
        raise UsageError("--mode session needs pool.mode: session, which this "
                         "redis-tether does not accept; its --check-config said: "
                         f"{said[0] if said else out.returncode}")
    return overrides


class Admin:
    """The harness's own direct connection: resets the server between runs."""

    def __init__(self, address):
        self.client = harness.RespClient(address, timeout=REPLY_TIMEOUT_S)

    def command(self, *args):
        return self.client.command(*args)

    def reset(self):
        for args in (("FLUSHALL", "SYNC"), ("SCRIPT", "FLUSH", "SYNC"),
                     ("FUNCTION", "FLUSH", "SYNC")):
            reply = self.command(*args)
            if reply != "OK":
                raise ToolFailure(f"{' '.join(args)} answered {reply!r}")


def version_of(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return out.stdout.strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "unknown version"


# ---------------------------------------------------------------------------------------
# Main


def measure(args, cases, redis, other_address, admin, deadline):
    """Runs every case in each protocol; returns {proto: (identical, total, verdicts)}."""
    protos = {"2": ["resp2"], "3": ["resp3"], "both": ["resp2", "resp3"]}[args.resp]
    proxy_resp2, summary, problems = {}, {}, []

    def run_pair(case, resp3):
        admin.reset()
        direct = run_case(case, redis.address, resp3, admin=admin)
        admin.reset()
        other = run_case(case, other_address, resp3,
                         admin=admin if args.self_check else None)
        return direct, other

    for proto in protos:
        resp3 = proto == "resp3"
        identical, verdicts = 0, []
        for case in cases:
            if time.monotonic() > deadline:
                raise ToolFailure(f"deadline of {args.deadline:.0f}s passed in {proto} "
                                  f"at {case.id}")
            direct, other = run_pair(case, resp3)
            for r in direct:
                if r.reply.endswith((b"<timeout>", b"<still open>")) or \
                        r.reply.startswith(b"<send failed"):
                    problems.append(f"{proto} {case.id}: against Redis directly, "
                                    f"{r.step.label!r} got {show(r.reply)}")
            if not resp3:
                proxy_resp2[case.name] = other
            reference = None
            if resp3:
                reference = proxy_resp2.get(case.name)
                if reference is None:
                    reference = run_pair(case, False)[1]
            verdict = classify(case, direct, other, reference)
            if verdict is None:
                identical += 1
            else:
                verdicts.append((case, verdict))
                report_case(proto, case, direct, other, verdict, not args.list_differences)
        summary[proto] = (identical, len(cases), verdicts)
    if problems:
        raise ToolFailure("catalogue cases misbehaved against Redis directly:\n  "
                          + "\n  ".join(problems))
    return summary


def print_table(summary):
    """The README table: each expected difference, its reply and reason, and cases."""
    rows = {}
    for proto, (_, _, verdicts) in summary.items():
        for case, (key, expected, _) in verdicts:
            if expected:
                rows.setdefault(key, {}).setdefault(proto, []).append(case.name)
    print("\n| command | proxy reply | reason | cases (RESP2) | cases (RESP3) |")
    print("| --- | --- | --- | --- | --- |")
    bugs = {name: reason for name, reason in KNOWN_PROXY_BUGS.values()}
    for key in sorted(rows, key=lambda k: (k == RESP3_KEY, k.startswith("BUG"), k)):
        if key == RESP3_KEY:
            code, reason = "NOTSUPPORTED", RESP3_REASON
        elif key.startswith("BUG "):
            code, reason = "NOTSUPPORTED", "proxy bug (reported): " + bugs[key[4:]]
        else:
            code, reason = EXPECTED_DIFFERENCES[key]
        counts = [str(len(rows[key].get(p, []))) for p in ("resp2", "resp3")]
        print(f"| `{key}` | `-{code}` | {reason} | {counts[0]} | {counts[1]} |")


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Run the compatibility catalogue against redis-server directly and "
                    "through redis-tether; compare the reply bytes.")
    p.add_argument("--mode", choices=("shared", "session"), default="shared",
                   help="the proxy's pool.mode")
    p.add_argument("--resp", choices=("2", "3", "both"), default="both")
    p.add_argument("--list-differences", action="store_true",
                   help="one line per differing case (no reply bytes), then the table "
                        "of expected differences by command (README's table)")
    p.add_argument("--tether-bin", default=os.environ.get("TETHER_BIN"),
                   help="redis-tether binary (default: $TETHER_BIN)")
    p.add_argument("--case", help="only cases whose group/name matches this glob")
    p.add_argument("--deadline", type=float, default=DEFAULT_DEADLINE_S,
                   help="seconds the whole run may take (default %(default)s)")
    p.add_argument("--self-check", action="store_true",
                   help="compare Redis with itself (two direct runs) instead of the proxy: "
                        "every case must be identical, or the catalogue is not deterministic")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not args.self_check and not args.tether_bin:
        print("compat_diff: give --tether-bin or set TETHER_BIN", file=sys.stderr)
        return 2
    started = time.monotonic()
    deadline = started + args.deadline
    workdir = tempfile.mkdtemp(prefix="tether-compat-")
    redis = proxy = admin = None
    failed, status = True, 1
    try:
        overrides = {"log_level": "warn"}
        if args.mode == "session":
            overrides.update(session_mode_overrides(args.tether_bin, workdir))
        cases = load_cases(args.case)
        redis = harness.RedisServer(os.path.join(workdir, "redis")).start()
        admin = Admin(redis.address)
        if args.self_check:
            other, other_name = redis.address, "redis-server again (self-check)"
        else:
            os.environ["TETHER_BIN"] = args.tether_bin
            os.makedirs(os.path.join(workdir, "proxy"))
            proxy = harness.Proxy(os.path.join(workdir, "proxy"), redis, overrides).start()
            other = proxy.address
            other_name = (f"{version_of([args.tether_bin, '--version'])} on "
                          f"127.0.0.1:{proxy.port}, mode {args.mode}")
        print(f"compat: {len(cases)} cases; direct: "
              f"{version_of([harness.REDIS_SERVER, '--version'])} on 127.0.0.1:{redis.port}; "
              f"other: {other_name}", flush=True)
        summary = measure(args, cases, redis, other, admin, deadline)
        if proxy and proxy.proc.poll() is not None:
            raise ToolFailure(f"redis-tether exited with {proxy.proc.returncode} during the run")
        if args.list_differences:
            print_table(summary)
        unexpected = sum(1 for _, _, v in summary.values() for _, (_, ok, _) in v if not ok)
        expected = sum(len(v) for _, _, v in summary.values()) - unexpected
        print(f"\ndifferences: {expected} expected, {unexpected} unexpected "
              f"({time.monotonic() - started:.1f}s)")
        for proto, (same, total, _) in summary.items():
            print(f"{proto.upper()}: {same} of {total} identical")
        same = sum(s for s, _, _ in summary.values())
        total = sum(t for _, t, _ in summary.values())
        print(f"total: {same} of {total} identical", flush=True)
        failed = False
    except UsageError as e:
        print(f"compat_diff: {e}", file=sys.stderr)
        status = 2
    except (ToolFailure, OSError, RuntimeError, TimeoutError, harness.ConnectionClosed,
            harness.ProtocolViolation) as e:
        print(f"compat_diff: tool failure: {e}", file=sys.stderr)
    finally:
        if admin:
            admin.client.close()
        if proxy:
            problems = proxy.exit_problems(proxy.stop())
            if problems:
                failed = True
                print("compat_diff: redis-tether did not exit cleanly:\n  "
                      + "\n  ".join(problems), file=sys.stderr)
                print(harness.read_tail(proxy.log_path, 60), file=sys.stderr)
        if redis:
            redis.stop()
        if failed and redis is not None:
            print(f"compat_diff: logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return status if failed else 0


if __name__ == "__main__":
    sys.exit(main())
