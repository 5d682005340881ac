#!/usr/bin/env bash
# bench/failover.sh: what a client sees during a Redis Sentinel failover, through
# redis-tether, through HAProxy, and with python3-redis's own Sentinel client, measured in
# one run on the same kind of topology. A benchmark, not a test: it prints tables and
# exits 0 unless it could not run at all.
#
# Each run: a fresh 1 master + 2 replicas + 3 Sentinels on loopback (down-after 1000 ms,
# tests/integration/sentinel_topology.py), the system in front, a client doing INCR +
# SET k:i every 2 ms (tests/integration/write_recorder.py), one fault, then the failover
# is left to settle (including the old master becoming a replica). Scenarios:
#   kill     SIGKILL of the master
#   stop     SIGSTOP of the master past down-after, SIGCONT after the switch
#   planned  SENTINEL FAILOVER
# Systems:
#   tether    redis-tether in Sentinel mode
#   haproxy   HAProxy (TCP) in front of all three nodes with the usual health check:
#             tcp-check PING, `info replication`, expect `role:master`, check inter 1s
#   sentinel  redis.sentinel.Sentinel(...).master_for("mymaster") in the client itself
#   tether-session  redis-tether with pool.mode: session (not in the default list)
# Per scenario and system it prints: errors the client saw, disconnects, ms from the
# promotion (the leader's +promoted-slave) to the first acknowledged write, acknowledged
# writes lost; and whether the target was met (planned: 0 errors, 0 disconnects, 0 lost;
# kill: 0 disconnects and the first acknowledged write within 50 ms of the promotion).
# A run takes 15-25 s: --reps 3 with everything is about 10 minutes.
#
# usage: bench/failover.sh [--reps N] [--scenarios LIST] [--systems LIST] [--markdown]
#   --reps N          repetitions of every scenario x system (default 3)
#   --scenarios LIST  comma-separated, from kill,stop,planned (default: all)
#   --systems LIST    comma-separated, from tether,haproxy,sentinel,tether-session
#                     (default: tether,haproxy,sentinel)
#   --markdown        also print the results as one Markdown table
# env: TETHER_BIN=path uses that binary instead of building build-release/.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$TETHER_REPO_ROOT"

REPS=3
SCENARIOS=kill,stop,planned
SYSTEMS=tether,haproxy,sentinel
MARKDOWN=0
PYTHON=/usr/bin/python3 # Debian's, with python3-redis and python3-pytest

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

while (($#)); do
  case $1 in
    --reps | --scenarios | --systems)
      (($# >= 2)) || tether_die "$1 needs a value (see --help)"
      ;;&
    --reps) REPS=$2 && shift ;;
    --scenarios) SCENARIOS=$2 && shift ;;
    --systems) SYSTEMS=$2 && shift ;;
    --markdown) MARKDOWN=1 ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      echo "unknown option: $1 (see --help)" >&2
      exit 2
      ;;
  esac
  shift
done
[[ $REPS =~ ^[1-9][0-9]*$ ]] || tether_die "--reps must be a positive integer"
[[ $SCENARIOS =~ ^(kill|stop|planned)(,(kill|stop|planned))*$ ]] ||
  tether_die "--scenarios: a comma-separated list of kill, stop, planned"
[[ $SYSTEMS =~ ^(tether|haproxy|sentinel|tether-session)(,(tether|haproxy|sentinel|tether-session))*$ ]] ||
  tether_die "--systems: a comma-separated list of tether, haproxy, sentinel, tether-session"

WORK=''
cleanup() {
  tether_stop_all
  [[ -n $WORK && -d $WORK ]] && rm -rf "$WORK"
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

tether_step "packages and build"
packages=("${TETHER_BUILD_PACKAGES[@]}" "${TETHER_REDIS_PACKAGES[@]}" redis-sentinel
  python3 python3-redis python3-pytest)
[[ ,$SYSTEMS, == *,haproxy,* ]] && packages+=(haproxy)
tether_ensure_packages "${packages[@]}"
tether_build_release
export TETHER_BIN

WORK=$(mktemp -d "${TMPDIR:-/tmp}/redis-tether-failover.XXXXXX")
versions="redis $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')"
versions+=", $("$TETHER_BIN" --version 2>/dev/null || echo redis-tether)"
[[ ,$SYSTEMS, == *,haproxy,* ]] && versions+=", haproxy $(haproxy -v | head -n1 | awk '{print $3}')"
tether_step "failover benchmark ($versions)"
args=(--workdir "$WORK" --reps "$REPS" --scenarios "$SCENARIOS" --systems "$SYSTEMS")
((MARKDOWN)) && args+=(--markdown)
# In the background and waited for, so that the INT/TERM trap runs at once (it stops the
# driver by PID; the driver ends what it started, which also dies with it: setpriv
# --pdeathsig). Its output goes straight to ours.
PYTHONDONTWRITEBYTECODE=1 "$PYTHON" -u bench/failover_bench.py "${args[@]}" </dev/null &
DRIVER_PID=$!
TETHER_PIDS+=("$DRIVER_PID")
status=0
wait "$DRIVER_PID" || status=$?
_tether_forget_pid "$DRIVER_PID" # reaped: never signal its PID again
((status == 0)) || tether_die "the benchmark driver failed (exit status $status)"
echo
tether_say "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')); every process shares them"
tether_say "command: bench/failover.sh --reps $REPS --scenarios $SCENARIOS --systems $SYSTEMS$( ((MARKDOWN)) && echo ' --markdown')"
