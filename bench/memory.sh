#!/usr/bin/env bash
# bench/memory.sh: memory per client connection, redis-server itself vs redis-tether (and
# HAProxy in plain TCP mode and twemproxy/nutcracker when installed), in one run. A
# benchmark, not a test: it prints numbers and exits 0 unless it could not run at all.
#
# Each target, fresh, gets --clients connections that each answer a PING (idle), then
# every connection writes --pipeline SETs of --value bytes before reading any reply (busy),
# then all close. The table shows the target's resident memory (from /proc/PID/status):
# per idle connection, per busy connection at the peak, and what is left 12 s after the close,
# with the per-connection figures' ratio to redis-server's own.
#
# usage: bench/memory.sh [--clients N] [--pipeline N] [--value BYTES] [--workers N]
#                        [--no-peers] [--markdown]
#   --clients N    connections per target (default 2000)
#   --pipeline N   SETs in flight per connection in the busy phase (default 16)
#   --value BYTES  SET value size (default 1024)
#   --workers N    redis-tether workers (default 1)
#   --no-peers     measure direct and redis-tether only
#   --markdown     also print the table as Markdown
# env: TETHER_BIN=path uses that binary instead of building build-release/.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$TETHER_REPO_ROOT"

CLIENTS=2000
PIPELINE=16
VALUE=1024
WORKERS=1
POOL=''
PEERS=1
MARKDOWN=0

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

while (($#)); do
  case $1 in
    --clients | --pipeline | --value | --workers)
      (($# >= 2)) || tether_die "$1 needs a value (see --help)"
      ;;&
    --clients) CLIENTS=$2 && shift ;;
    --pipeline) PIPELINE=$2 && shift ;;
    --value) VALUE=$2 && shift ;;
    --workers) WORKERS=$2 && shift ;;
    --no-peers) PEERS=0 ;;
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
for v in CLIENTS PIPELINE VALUE WORKERS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || tether_die "--${v,,} must be a positive integer"
done

WORK=''
cleanup() {
  tether_stop_all
  [[ -n $WORK && -d $WORK ]] && rm -rf "$WORK"
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

tether_step "packages and build"
tether_ensure_packages "${TETHER_BUILD_PACKAGES[@]}" "${TETHER_REDIS_PACKAGES[@]}" python3-redis
tether_build_release
# Every target and the load script need a descriptor per connection, plus some (HAProxy
# wants 2 x its maxconn of 4096 at start).
ulimit -n $((CLIENTS * 2 + 10000)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/redis-tether-memory.XXXXXX")
tether_step "start targets"
tether_free_port REDIS_PORT
tether_start_redis "$WORK" "$REDIS_PORT" || tether_die "redis-server did not start"
redis-cli -h 127.0.0.1 -p "$REDIS_PORT" CONFIG SET maxclients $((CLIENTS * 2 + 100)) >/dev/null
add_direct
start_tether
if ((PEERS)); then start_peers; fi

declare -A FIG # "target|base|idle|busy|closed" -> KiB
tether_step "measure: $CLIENTS connections per target, $PIPELINE x SET of $VALUE B in flight each"
for target in "${TARGETS[@]}"; do
  out=$(/usr/bin/python3 bench/memory_load.py --port "${PORT[$target]}" --pid "${PID[$target]}" \
    --clients "$CLIENTS" --pipeline "$PIPELINE" --value "$VALUE" 2>"$WORK/load-$target.err") || {
    tether_warn "$target: the load failed: $(tail -n 3 "$WORK/load-$target.err")"
    continue
  }
  tether_say "  ${NAMES[$target]}: $out"
  for kv in $out; do FIG["$target|${kv%%=*}"]=${kv#*=}; done
  # A target measured is stopped, so the next one has the machine to itself.
  [[ $target == direct ]] || tether_stop_pid "${PID[$target]}"
done

# ---- table -----------------------------------------------------------------------------
per_conn() { awk -v a="$1" -v b="$2" -v n="$CLIENTS" 'BEGIN { printf "%.1f", (a - b) / n }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
ratio() { [[ -z $2 ]] || awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf " (%.2fx)", a / b }'; }
declare -a TABLE=("target|RSS at start MiB|KiB per idle connection|KiB per busy connection (peak)|RSS 12 s after close MiB")
d_idle=''
d_busy=''
for target in "${TARGETS[@]}"; do
  [[ -n ${FIG["$target|base"]:-} ]] || continue
  base=${FIG["$target|base"]}
  idle=$(per_conn "${FIG["$target|idle"]}" "$base")
  busy=$(per_conn "${FIG["$target|busy"]}" "$base")
  if [[ $target == direct ]]; then
    d_idle=$idle d_busy=$busy
    TABLE+=("${NAMES[$target]}|$(mib "$base")|$idle|$busy|$(mib "${FIG["$target|closed"]}")")
  else
    TABLE+=("${NAMES[$target]}|$(mib "$base")|$idle$(ratio "$idle" "$d_idle")|$busy$(ratio "$busy" "$d_busy")|$(mib "${FIG["$target|closed"]}")")
  fi
done

tether_step "results: resident memory (ratio to redis-server's own per-connection figure)"
print_table "$MARKDOWN" "${TABLE[@]}"
echo
tether_say "redis-server's figures include its own per-client buffers; a proxy's add to them (the proxy's upstream connections are few and shared)"
tether_say "command: bench/memory.sh --clients $CLIENTS --pipeline $PIPELINE --value $VALUE --workers $WORKERS"
