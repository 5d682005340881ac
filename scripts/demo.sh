#!/usr/bin/env bash
# scripts/demo.sh: see redis-tether work, from nothing, in about a minute.
#
#   1. installs the Debian packages that are missing (nothing when none is)
#   2. builds redis-tether (Release, build-release/) if needed
#   3. starts a throwaway redis-server on a free loopback port, and redis-tether in front
#      of it on 127.0.0.1:6379 (or a free port when 6379 is taken)
#   4. runs clients through the proxy: redis-cli SET/GET/INCR, a raw pipeline, a
#      10,000-command redis-cli --pipe, and a short redis-benchmark
#   5. shows the proxy's log and an excerpt of its Prometheus /metrics
#   6. stops everything it started (by PID) and removes its temp dir
#
# Environment: TETHER_BIN=path (use this binary, do not build), TETHER_KEEP=1 (keep the
# temp dir with the config and logs).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$TETHER_REPO_ROOT"

WORK=''
DEMO_OK=0
cleanup() {
  tether_stop_all
  if [[ -n $WORK && -d $WORK ]]; then
    if [[ ${TETHER_KEEP:-} == 1 || $DEMO_OK != 1 ]]; then
      tether_say "config and logs kept in $WORK"
    else
      rm -rf "$WORK"
    fi
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# show CMD...: prints "$ CMD" then runs it, indenting its output.
show() {
  local a shown=''
  for a in "$@"; do
    if [[ $a == *' '* ]]; then shown+=" \"$a\""; else shown+=" $a"; fi
  done
  printf '  $%s\n' "$shown"
  "$@" 2>&1 | sed 's/^/    /'
}

# resp ARG...: one command in RESP multibulk form (what real clients send).
resp() {
  printf '*%d\r\n' "$#"
  local a
  for a in "$@"; do printf '$%d\r\n%s\r\n' "${#a}" "$a"; done
}

tether_step "1/6 Debian packages"
tether_ensure_packages "${TETHER_BUILD_PACKAGES[@]}" "${TETHER_REDIS_PACKAGES[@]}"

tether_step "2/6 build"
tether_build_release

tether_step "3/6 start redis-server and redis-tether"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/redis-tether-demo.XXXXXX")
tether_free_port REDIS_PORT
tether_free_port PROXY_PORT 6379
tether_free_port ADMIN_PORT
tether_start_redis "$WORK" "$REDIS_PORT" || tether_die "redis-server did not start"
REDIS_PID=$TETHER_LAST_PID
tether_say "redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') (pid $REDIS_PID) on 127.0.0.1:$REDIS_PORT"

CONFIG="$WORK/redis-tether.yaml"
cat >"$CONFIG" <<EOF
# written by scripts/demo.sh
log_level: info
workers: 1
admin:
  listen: 127.0.0.1:$ADMIN_PORT
services:
  - name: main
    listen: 127.0.0.1:$PROXY_PORT
    upstream: 127.0.0.1:$REDIS_PORT
    pool:
      size: 2
EOF
tether_say "config $CONFIG:"
sed 's/^/    /' "$CONFIG"
show "$TETHER_BIN" --config "$CONFIG" --check-config || tether_die "--check-config rejected the demo config"

PROXY_LOG="$WORK/redis-tether.log"
tether_spawn "$PROXY_LOG" "$TETHER_BIN" --config "$CONFIG"
PROXY_PID=$TETHER_LAST_PID
tether_wait_redis "$PROXY_PORT" "$PROXY_PID" "$PROXY_LOG" 15 ||
  tether_die "redis-tether did not answer PING on 127.0.0.1:$PROXY_PORT"
tether_say "redis-tether (pid $PROXY_PID) on 127.0.0.1:$PROXY_PORT -> redis 127.0.0.1:$REDIS_PORT; metrics on http://127.0.0.1:$ADMIN_PORT/metrics"
if [[ $PROXY_PORT != 6379 ]]; then
  tether_say "(127.0.0.1:6379 is taken on this machine, so the proxy listens on $PROXY_PORT)"
fi

tether_step "4/6 clients through the proxy (port $PROXY_PORT)"
cli=(redis-cli -h 127.0.0.1 -p "$PROXY_PORT")
show "${cli[@]}" DEL demo:greeting demo:counter demo:pipe
show "${cli[@]}" SET demo:greeting "hello through redis-tether"
show "${cli[@]}" GET demo:greeting
show "${cli[@]}" INCR demo:counter
show "${cli[@]}" INCR demo:counter
show "${cli[@]}" INCRBY demo:counter 40
tether_say "the same keys, read directly from redis-server (port $REDIS_PORT):"
show redis-cli -h 127.0.0.1 -p "$REDIS_PORT" MGET demo:greeting demo:counter

tether_say ""
tether_say "a pipeline: 6 commands sent in one write on one connection, raw RESP replies in order:"
{
  resp PING
  resp SET demo:pipe 10
  resp INCR demo:pipe
  resp INCR demo:pipe
  resp INCR demo:pipe
  resp GET demo:pipe
} >"$WORK/pipeline.resp"
printf '    -> PING | SET demo:pipe 10 | INCR demo:pipe x3 | GET demo:pipe\n'
exec 3<>"/dev/tcp/127.0.0.1/$PROXY_PORT"
cat "$WORK/pipeline.resp" >&3
# Expected reply lines: +PONG, +OK, :11, :12, :13, $2, 13.
for _ in 1 2 3 4 5 6 7; do
  IFS= read -r -t 5 line <&3 || tether_die "pipeline: reply missing (timed out)"
  printf '    <- %s\n' "${line%$'\r'}"
done
exec 3<&- 3>&-

tether_say ""
tether_say "10,000 INCRs streamed with redis-cli --pipe:"
for _ in $(seq 1 10000); do resp INCR demo:piped; done >"$WORK/pipe.resp"
printf '  $ redis-cli -p %s --pipe < 10000 x INCR demo:piped\n' "$PROXY_PORT"
"${cli[@]}" --pipe <"$WORK/pipe.resp" 2>&1 | sed 's/^/    /'
show "${cli[@]}" GET demo:piped

tether_say ""
tether_say "redis-benchmark through the proxy (50 clients, 20,000 requests per test):"
for pipeline in 1 16; do
  printf '  $ redis-benchmark -p %s -c 50 -n 20000 -t set,get -P %d -q\n' "$PROXY_PORT" "$pipeline"
  timeout 120 redis-benchmark -h 127.0.0.1 -p "$PROXY_PORT" -c 50 -n 20000 -t set,get \
    -P "$pipeline" -q 2>&1 | tr '\r' '\n' | grep 'requests per second' | sed 's/^/    /' ||
    tether_warn "redis-benchmark failed"
done
tether_say "  (bench/throughput.sh compares direct Redis, redis-tether and other proxies)"

tether_step "5/6 what the proxy says about it"
tether_say "log ($PROXY_LOG), first lines:"
head -n 12 "$PROXY_LOG" | sed 's/^/    /'
tether_say ""
tether_say "GET http://127.0.0.1:$ADMIN_PORT/metrics (the redis_tether_* series that are not 0):"
if metrics=$(tether_http_get "http://127.0.0.1:$ADMIN_PORT/metrics"); then
  grep -E '^redis_tether_' <<<"$metrics" | awk '$NF != 0' | head -n 25 | sed 's/^/    /' || true
  tether_say "    (and $(grep -E '^redis_tether_' <<<"$metrics" | awk '$NF == 0' | wc -l) more series at 0)"
else
  tether_warn "could not read /metrics"
fi

tether_step "6/6 stop"
tether_stop_pid "$PROXY_PID" 10
tether_say "redis-tether stopped by SIGTERM (exit status $TETHER_LAST_STATUS); its last log lines:"
tail -n 4 "$PROXY_LOG" | sed 's/^/    /'
tether_stop_pid "$REDIS_PID"
tether_say "redis-server stopped"
DEMO_OK=1
tether_ok "demo finished: everything it started is stopped"
