"""The failover part of scripts/demo.sh (run that; it installs, builds and passes ports).

    demo.sh ─► demo_failover.py --workdir DIR --port P --admin-port A [--keep]
      1. 1 master + 2 replicas + 3 Sentinels on loopback, down-after 1000 ms
         (tests/integration/sentinel_topology.py)
      2. redis-tether in Sentinel mode on 127.0.0.1:P, admin on A
      3. a client through it: INCR + SET k:<i> every 2 ms on one connection
         (tests/integration/write_recorder.py); once a second a line of what it got,
         and the Sentinel events of that second
      4. SIGKILL of the master; the old master restarted, it rejoins as a replica
      5. SENTINEL FAILOVER (planned)
      6. what the client saw, per failover

Every process is started by this one (setpriv --pdeathsig: they die with it) and ended
by PID. With --keep, after the summary DIR/kept.txt tells how to stop everything, the
output moves to DIR/driver.log, and it all keeps running until this process gets
SIGTERM or SIGINT; then it stops everything and removes DIR.
"""

import argparse
import os
import re
import shutil
import signal
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "bench"))

import failover_measure as fm  # noqa: E402  (also puts tests/integration on sys.path)
from sentinel_topology import SentinelTopology  # noqa: E402
from write_recorder import WriteRecorder  # noqa: E402

BOLD, RESET = ("\033[1m", "\033[0m") if sys.stdout.isatty() else ("", "")
STEADY_S = 3.0  # client traffic before the first fault and after each one
REPLY_TIMEOUT_S = 20.0  # above the proxy's hold.timeout (15 s): a held command is answered
SHOWN_EVENTS = ("+sdown", "-sdown", "+odown", "+try-failover", "+elected-leader",
                "+promoted-slave", "+switch-master", "+convert-to-slave", "+failover-end")


def step(text):
    print(f"\n{BOLD}==> {text}{RESET}", flush=True)


def say(text):
    print(text, flush=True)


class Names:
    """Replaces node and Sentinel addresses in text with names (node0, sentinel0...)."""

    def __init__(self, topo):
        self.map = {n.address[1]: n.name for n in topo.nodes}
        self.map.update({s.port: f"sentinel{s.index}" for s in topo.sentinels})

    def __call__(self, text):
        def name(m):
            return self.map.get(int(m.group(2)), m.group(0))
        named = re.sub(r"(127\.0\.0\.1[ :])(\d+)", name, text)
        # "slave 127.0.0.1:6380 127.0.0.1 6380 @ ..." names the instance twice
        return re.sub(r"\b(node\d) \1\b", r"\1", named)

    def of(self, addr):
        return self.map.get(addr[1], f"{addr[0]}:{addr[1]}")


# ---------------------------------------------------------------------------------------
# Once a second: what the client got


class LiveReport:
    """A thread printing, once a second, the client's replies of that second (ok, errors
    by code, disconnects) and the Sentinel events read in it. It only reads the recorder
    and the event log; it starts and stops nothing."""

    def __init__(self, rec, topo, names):
        self.rec, self.topo, self.names = rec, topo, names
        self.t0 = time.monotonic()
        self.master = names.of(topo.nodes[0].address)
        self.seen = 0
        self.disconnects = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="live-report")

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(5)

    def _run(self):
        last = time.monotonic()
        while not self._stop.wait(max(0.0, last + 1.0 - time.monotonic())):
            now = time.monotonic()
            self._line(last, now)
            last = now

    def _line(self, t_from, t_to):
        records = self.rec.snapshot()
        new, self.seen = records[self.seen:], len(records)
        ok = sum(1 for r in new if r.outcome == "ok")
        bad = {}
        for r in new:
            if r.outcome != "ok":
                key = r.value if r.outcome == "error" else r.outcome
                bad[key] = bad.get(key, 0) + 1
        drops = sum(1 for _, kind, _ in list(self.rec.conn_events)
                    if kind in ("disconnect", "eof_idle"))
        events = self._events(t_from, t_to)
        errors = ", ".join(f"{k} {n}" for k, n in bad.items()) or "-"
        say(f"  {t_to - self.t0:5.0f}s  ok {ok:4d}  errors {errors:<18} "
            f"disconnects {drops - self.disconnects}  (master {self.master})")
        self.disconnects = drops
        for line in events:
            say(f"          Sentinel {line}")

    def _events(self, t_from, t_to):
        seen = {}
        for e in self.topo.events.snapshot(t_from):
            if e.t < t_to and e.name in SHOWN_EVENTS:
                seen.setdefault((e.name, e.payload), set()).add(e.sentinel)
                if e.name == "+switch-master":
                    self.master = self.names.of(e.switch_addrs()[1])
        return [f"{name} {self.names(payload)}"
                + (f"  (from {len(who)} Sentinels)" if len(who) > 1 else "")
                for (name, payload), who in seen.items()]


