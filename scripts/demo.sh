#!/usr/bin/env bash
# scripts/demo.sh: the job redis-tether does, end to end, in about a minute (after a build):
# a Sentinel-managed Redis fails over twice under a live client, through redis-tether.
#
#   1. installs the Debian packages that are missing (nothing when none is)
#   2. builds redis-tether (Release, build-release/) if needed
#   3. starts 1 master + 2 replicas + 3 Sentinels on loopback (down-after 1000 ms) and
#      redis-tether in Sentinel mode on 127.0.0.1:6379 (a free port when 6379 is taken)
#   4. runs a client through the proxy (INCR + SET k:<i> every 2 ms on one connection)
#      that prints once a second what it got: ok, errors by code, disconnects
#   5. SIGKILLs the master (then restarts it: it rejoins as a replica), then runs a
#      planned failover (SENTINEL FAILOVER)
#   6. sums up what the client saw in each failover: errors, disconnects, acknowledged
#      writes lost, ms from +promoted-slave to the first acknowledged write
#   7. stops everything it started, by PID, and removes its temp dir; with --keep it
#      leaves everything running instead and prints how to stop it (one command)
#
# usage: scripts/demo.sh [--keep]
# env: TETHER_BIN=path (use this binary, do not build)
# The driver of steps 3-7 is scripts/demo_failover.py (Debian's /usr/bin/python3); it
# reuses the integration tests' fixture (tests/integration/sentinel_topology.py).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$TETHER_REPO_ROOT"

KEEP=0
PYTHON=/usr/bin/python3 # Debian's, with python3-redis and python3-pytest
DRIVER_BOUND=300        # seconds: the driver normally needs about 60-90

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

while (($#)); do
  case $1 in
    --keep) KEEP=1 ;;
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

WORK=''
DRIVER_PID=''
KEPT=0
cleanup() {
  # With --keep and the demo done, the driver holds everything: leave it alone.
  ((KEPT)) && return 0
  if [[ -n $DRIVER_PID ]]; then
    # SIGTERM: the driver stops everything it started, by PID (and they die with it).
    tether_stop_pid "$DRIVER_PID" 30
  fi
  tether_stop_all
  [[ -n $WORK && -d $WORK ]] && rm -rf "$WORK"
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# running PID: true while PID runs (a zombie, exited but not yet reaped, does not).
running() {
  local state
  state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z ]]
}

tether_step "1/4 Debian packages"
tether_ensure_packages "${TETHER_BUILD_PACKAGES[@]}" "${TETHER_REDIS_PACKAGES[@]}" \
  redis-sentinel python3 python3-redis python3-pytest

tether_step "2/4 build"
tether_build_release
export TETHER_BIN

tether_step "3/4 ports"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/redis-tether-demo.XXXXXX")
tether_free_port PROXY_PORT 6379
tether_free_port ADMIN_PORT
tether_say "redis-tether will listen on 127.0.0.1:$PROXY_PORT, admin (/metrics) on 127.0.0.1:$ADMIN_PORT"
if [[ $PROXY_PORT != 6379 ]]; then
  tether_say "(127.0.0.1:6379 is taken on this machine, so the proxy listens on $PROXY_PORT)"
fi
tether_say "Redis nodes and Sentinels get free loopback ports; temp dir $WORK"

args=(--workdir "$WORK" --port "$PROXY_PORT" --admin-port "$ADMIN_PORT")
((KEEP)) && args+=(--keep)
# In the background (its output straight to ours) so that INT/TERM reach the trap at
# once; with --keep it stays after this script, holding everything it started.
PYTHONDONTWRITEBYTECODE=1 "$PYTHON" -u scripts/demo_failover.py "${args[@]}" </dev/null &
DRIVER_PID=$!

start=$(tether_now)
while running "$DRIVER_PID" && [[ ! -e $WORK/kept.txt ]]; do
  if (($(tether_now) - start > DRIVER_BOUND)); then
    tether_die "the demo did not finish within ${DRIVER_BOUND}s; stopping it"
  fi
  sleep 0.2
done

tether_step "4/4 done"
if [[ -e $WORK/kept.txt ]]; then
  KEPT=1
  cat "$WORK/kept.txt"
  tether_ok "demo finished: everything is left running (--keep)"
  exit 0
fi
status=0
wait "$DRIVER_PID" || status=$?
DRIVER_PID='' # reaped: never signal its PID again
((status == 0)) || tether_die "the demo failed (exit status $status); see above"
rm -rf "$WORK"
tether_ok "demo finished: everything it started is stopped and its temp dir removed"
