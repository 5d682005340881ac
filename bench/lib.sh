# bench/lib.sh: what the benchmarks share, sourced by throughput.sh and memory.sh (after
# scripts/lib.sh): starting the targets they compare, and printing their tables.
# Each start_* function adds its name to TARGETS and its port, pid and log to PORT, PID and
# LOG, or warns and adds nothing when it did not start.
#
# Reads: WORK (scratch dir), REDIS_PORT (the redis-server all of them forward to), WORKERS
# and POOL (redis-tether's workers and pool.size; POOL may be empty), MODE (its pool.mode;
# empty: the default, shared), TETHER_BIN.
# shellcheck shell=bash

TARGETS=()      # names, in table order
declare -A PORT # target -> port
declare -A PID  # target -> pid
declare -A LOG  # target -> log file
declare -A NAMES=([direct]="direct" [tether]="redis-tether" [haproxy]="haproxy" [twemproxy]="twemproxy")

# add_direct: redis-server itself (already started on REDIS_PORT as TETHER_LAST_PID).
add_direct() {
  TARGETS+=(direct)
  PORT[direct]=$REDIS_PORT
  PID[direct]=$TETHER_LAST_PID
  LOG[direct]="$WORK/redis-$REDIS_PORT.log"
  tether_say "direct:    redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') on 127.0.0.1:$REDIS_PORT"
}

start_tether() {
  local port admin cfg="$WORK/redis-tether.yaml"
  tether_free_port port
  tether_free_port admin
  {
    echo "log_level: info"
    echo "workers: $WORKERS"
    echo "admin:"
    echo "  listen: 127.0.0.1:$admin"
    echo "services:"
    echo "  - name: bench"
    echo "    listen: 127.0.0.1:$port"
    echo "    upstream: 127.0.0.1:$REDIS_PORT"
    if [[ -n $POOL || -n ${MODE:-} ]]; then
      echo "    pool:"
      [[ -z $POOL ]] || echo "      size: $POOL"
      # session: one connection per client (50 clients: within max_dedicated's 64)
      [[ -z ${MODE:-} ]] || echo "      mode: $MODE"
    fi
  } >"$cfg"
  LOG[tether]="$WORK/redis-tether.log"
  tether_spawn "${LOG[tether]}" "$TETHER_BIN" --config "$cfg"
  PID[tether]=$TETHER_LAST_PID
  tether_wait_redis "$port" "${PID[tether]}" "${LOG[tether]}" 15 ||
    tether_die "redis-tether did not start"
  TARGETS+=(tether)
  PORT[tether]=$port
  tether_say "tether:    $("$TETHER_BIN" --version) on 127.0.0.1:$port (workers: $WORKERS, pool.size: ${POOL:-default}, pool.mode: ${MODE:-shared})"
}

start_haproxy() {
  local port cfg="$WORK/haproxy.cfg"
  tether_free_port port
  cat >"$cfg" <<EOF
global
  maxconn 4096
  nbthread 1
defaults
  mode tcp
  timeout connect 2s
  timeout client 120s
  timeout server 120s
frontend bench
  bind 127.0.0.1:$port
  default_backend redis
backend redis
  server redis1 127.0.0.1:$REDIS_PORT
EOF
  LOG[haproxy]="$WORK/haproxy.log"
  tether_spawn "${LOG[haproxy]}" haproxy -db -f "$cfg"
  PID[haproxy]=$TETHER_LAST_PID
  if tether_wait_redis "$port" "${PID[haproxy]}" "${LOG[haproxy]}" 10; then
    TARGETS+=(haproxy)
    PORT[haproxy]=$port
    tether_say "haproxy:   $(haproxy -v | head -n1 | awk '{print $3}') mode tcp, nbthread 1, on 127.0.0.1:$port"
  else
    tether_warn "haproxy did not start; benchmarking without it"
  fi
}

start_nutcracker() {
  local port stats cfg="$WORK/nutcracker.yml"
  tether_free_port port
  tether_free_port stats
  cat >"$cfg" <<EOF
bench:
  listen: 127.0.0.1:$port
  hash: fnv1a_64
  distribution: ketama
  redis: true
  preconnect: true
  auto_eject_hosts: false
  server_connections: 1
  servers:
    - 127.0.0.1:$REDIS_PORT:1
EOF
  LOG[twemproxy]="$WORK/nutcracker.log"
  tether_spawn "${LOG[twemproxy]}" nutcracker -c "$cfg" -s "$stats" -a 127.0.0.1 -v 4
  PID[twemproxy]=$TETHER_LAST_PID
  if tether_wait_redis "$port" "${PID[twemproxy]}" "${LOG[twemproxy]}" 10; then
    TARGETS+=(twemproxy)
    PORT[twemproxy]=$port
    tether_say "twemproxy: nutcracker $(nutcracker -V 2>&1 | head -n1 | sed 's/.*nutcracker-//'), server_connections 1, on 127.0.0.1:$port"
  else
    tether_warn "nutcracker did not start; benchmarking without it"
  fi
}

# start_peers: HAProxy and twemproxy, each when installed.
start_peers() {
  if command -v haproxy >/dev/null 2>&1; then start_haproxy; else
    tether_say "haproxy:   not installed (apt-get install haproxy, or --install-peers)"
  fi
  if command -v nutcracker >/dev/null 2>&1; then start_nutcracker; else
    tether_say "twemproxy: not installed (apt-get install nutcracker, or --install-peers)"
  fi
}

# print_table MARKDOWN ROW...: rows of '|'-separated cells, the first the header, aligned;
# then as a Markdown table too when MARKDOWN is 1.
print_table() {
  local markdown=$1
  shift
  printf '%s\n' "$@" | awk -F'|' '{ for (i = 1; i <= NF; i++) {
      c[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } n = NR; if (NF > m) m = NF }
    END { for (r = 1; r <= n; r++) { line = " "
      for (i = 1; i <= m; i++) line = line sprintf(i == 1 ? " %-*s" : "   %*s", w[i], c[r, i])
      print line } }'
  if ((markdown)); then
    echo
    printf '%s\n' "$@" | awk -F'|' '{
      printf "|"; for (i = 1; i <= NF; i++) printf " %s |", $i; printf "\n"
      if (NR == 1) { printf "|"; for (i = 1; i <= NF; i++) printf " --- |"; printf "\n" } }'
  fi
}