# ---------------------------------------------------------------------------------------
# The two failovers


def kill_failover(topo, names):
    step("SIGKILL the master (a crashed host); Sentinel promotes a replica")
    fo = fm.inject(topo, "kill")
    say(f"  killed {fo.old.name} (pid {fo.old.proc.pid})")
    fm.follow(topo, fo, on_switch=lambda sw: say(
        f"  +switch-master: {names.of(sw.old)} -> {names.of(sw.new)}"))
    say(f"  restarting {fo.old.name}: it comes back saying 'master' until Sentinel "
        "converts it to a replica; redis-tether must not write to it")
    topo.restart_node(fo.old)
    t = time.monotonic()
    topo.wait_role(fo.old, "slave", fo.final, fm.DEMOTE_BOUND_S)
    say(f"  {fo.old.name} is a replica of {names.of(fo.final)} "
        f"{time.monotonic() - t:.1f} s after its restart")
    topo.wait_healthy(fo.final, fm.DEMOTE_BOUND_S)
    return fo


def planned_failover(topo, names):
    step("SENTINEL FAILOVER mymaster (planned: maintenance, an upgrade)")
    fo = fm.inject(topo, "planned")
    say(f"  asked sentinel0 to fail {fo.old.name} over")
    fm.follow(topo, fo, on_switch=lambda sw: say(
        f"  +switch-master: {names.of(sw.old)} -> {names.of(sw.new)}; "
        f"{fo.old.name} keeps running until Sentinel makes it a replica"))
    say(f"  {fo.old.name} is a replica of {names.of(fo.final)}")
    return fo


# ---------------------------------------------------------------------------------------
# Summary


def summarize(rec, tether, windows, names):
    step("what the client saw")
    v = rec.verify(windows[-1][1].final)
    cols = [(title, fm.window_stats(rec.records, v, lo, hi, fo.t_promoted), fo)
            for title, fo, lo, hi in windows_with_bounds(windows)]
    span = rec.records[-1].t_done - rec.records[0].t_sent
    say(f"  one connection through redis-tether, INCR + SET k:<i> every 2 ms: "
        f"{len(rec.records):,} commands in {span:.0f} s, final master "
        f"{names.of(v.node)}")
    rows = [("errors", lambda s: f"{s.errors}" + (f" ({s.kinds_text()})" if s.errors else "")),
            ("disconnects", lambda s: str(s.disconnects)),
            ("acknowledged writes lost", lambda s: str(s.lost)),
            ("+promoted-slave -> first ack", lambda s: fmt_ms(s.promoted_ack_ms))]
    table = [[""] + [c[0] for c in cols]]
    table += [[label] + [show(c[1]) for c in cols] for label, show in rows]
    widths = [max(len(row[k]) for row in table) for k in range(len(table[0]))]
    for row in table:
        say("  " + row[0].ljust(widths[0])
            + "".join(f"   {cell:>{w}}" for cell, w in zip(row[1:], widths[1:])))
    for title, _, fo in cols:
        if len(fo.switches) > 1:
            say(f"  ({title}: Sentinel failed over {len(fo.switches)} times in a row)")
        for note in fo.notes:
            say(f"  ({title}: {note})")
    say("  (a SIGKILL can lose SETs the dead master acknowledged and never replicated; "
        "no proxy can get those back)")
    proxy_view(tether)
    return v


def windows_with_bounds(windows):
    """[(title, Failover, lo, hi)]: each failover's commands are those sent until the
    next fault, from the previous one (the first: from the start, so that writes the
    killed master acknowledged and never replicated count; the last: until the end)."""
    out = []
    for k, (title, fo) in enumerate(windows):
        lo = fo.t_fault if k else None
        hi = windows[k + 1][1].t_fault if k + 1 < len(windows) else None
        out.append((title, fo, lo, hi))
    return out


def fmt_ms(value):
    return "-" if value is None else f"{value:.0f} ms"


def proxy_view(tether):
    m = tether.proxy.metrics()
    closed = int(m.get("redis_tether_client_connections_closed_total") or 0)
    errors = {dict(ls).get("code"): int(v) for (n, ls), v in m.series.items()
              if n == "redis_tether_error_replies_total" and v}
    say(f"  redis-tether's own count: client connections it closed {closed}, error "
        f"replies {errors or 0}; its log on the switches:")
    for line in tether.proxy.log().splitlines():
        if re.search(r"event=(master_switch|hold_started|hold_ended|failover_attempt)", line):
            say("    " + line[:160])


# ---------------------------------------------------------------------------------------
# --keep


