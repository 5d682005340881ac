#!/usr/bin/env bash
# bench/throughput.sh: redis-benchmark throughput, direct to Redis vs through redis-tether
# (and through HAProxy in plain TCP mode and twemproxy/nutcracker when installed), in one
# interleaved run. A benchmark, not a test: it prints numbers and always exits 0 unless
# it could not run at all.
#
# Rows: SET and GET x pipeline 1 and 16 x values of 32 B and 1 KiB, 50 clients.
# For each round, for each row, every target runs once (so drift in the machine's speed
# hits all targets alike); the table shows the median rps over the rounds and the ratio
# to direct. -n is calibrated per row from a direct warm-up run so that a direct run
# takes about --seconds.
#
# A second table shows where the CPU went: for each run, the CPU time (user + system, from
# /proc) of redis-benchmark, redis-server and the proxy, per request, medians over the
# rounds. When every core is busy (direct runs take about 1.7-1.9 of 2 cores here), rps can
# reach at most direct's CPU per request over the target's: the "CPU bound" ratio. A
# proxy's ratio below it is time the cores sat idle; at it, only a cheaper proxy helps.
#
# usage: bench/throughput.sh [--rounds N] [--seconds S] [--clients N] [--workers N]
#                            [--pool N] [--mode shared|session] [--install-peers]
#                            [--no-peers] [--markdown] [--csv FILE]
#   --rounds N        rounds (default 3, env BENCH_ROUNDS)
#   --seconds S       target duration of one direct run (default 1.5, env BENCH_SECONDS)
#   --clients N       redis-benchmark -c (default 50)
#   --workers N       redis-tether workers (default 1: the same one thread as Redis,
#                     nutcracker and the HAProxy here)
#   --pool N          redis-tether pool.size (default: the proxy's default)
#   --mode M          redis-tether pool.mode: shared (default) or session
#   --install-peers   apt-get install haproxy and nutcracker when missing
#   --no-peers        benchmark direct and redis-tether only
#   --markdown        also print the table as Markdown
#   --csv FILE        write every single run (round,row,target,n,rps) to FILE
# env: TETHER_BIN=path uses that binary instead of building build-release/.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$TETHER_REPO_ROOT"

ROUNDS=${BENCH_ROUNDS:-3}
SECONDS_PER_RUN=${BENCH_SECONDS:-1.5}
CLIENTS=50
WORKERS=1
POOL=''
MODE=''
INSTALL_PEERS=0
PEERS=1
MARKDOWN=0
CSV_OUT=''
RUN_TIMEOUT=120 # seconds: a single redis-benchmark run is killed past this

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

while (($#)); do
  case $1 in
    --rounds | --seconds | --clients | --workers | --pool | --mode | --csv)
      (($# >= 2)) || tether_die "$1 needs a value (see --help)"
      ;;&
    --rounds) ROUNDS=$2 && shift ;;
    --seconds) SECONDS_PER_RUN=$2 && shift ;;
    --clients) CLIENTS=$2 && shift ;;
    --workers) WORKERS=$2 && shift ;;
    --pool) POOL=$2 && shift ;;
    --mode)
      [[ $2 == shared || $2 == session ]] || tether_die "--mode: shared or session, got '$2'"
      MODE=$2 && shift
      ;;
    --install-peers) INSTALL_PEERS=1 ;;
    --no-peers) PEERS=0 ;;
    --markdown) MARKDOWN=1 ;;
    --csv) CSV_OUT=$2 && shift ;;
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
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || tether_die "--rounds must be a positive integer"
[[ $CLIENTS =~ ^[1-9][0-9]*$ ]] || tether_die "--clients must be a positive integer"
[[ $SECONDS_PER_RUN =~ ^[0-9]+(\.[0-9]+)?$ ]] || tether_die "--seconds must be a number"

