# shellcheck shell=bash
# Shared helpers for scripts/test.sh, scripts/demo.sh and bench/throughput.sh.
#
# Source it; it defines functions and package lists, and runs nothing:
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# What lives here:
#   - output:     tether_say / tether_step / tether_warn / tether_die
#   - packages:   tether_ensure_packages PKG...   (installs only what dpkg says is missing)
#   - build:      tether_build DIR BUILD_TYPE [cmake args...] -- [targets...]
#   - ports:      tether_free_port VAR [PREFERRED]   (a free TCP port on 127.0.0.1)
#   - processes:  tether_spawn LOG CMD...  /  tether_stop_all   (by PID, newest first)
#   - readiness:  tether_wait_redis PORT PID LOG [SECONDS]
#
# Every process these helpers start is recorded by PID in TETHER_PIDS and stopped by
# tether_stop_all, which the caller installs as its EXIT trap. Nothing is ever killed
# by name.

TETHER_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export TETHER_REPO_ROOT

# ---- package lists (Debian 12) -------------------------------------------------------
# To build redis-tether and its tests.
TETHER_BUILD_PACKAGES=(
  build-essential cmake pkg-config
  libboost-dev libhiredis-dev libspdlog-dev libyaml-cpp-dev prometheus-cpp-dev
  catch2 libsystemd-dev
)
# To run a local Redis and talk to it.
TETHER_REDIS_PACKAGES=(redis-server redis-tools)
# shellcheck disable=SC2034  # used by the scripts that source this file
# Everything scripts/test.sh needs: build, unit + integration tests, fuzzing, format.
TETHER_TEST_PACKAGES=(
  "${TETHER_BUILD_PACKAGES[@]}"
  "${TETHER_REDIS_PACKAGES[@]}" redis-sentinel
  python3 python3-redis python3-pytest python3-prometheus-client python3-yaml systemd
  libfuzzer-14-dev clang-14 libclang-rt-14-dev clang-format
)
# shellcheck disable=SC2034  # used by scripts/test.sh
# To build the .deb with CPack (dpkg-shlibdeps) and install it (its postinst needs adduser).
TETHER_DEB_PACKAGES=(dpkg-dev adduser)
# shellcheck disable=SC2034  # used by scripts/test.sh
# To build and run the container image (see ../shared/container-build.md): podman and
# buildah with runc, and debootstrap for the local debian:bookworm base image.
TETHER_IMAGE_PACKAGES=(podman buildah runc debootstrap uidmap slirp4netns fuse-overlayfs)

# ---- output ----------------------------------------------------------------------------
if [[ -t 1 ]]; then
  _tether_bold=$'\e[1m' _tether_red=$'\e[31m' _tether_green=$'\e[32m'
  _tether_yellow=$'\e[33m' _tether_reset=$'\e[0m'
else
  _tether_bold='' _tether_red='' _tether_green='' _tether_yellow='' _tether_reset=''
fi

tether_say() { printf '%s\n' "$*"; }
tether_step() { printf '\n%s==> %s%s\n' "$_tether_bold" "$*" "$_tether_reset"; }
tether_ok() { printf '%s%s%s\n' "$_tether_green" "$*" "$_tether_reset"; }
tether_warn() { printf '%swarning: %s%s\n' "$_tether_yellow" "$*" "$_tether_reset" >&2; }
tether_die() {
  printf '%serror: %s%s\n' "$_tether_red" "$*" "$_tether_reset" >&2
  exit 1
}

# tether_now: seconds since the epoch (integer), for stage timings.
tether_now() { date +%s; }

# tether_fmt_duration SECONDS -> "3m07s"
tether_fmt_duration() {
  local s=$1
  if ((s >= 60)); then printf '%dm%02ds' $((s / 60)) $((s % 60)); else printf '%ds' "$s"; fi
}

# ---- packages --------------------------------------------------------------------------
# tether_missing_packages PKG...: prints the packages dpkg does not have installed.
tether_missing_packages() {
  local pkg status
  for pkg in "$@"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
    [[ $status == ii* ]] || printf '%s\n' "$pkg"
  done
}

# _tether_as_root CMD...: runs CMD as root: directly when root, else through sudo
# (non-interactive sudo when there is no terminal to ask for a password on).
_tether_as_root() {
  if ((EUID == 0)); then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    if [[ -t 0 ]]; then sudo "$@"; else sudo -n "$@"; fi
  else
    tether_die "need root to run '$*' (not root, and sudo is not installed)"
  fi
}