def keep_running(args, topo, tether):
    """Writes DIR/kept.txt (how to stop), moves stdout/stderr to DIR/driver.log and waits
    for SIGTERM/SIGINT (SIGHUP ignored: it outlives the terminal, like nohup)."""
    master = topo.current_master()
    lines = [
        "left running (demo.sh --keep):",
        f"  redis-tether  127.0.0.1:{args.port} (pid {tether.proxy.proc.pid}); metrics "
        f"http://127.0.0.1:{args.admin_port}/metrics; log {tether.proxy.log_path}",
        f"  master        {master.name} 127.0.0.1:{master.port} (pid {master.proc.pid})",
    ]
    lines += [f"  replica       {n.name} 127.0.0.1:{n.port} (pid {n.proc.pid})"
              for n in topo.nodes if n is not master]
    lines += [f"  Sentinel      sentinel{s.index} 127.0.0.1:{s.port} (pid {s.proc.pid})"
              for s in topo.sentinels]
    s0 = topo.sentinels[0].port
    lines += [
        "try:",
        f"  redis-cli -p {args.port} INCR demo:counter",
        f"  redis-cli -p {s0} SENTINEL FAILOVER mymaster   # another planned failover",
        f"  redis-cli -p {s0} SENTINEL get-master-addr-by-name mymaster",
        "stop it all (each process by PID, then the temp dir is removed):",
        f"  kill {os.getpid()}",
        f"(by hand instead: kill {' '.join(str(p) for p in all_pids(topo, tether))}; "
        f"rm -rf {args.workdir})",
    ]
    kept = os.path.join(args.workdir, "kept.txt")
    with open(kept + ".tmp", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(kept + ".tmp", kept)
    sys.stdout.flush()
    sys.stderr.flush()
    log = os.open(os.path.join(args.workdir, "driver.log"),
                  os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    while True:
        time.sleep(3600)


def all_pids(topo, tether):
    procs = [tether.proxy.proc] + [s.proc for s in topo.sentinels] + [n.proc for n in topo.nodes]
    return [p.pid for p in procs if p is not None and p.poll() is None]


# ---------------------------------------------------------------------------------------


def parse_args(argv):
    p = argparse.ArgumentParser(prog="demo_failover.py")
    p.add_argument("--workdir", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--admin-port", type=int, required=True)
    p.add_argument("--keep", action="store_true")
    return p.parse_args(argv)


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


def start(args):
    step("start 1 master, 2 replicas, 3 Sentinels (down-after 1000 ms) on loopback")
    topo = SentinelTopology(os.path.join(args.workdir, "topology"))
    topo.start()
    names = Names(topo)
    for n in topo.nodes:
        say(f"  {n.name} 127.0.0.1:{n.port} (pid {n.proc.pid}) "
            f"{'master' if n is topo.nodes[0] else 'replica'}")
    say("  Sentinels " + ", ".join(f"127.0.0.1:{s.port} (pid {s.proc.pid})"
                                   for s in topo.sentinels))
    return topo, names


def start_tether(args, topo):
    step(f"start redis-tether in Sentinel mode on 127.0.0.1:{args.port}")
    tether = fm.TetherSystem(topo, args.workdir, args.port, args.admin_port)
    tether.start()
    say(f"  {tether.describe()}:")
    with open(tether.proxy.config_path) as f:
        for line in f:
            say("    " + line.rstrip())
    return tether


def run(args, parts):
    topo, names = start(args)
    parts["topo"] = topo
    parts["tether"] = tether = start_tether(args, topo)
    step("a client through redis-tether: INCR + SET k:<i> every 2 ms; every second, "
         "what it got")
    rec = WriteRecorder(tether.proxy.address, max_seconds=600,
                        reply_timeout=REPLY_TIMEOUT_S).start()
    parts["rec"] = rec
    rec.wait_acked(fm.WARM_ACKS)
    live = parts["live"] = LiveReport(rec, topo, names).start()
    time.sleep(STEADY_S)
    windows = []
    for title, failover in (("SIGKILL", kill_failover), ("planned", planned_failover)):
        windows.append((title, failover(topo, names)))
        time.sleep(STEADY_S)
    rec.stop()
    live.stop()
    summarize(rec, tether, windows, names)
    if args.keep:
        keep_running(args, topo, tether)


def stop_all(parts, args):
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)  # cleanup is bounded; let it finish
    if "live" in parts:
        parts["live"].stop()
    if "rec" in parts:
        parts["rec"].stop()
    if "tether" in parts:
        problems = parts["tether"].stop()
        for p in problems:
            say(f"  redis-tether: {p}")
    if "topo" in parts:
        parts["topo"].stop()
    if args.keep:
        shutil.rmtree(args.workdir, ignore_errors=True)


def main(argv):
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    parts = {}
    try:
        run(args, parts)
        return 0
    except (TimeoutError, RuntimeError, AssertionError) as e:
        say(f"demo failed: {type(e).__name__}: {e}")
        if "topo" in parts and parts["topo"].events is not None:
            say(parts["topo"].logs(lines=20))
        return 1
    finally:
        stop_all(parts, args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