WORK=''
cleanup() {
  tether_stop_all
  [[ -n $WORK && -d $WORK ]] && rm -rf "$WORK"
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- setup -----------------------------------------------------------------------------
tether_step "packages and build"
tether_ensure_packages "${TETHER_BUILD_PACKAGES[@]}" "${TETHER_REDIS_PACKAGES[@]}"
if ((PEERS && INSTALL_PEERS)); then
  tether_ensure_packages haproxy nutcracker
fi
tether_build_release

WORK=$(mktemp -d "${TMPDIR:-/tmp}/redis-tether-bench.XXXXXX")

tether_step "start targets"
tether_free_port REDIS_PORT
tether_start_redis "$WORK" "$REDIS_PORT" || tether_die "redis-server did not start"
add_direct

start_tether
if ((PEERS)); then start_peers; fi

# ---- runs ------------------------------------------------------------------------------
ROWS=()
for pipeline in 1 16; do
  for size in 32 1024; do
    for op in SET GET; do ROWS+=("$op $pipeline $size"); done
  done
done

row_label() {
  local op=$1 pipeline=$2 size=$3 unit
  if ((size >= 1024)); then unit="$((size / 1024))KiB"; else unit="${size}B"; fi
  printf '%s P%-2s %s' "$op" "$pipeline" "$unit"
}

# ticks_of PID VAR [CHILDREN]: VAR = the CPU clock ticks (user + system) PID has used; with
# CHILDREN=1, those of its waited-for children instead. Reads /proc with builtins only, so
# that no subshell adds its own ticks. (The processes read here have no space in their name.)
ticks_of() {
  local -a st
  read -r -a st <"/proc/$1/stat" || st=()
  if ((${3:-0})); then
    printf -v "$2" '%d' $((${st[15]:-0} + ${st[16]:-0}))
  else
    printf -v "$2" '%d' $((${st[13]:-0} + ${st[14]:-0}))
  fi
}

# bench_once TARGET OP PIPELINE SIZE N: prints "rps client redis proxy" of one
# redis-benchmark run (the last three: CPU ticks the run cost redis-benchmark, redis-server
# and the proxy; 0 for direct), or nothing when it failed. Runs in a subshell of its own
# (command substitution), so its children's ticks are this run's redis-benchmark's.
bench_once() {
  local target=$1 op=$2 pipeline=$3 size=$4 n=$5 out r0 r1 p0=0 p1=0 client
  tether_alive "${PID[$target]}" || return 0
  ticks_of "${PID[direct]}" r0
  [[ $target == direct ]] || ticks_of "${PID[$target]}" p0
  out=$(timeout "$RUN_TIMEOUT" redis-benchmark -h 127.0.0.1 -p "${PORT[$target]}" \
    -c "$CLIENTS" -n "$n" -P "$pipeline" -d "$size" -t "${op,,}" --csv 2>>"$WORK/benchmark.err") ||
    return 0
  ticks_of "$BASHPID" client 1
  ticks_of "${PID[direct]}" r1
  [[ $target == direct ]] || ticks_of "${PID[$target]}" p1
  # --csv: a header line, then "SET","123456.78","0.383",...
  awk -F'","' -v op="\"$op" -v cpu="$client $((r1 - r0)) $((p1 - p0))" \
    '$1 == op { print $2, cpu; exit }' <<<"$out"
}

# prime SIZE: the key redis-benchmark GETs holds a value of SIZE bytes, as its SET writes.
prime() {
  local value
  value=$(head -c "$1" /dev/zero | tr '\0' x)
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" SET key:__rand_int__ "$value" >/dev/null
}

median() { sort -g | awk '{ v[NR] = $1 } END {
  if (NR == 0) exit; if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

tether_step "calibrate -n (direct, one warm-up run per row, ~${SECONDS_PER_RUN}s per direct run)"
declare -A N # row -> requests per run
for row in "${ROWS[@]}"; do
  read -r op pipeline size <<<"$row"
  [[ $op == GET ]] && prime "$size"
  warm=$((pipeline == 1 ? 20000 : 200000))
  read -r rps _ < <(bench_once direct "$op" "$pipeline" "$size" "$warm") || true
  [[ -n $rps ]] || tether_die "redis-benchmark against redis-server failed: $(tail -n 5 "$WORK/benchmark.err")"
  N[$row]=$(awk -v r="$rps" -v s="$SECONDS_PER_RUN" 'BEGIN {
    n = int(r * s / 1000) * 1000; if (n < 10000) n = 10000; if (n > 10000000) n = 10000000; print n }')
  printf '  %-14s warm-up %10.0f rps -> -n %s\n' "$(row_label "$op" "$pipeline" "$size")" "$rps" "${N[$row]}"
done

declare -A RESULTS # "row|target" -> newline-separated rps values
declare -A CPU     # "row|target|client", "...|redis", "...|proxy" -> newline-separated us/request
HZ=$(getconf CLK_TCK)
[[ -n $CSV_OUT ]] && echo "round,op,pipeline,size,target,n,rps,client_ticks,redis_ticks,proxy_ticks" >"$CSV_OUT"
runs=$((ROUNDS * ${#ROWS[@]} * ${#TARGETS[@]}))
tether_step "benchmark: $ROUNDS rounds x ${#ROWS[@]} rows x ${#TARGETS[@]} targets = $runs runs, $CLIENTS clients"
start=$(tether_now)
for ((round = 1; round <= ROUNDS; round++)); do
  printf '  round %d/%d:' "$round" "$ROUNDS"
  for row in "${ROWS[@]}"; do
    read -r op pipeline size <<<"$row"
    [[ $op == GET ]] && prime "$size"
    for target in "${TARGETS[@]}"; do
      rps='' ticks_client='' ticks_redis='' ticks_proxy=''
      read -r rps ticks_client ticks_redis ticks_proxy \
        < <(bench_once "$target" "$op" "$pipeline" "$size" "${N[$row]}") || true
      if [[ -n $rps ]]; then
        RESULTS["$row|$target"]+="$rps"$'\n'
        for part in client redis proxy; do
          ticks="ticks_$part"
          CPU["$row|$target|$part"]+="$(awk -v t="${!ticks}" -v hz="$HZ" -v n="${N[$row]}" \
            'BEGIN { printf "%.3f", t * 1e6 / hz / n }')"$'\n'
        done
      else
        printf ' [%s failed on %s]' "$target" "$(row_label "$op" "$pipeline" "$size")"
      fi
      [[ -n $CSV_OUT ]] &&
        echo "$round,$op,$pipeline,$size,$target,${N[$row]},${rps:-},${ticks_client:-},${ticks_redis:-},${ticks_proxy:-}" >>"$CSV_OUT"
    done
    printf '.'
  done
  printf ' %s\n' "$(tether_fmt_duration $(($(tether_now) - start)))"
done

for target in "${TARGETS[@]}"; do
  if ! tether_alive "${PID[$target]}"; then
    tether_warn "$target exited during the benchmark; last lines of ${LOG[$target]}:"
    tail -n 10 "${LOG[$target]}" >&2 || true
  fi
done

# ---- table -----------------------------------------------------------------------------
group() { sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$1"; } # 1234567 -> 1,234,567
cell() {                                                 # rps [ratio] -> "123,456 (0.95x)"
  if [[ -z $1 ]]; then
    echo "-"
  elif [[ -z ${2:-} ]]; then
    group "${1%.*}"
  else
    echo "$(group "${1%.*}") (${2}x)"
  fi
}

# table_header UNIT: the first row of a table, one column per target.
table_header() {
  local header="row (op, pipeline, value)" target
  for target in "${TARGETS[@]}"; do header+="|${NAMES[$target]} $1"; done
  echo "$header"
}

declare -a TABLE=("$(table_header rps)")
for row in "${ROWS[@]}"; do
  read -r op pipeline size <<<"$row"
  line="$(row_label "$op" "$pipeline" "$size")"
  direct=$(printf '%s' "${RESULTS["$row|direct"]:-}" | median)
  for target in "${TARGETS[@]}"; do
    med=$(printf '%s' "${RESULTS["$row|$target"]:-}" | median)
    if [[ $target == direct || -z $med || -z $direct ]]; then
      line+="|$(cell "$med")"
    else
      line+="|$(cell "$med" "$(awk -v a="$med" -v b="$direct" 'BEGIN { printf "%.2f", a / b }')")"
    fi
  done
  TABLE+=("$line")
done

tether_step "results: median of $ROUNDS rounds, requests per second (ratio to direct)"
print_table "$MARKDOWN" "${TABLE[@]}"
echo

# CPU per request: "total (client + redis + proxy) bound" where bound = direct total / total.
declare -a CPU_TABLE=("$(table_header us/request)")
for row in "${ROWS[@]}"; do
  read -r op pipeline size <<<"$row"
  line="$(row_label "$op" "$pipeline" "$size")"
  direct_total=''
  for target in "${TARGETS[@]}"; do
    parts=()
    for part in client redis proxy; do
      parts+=("$(printf '%s' "${CPU["$row|$target|$part"]:-}" | median)")
    done
    if [[ -z ${parts[0]} ]]; then
      line+="|-"
      continue
    fi
    total=$(awk -v a="${parts[0]}" -v b="${parts[1]}" -v c="${parts[2]}" 'BEGIN { printf "%.2f", a + b + c }')
    if [[ $target == direct ]]; then
      direct_total=$total
      line+="|$(printf '%s (%.2f + %.2f)' "$total" "${parts[0]}" "${parts[1]}")"
    else
      cell=$(printf '%s (%.2f + %.2f + %.2f)' "$total" "${parts[0]}" "${parts[1]}" "${parts[2]}")
      [[ -n $direct_total ]] &&
        cell+=$(awk -v d="$direct_total" -v t="$total" 'BEGIN { if (t > 0) printf " %.2fx", d / t }')
      line+="|$cell"
    fi
  done
  CPU_TABLE+=("$line")
done
tether_step "CPU per request: total (redis-benchmark + redis-server [+ proxy]) us, CPU bound ratio"
print_table "$MARKDOWN" "${CPU_TABLE[@]}"
echo
tether_say "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')); every process (redis-benchmark, redis-server, the proxy) shares them"
tether_say "command: bench/throughput.sh --rounds $ROUNDS --seconds $SECONDS_PER_RUN --clients $CLIENTS --workers $WORKERS${POOL:+ --pool $POOL}${MODE:+ --mode $MODE}"
