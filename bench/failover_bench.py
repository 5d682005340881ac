"""The failover benchmark behind bench/failover.sh (run it through that script, which
installs what is missing and builds redis-tether).

For each rep, each scenario, each system (interleaved, so drift in the machine hits all
alike): a fresh topology, the system, the client, one fault (failover_measure.run_once).
Then one table per scenario, one row per system, every rep's value in each cell.
It prints; it never asserts. Exit status 0 unless it could not run at all.
"""

import argparse
import os
import signal
import statistics
import sys
import time

import failover_measure as fm

TITLES = {
    "kill": "kill: SIGKILL of the master",
    "stop": "stop: SIGSTOP of the master past down-after, SIGCONT after the switch",
    "planned": "planned: SENTINEL FAILOVER",
}
TARGETS = {
    "kill": "target: 0 disconnects, first acknowledged write within 50 ms of the promotion",
    "stop": "no target set (redis-tether aims at 0 disconnects and no write to the resumed"
            " old master)",
    "planned": "target: 0 errors, 0 disconnects, 0 acknowledged writes lost",
}
COLUMNS = ("system", "errors", "disconnects", "promoted->ack ms", "acked writes lost",
           "target met")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="failover_bench.py")
    p.add_argument("--workdir", required=True)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--scenarios", default=",".join(fm.SCENARIOS))
    p.add_argument("--systems", default=",".join(fm.DEFAULT_SYSTEMS))
    p.add_argument("--markdown", action="store_true")
    args = p.parse_args(argv)
    args.scenarios = _choices(p, args.scenarios, fm.SCENARIOS, "--scenarios")
    args.systems = _choices(p, args.systems, fm.SYSTEMS, "--systems")
    if args.reps < 1:
        p.error("--reps must be at least 1")
    return args


def _choices(parser, text, allowed, option):
    picked = [x.strip() for x in text.split(",") if x.strip()]
    bad = [x for x in picked if x not in allowed]
    if bad or not picked:
        parser.error(f"{option}: {','.join(bad) or 'empty'}; choose from {','.join(allowed)}")
    return picked


# ---------------------------------------------------------------------------------------
# Running


def run_all(args):
    results = []
    total = args.reps * len(args.scenarios) * len(args.systems)
    t0 = time.monotonic()
    for rep in range(1, args.reps + 1):
        for scenario in args.scenarios:
            for system in args.systems:
                n = len(results) + 1
                where = os.path.join(args.workdir, f"run{n:02d}-{scenario}-{system}")
                r = fm.run_once(scenario, system, where)
                results.append(r)
                print(f"  [{n}/{total} {time.monotonic() - t0:5.0f}s] rep {rep} "
                      f"{scenario:<7} {fm.SYSTEM_NAMES[system]:<20} {run_line(r)}",
                      flush=True)
    return results


def run_line(r):
    if r.failure:
        return f"FAILED: {r.failure}" + "".join(f"\n      {n}" for n in r.notes)
    s = r.stats
    line = (f"errors {s.errors} ({s.kinds_text()}), disconnects {s.disconnects}, "
            f"promoted->ack {fmt_ms(s.promoted_ack_ms)}, lost {s.lost}, "
            f"INCR backwards {s.incr_backwards}, commands {s.commands}")
    if r.switches > 1:
        line += f"; Sentinel failed over {r.switches} times"
    return line + "".join(f"; {n}" for n in r.notes)


def fmt_ms(value):
    return "-" if value is None else f"{value:.0f}"


# ---------------------------------------------------------------------------------------
# Tables


def target_met(scenario, s):
    if scenario == "planned":
        return s.errors == 0 and s.disconnects == 0 and s.lost == 0
    if scenario == "kill":
        return s.disconnects == 0 and s.promoted_ack_ms is not None \
            and s.promoted_ack_ms <= 50.0
    return None


_FAILED = object()  # the value of a run that measured nothing


def cell(values, fmt=str, median=False):
    """Every rep's value ('x' for a failed run); with median=True and several numbers,
    'median (v1 v2 v3)'."""
    shown = " ".join("x" if v is _FAILED else fmt(v) for v in values)
    numbers = [v for v in values if v is not _FAILED and v is not None]
    if median and len(values) > 1 and numbers:
        return f"{fmt(statistics.median(numbers))} ({shown})"
    return shown


def table_row(scenario, system, results):
    runs = [r for r in results if (r.scenario, r.system) == (scenario, system)]

    def col(attr, fmt=str, median=False):
        return cell([_FAILED if r.failure else getattr(r.stats, attr) for r in runs],
                    fmt, median)

    met = [target_met(scenario, r.stats) for r in runs if not r.failure]
    return (fm.SYSTEM_NAMES[system], col("errors"), col("disconnects"),
            col("promoted_ack_ms", fmt_ms, median=True), col("lost"),
            met_text(met, len(runs)))


def rows_for(scenario, systems, results):
    return [table_row(scenario, system, results) for system in systems]


def met_text(met, runs):
    if not met or met[0] is None:
        return "-"
    return f"{sum(1 for m in met if m)}/{runs}"


def print_table(rows):
    widths = [max(len(str(r[i])) for r in [COLUMNS] + rows) for i in range(len(COLUMNS))]
    for r in [COLUMNS] + rows:
        print("  " + "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths))))


def print_markdown(args, results):
    print("| scenario | " + " | ".join(COLUMNS) + " |")
    print("|" + " --- |" * (len(COLUMNS) + 1))
    for scenario in args.scenarios:
        for row in rows_for(scenario, args.systems, results):
            print(f"| {scenario} | " + " | ".join(row) + " |")


def print_report(args, results):
    print(f"\n==> results: {args.reps} rep(s); each cell lists every rep's value "
          "(x = run failed), ms cells start with the median")
    for scenario in args.scenarios:
        print(f"\n{TITLES[scenario]}\n  {TARGETS[scenario]}")
        print_table(rows_for(scenario, args.systems, results))
    if args.markdown:
        print()
        print_markdown(args, results)
    print("\nerrors: commands without a success reply (error replies, exceptions raised, "
          "commands lost with a connection); promoted->ack: from the leader's "
          "+promoted-slave to the first acknowledged SET the final master has; acked "
          "writes lost: acknowledged SETs missing on the final master")


def _terminate(signum, frame):
    raise SystemExit(128 + signum)  # unwinds run_once, which stops what it started


def main(argv):
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    os.makedirs(args.workdir, exist_ok=True)
    print(f"==> {args.reps} rep(s) x scenarios {','.join(args.scenarios)} x systems "
          f"{','.join(fm.SYSTEM_NAMES[s] for s in args.systems)}: a fresh topology per run "
          "(1 master, 2 replicas, 3 Sentinels, down-after 1000 ms); client: INCR + SET "
          f"every 2 ms, reply timeout {fm.REPLY_TIMEOUT_S:.0f} s", flush=True)
    results = run_all(args)
    print_report(args, results)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