# tether_ensure_packages PKG...: installs exactly the packages that are missing, with
# apt-get non-interactively. When none is missing it touches nothing and says so.
tether_ensure_packages() {
  command -v dpkg-query >/dev/null 2>&1 ||
    tether_die "dpkg-query not found: these scripts expect Debian 12 (bookworm)"
  local -a missing
  mapfile -t missing < <(tether_missing_packages "$@")
  if ((${#missing[@]} == 0)); then
    tether_say "all $# required Debian packages are installed; nothing to install"
    return 0
  fi
  tether_say "missing Debian packages (${#missing[@]}): ${missing[*]}"
  local attempt
  for attempt in 1 2 3; do
    if _tether_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
      _tether_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends "${missing[@]}"; then
      break
    fi
    ((attempt < 3)) || tether_die "apt-get could not install: ${missing[*]}"
    tether_warn "apt-get failed (attempt $attempt of 3); retrying in 5 s"
    sleep 5
  done
  mapfile -t missing < <(tether_missing_packages "$@")
  ((${#missing[@]} == 0)) || tether_die "still missing after apt-get install: ${missing[*]}"
  tether_say "installed; all $# required Debian packages are present"
}

# ---- build -----------------------------------------------------------------------------
# tether_build DIR BUILD_TYPE [extra cmake args...] [-- targets...]
# Configures DIR (only when it has no cache yet, or when the type changed) and runs make.
tether_build() {
  local dir=$1 type=$2
  shift 2
  local -a cmake_args=() targets=()
  while (($#)); do
    if [[ $1 == -- ]]; then
      shift
      targets=("$@")
      break
    fi
    cmake_args+=("$1")
    shift
  done
  local jobs
  jobs=${TETHER_JOBS:-$(nproc 2>/dev/null || echo 2)}
  cmake -S "$TETHER_REPO_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE="$type" "${cmake_args[@]}"
  make -C "$dir" -j"$jobs" --no-print-directory "${targets[@]}"
}

# ---- ports -----------------------------------------------------------------------------
_TETHER_PORTS_GIVEN=" "

# _tether_port_bindable PORT: true when 127.0.0.1:PORT can be bound right now.
_tether_port_bindable() {
  local port=$1
  if command -v python3 >/dev/null 2>&1; then
    python3 - "$port" <<'EOF' 2>/dev/null
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
EOF
  else
    # No python: a port nobody accepts on is taken to be free.
    ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
  fi
}

# tether_free_port VAR [PREFERRED]: sets VAR to a free TCP port on 127.0.0.1: PREFERRED
# when it is free, else a random one in 20000-32767 (below Linux's ephemeral range, so
# outgoing connections do not take it meanwhile). Never hands out the same port twice
# in one script.
tether_free_port() {
  # Locals are prefixed so that they cannot shadow the caller's variable named by $1.
  local -n _tfp_out=$1
  local _tfp_preferred=${2:-} _tfp_port='' _tfp_try
  if [[ -n $_tfp_preferred && $_TETHER_PORTS_GIVEN != *" $_tfp_preferred "* ]] &&
    _tether_port_bindable "$_tfp_preferred"; then
    _tfp_port=$_tfp_preferred
  else
    for _tfp_try in $(seq 1 200); do
      _tfp_port=$((20000 + RANDOM % 12768))
      [[ $_TETHER_PORTS_GIVEN == *" $_tfp_port "* ]] && continue
      _tether_port_bindable "$_tfp_port" && break
      _tfp_port=''
    done
    [[ -n $_tfp_port ]] || tether_die "no free TCP port found on 127.0.0.1 after $_tfp_try tries"
  fi
  _TETHER_PORTS_GIVEN+="$_tfp_port "
  # shellcheck disable=SC2034  # a nameref to the caller's variable
  _tfp_out=$_tfp_port
}

# ---- processes -------------------------------------------------------------------------
TETHER_PIDS=()
TETHER_LAST_PID=''
TETHER_LAST_STATUS=''

# tether_spawn LOG CMD...: starts CMD in the background, stdout+stderr to LOG, and
# records its PID (also in TETHER_LAST_PID).
tether_spawn() {
  local log=$1
  shift
  "$@" </dev/null >"$log" 2>&1 &
  TETHER_LAST_PID=$!
  TETHER_PIDS+=("$TETHER_LAST_PID")
}

# tether_stop_pid PID [SECONDS]: SIGTERM, wait up to SECONDS (default 5), then SIGKILL.
tether_stop_pid() {
  local pid=$1 secs=${2:-5} i
  TETHER_LAST_STATUS=''
  if ! kill -0 "$pid" 2>/dev/null; then
    # Already exited: reap it (when it is our child) for its status.
    wait "$pid" 2>/dev/null && TETHER_LAST_STATUS=0 || TETHER_LAST_STATUS=$?
    _tether_forget_pid "$pid"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < secs * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    tether_warn "pid $pid did not stop within ${secs}s of SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  TETHER_LAST_STATUS=0
  # shellcheck disable=SC2034  # read by the scripts that source this file
  wait "$pid" 2>/dev/null || TETHER_LAST_STATUS=$?
  _tether_forget_pid "$pid"
}

# _tether_forget_pid PID: drops PID from TETHER_PIDS (it has been reaped).
_tether_forget_pid() {
  local -a keep=()
  local p
  for p in "${TETHER_PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  TETHER_PIDS=("${keep[@]}")
}

# tether_stop_all: stops every process tether_spawn started, newest first. Idempotent.
tether_stop_all() {
  local i
  local -a pids=("${TETHER_PIDS[@]}")
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    tether_stop_pid "${pids[i]}"
  done
  TETHER_PIDS=()
}

# tether_alive PID: true while PID runs.
tether_alive() { kill -0 "$1" 2>/dev/null; }

# tether_wait_redis PORT PID LOG [SECONDS]: waits until something RESP on 127.0.0.1:PORT
# answers PING with PONG. Fails (showing LOG's tail) if PID exits or time runs out.
tether_wait_redis() {
  local port=$1 pid=$2 log=$3 secs=${4:-10} i
  for ((i = 0; i < secs * 10; i++)); do
    if ! tether_alive "$pid"; then
      tether_warn "process $pid exited before answering on port $port; last lines of $log:"
      tail -n 20 "$log" >&2 || true
      return 1
    fi
    if [[ $(redis-cli -h 127.0.0.1 -p "$port" PING 2>/dev/null) == PONG ]]; then
      return 0
    fi
    sleep 0.1
  done
  tether_warn "nothing answered PING on 127.0.0.1:$port within ${secs}s; last lines of $log:"
  tail -n 20 "$log" >&2 || true
  return 1
}

# tether_wait_tcp PORT PID LOG [SECONDS]: waits until 127.0.0.1:PORT accepts connections.
tether_wait_tcp() {
  local port=$1 pid=$2 log=$3 secs=${4:-10} i
  for ((i = 0; i < secs * 10; i++)); do
    if ! tether_alive "$pid"; then
      tether_warn "process $pid exited before listening on port $port; last lines of $log:"
      tail -n 20 "$log" >&2 || true
      return 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  tether_warn "nothing listened on 127.0.0.1:$port within ${secs}s; last lines of $log:"
  tail -n 20 "$log" >&2 || true
  return 1
}

# tether_start_redis DIR PORT [extra redis-server args...]: starts a throwaway
# redis-server (no persistence) on 127.0.0.1:PORT with DIR as its working dir and waits
# for it. Its PID is TETHER_LAST_PID; its log is DIR/redis-PORT.log.
tether_start_redis() {
  local dir=$1 port=$2
  shift 2
  local log="$dir/redis-$port.log"
  tether_spawn "$log" redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" \
    --save '' --appendonly no --daemonize no --protected-mode yes "$@"
  tether_wait_redis "$port" "$TETHER_LAST_PID" "$log" 10
}

# tether_http_get URL: prints the body of an HTTP GET (curl when present, else python3).
tether_http_get() {
  if command -v curl >/dev/null 2>&1; then
    curl -fsS --max-time 5 "$1"
  else
    python3 -c 'import sys, urllib.request
sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "$1"
  fi
}

# tether_build_release: makes sure a Release redis-tether exists and sets TETHER_BIN to
# it. Uses $TETHER_BIN as is when it is set to an executable. Otherwise builds in
# build-release/ (configured once; make is incremental, so this is quick when nothing
# changed). The build log goes to build-release/build.log; its tail is shown on failure.
tether_build_release() {
  if [[ -n ${TETHER_BIN:-} ]]; then
    [[ -x $TETHER_BIN ]] || tether_die "TETHER_BIN=$TETHER_BIN is not an executable"
    tether_say "using TETHER_BIN=$TETHER_BIN (not building)"
    return 0
  fi
  local dir="$TETHER_REPO_ROOT/build-release"
  local log="$dir/build.log" jobs
  jobs=${TETHER_JOBS:-$(nproc 2>/dev/null || echo 2)}
  mkdir -p "$dir"
  : >"$log"
  if [[ ! -f $dir/CMakeCache.txt ]]; then
    tether_say "configuring $dir (Release, no tests)"
    # -O2 (Debian's own level) rather than CMake's -O3: GCC 12 at -O3 reports false
    # -Wrestrict errors in std::string concatenation (GCC bug 105329), fatal with -Werror.
    cmake -S "$TETHER_REPO_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" -DBUILD_TESTING=OFF >>"$log" 2>&1 || {
      tail -n 40 "$log" >&2
      rm -f "$dir/CMakeCache.txt"
      tether_die "cmake configure failed (full log: $log)"
    }
  fi
  tether_say "building redis-tether in $dir with make -j$jobs (a first build takes a few minutes; log: $log)"
  make -C "$dir" -j"$jobs" --no-print-directory redis-tether >>"$log" 2>&1 || {
    tail -n 40 "$log" >&2
    tether_die "build failed (full log: $log)"
  }
  TETHER_BIN="$dir/src/app/redis-tether"
  [[ -x $TETHER_BIN ]] || tether_die "build finished but $TETHER_BIN is missing"
  tether_say "built $TETHER_BIN ($("$TETHER_BIN" --version 2>/dev/null || echo 'version unknown'))"
}
