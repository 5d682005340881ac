#!/usr/bin/env bash
# scripts/test.sh: everything CI checks, in order, from any cwd.
#
#   deps        install the Debian packages that are missing (nothing when none is)
#   format      clang-format check over every C++ file (scripts/check-format.sh)
#   build       RelWithDebInfo build in build/
#   test        ctest in build/ (unit tests in parallel, then integration tests serially)
#   asan-build  ASan+UBSan build in build-asan/ (-DTETHER_SANITIZE=ON)
#   asan-test   ctest in build-asan/
#   fuzz        scripts/fuzz.sh 60 (each libFuzzer target for 60 s)
#   package     the .deb (CPack) from the Release build in build-release/: dpkg -i, check
#               the installed binary, config, unit and user, then dpkg --purge
#   image       podman build of the Dockerfile (localhost/redis-tether:ci) and a smoke
#               run against a redis-server on loopback (needs root: rootful podman)
#
# A failing stage does not stop the later ones (a stage whose input failed is SKIPPED);
# the script ends with a PASS/FAIL summary with timings and exits non-zero when any
# stage failed.
#
# Environment (for developers; ignored when CI is set, so CI always runs everything):
#   TETHER_SKIP="asan fuzz"   stages to skip, by name ("asan" is asan-build + asan-test)
#   TETHER_FUZZ_SECONDS=10    seconds per fuzz target instead of 60
# Always honoured:
#   TETHER_JOBS=N             make parallelism (default: nproc)
#   TETHER_CTEST_JOBS=N       parallelism for the unit tests (default: nproc)
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$TETHER_REPO_ROOT"

readonly BUILD_DIR=build
readonly ASAN_DIR=build-asan

FUZZ_SECONDS=60
SKIP=" "
if [[ -z ${CI:-} ]]; then
  FUZZ_SECONDS=${TETHER_FUZZ_SECONDS:-60}
  SKIP=" ${TETHER_SKIP:-} "
fi
[[ $FUZZ_SECONDS =~ ^[0-9]+$ ]] || tether_die "TETHER_FUZZ_SECONDS must be a number of seconds"

STAGE_NAMES=()
STAGE_RESULTS=()
STAGE_TIMES=()
CTEST_PASSED=0
CTEST_FAILED=0

# run_stage NAME FUNC [DEPENDS_ON_STAGE...]: runs FUNC in a subshell with errexit,
# records PASS/FAIL/SKIP and its duration.
run_stage() {
  local name=$1 func=$2 dep i result start rc
  shift 2
  result=''
  if [[ $SKIP == *" $name "* || $SKIP == *" ${name%%-*} "* ]]; then # "asan" = both asan-*
    result="SKIP (TETHER_SKIP)"
  fi
  for dep in "$@"; do
    for i in "${!STAGE_NAMES[@]}"; do
      if [[ ${STAGE_NAMES[i]} == "$dep" && ${STAGE_RESULTS[i]} != PASS ]]; then
        result="SKIP ($dep did not pass)"
      fi
    done
  done
  STAGE_NAMES+=("$name")
  if [[ -n $result ]]; then
    tether_step "stage $name: $result"
    STAGE_RESULTS+=("$result")
    STAGE_TIMES+=(0)
    return 0
  fi
  tether_step "stage $name"
  start=$(tether_now)
  set +e
  (
    set -euo pipefail
    "$func"
  )
  rc=$?
  set -e
  STAGE_TIMES+=("$(($(tether_now) - start))")
  if ((rc == 0)); then
    STAGE_RESULTS+=(PASS)
    tether_ok "stage $name: PASS ($(tether_fmt_duration "${STAGE_TIMES[-1]}"))"
  else
    STAGE_RESULTS+=("FAIL (exit $rc)")
    tether_warn "stage $name: FAIL (exit $rc)"
  fi
}

stage_deps() {
  tether_ensure_packages "${TETHER_TEST_PACKAGES[@]}"
}

stage_format() {
  bash scripts/check-format.sh
}

stage_build() {
  tether_build "$BUILD_DIR" RelWithDebInfo -DBUILD_TESTING=ON -DTETHER_SANITIZE=OFF
}

stage_asan_build() {
  # GCC 12 reports false -Wmaybe-uninitialized in libstdc++'s <regex> (pulled in by
  # catch.hpp) when -fsanitize=address meets -O2; -Werror would turn that into a failure.
  tether_build "$ASAN_DIR" RelWithDebInfo -DBUILD_TESTING=ON -DTETHER_SANITIZE=ON \
    -DCMAKE_CXX_FLAGS=-Wno-maybe-uninitialized
}

# run_ctest DIR: unit tests (label "unit") in parallel, then every other test (the
# integration tests: real redis-server processes, timing-sensitive) one at a time.
# Appends the counts to $DIR/ctest-counts for the final line.
run_ctest() {
  local dir=$1 jobs rc=0 log
  # Sanitizer settings for every process ctest starts: the test binaries, and the proxy
  # the integration tests launch (it inherits them). Only the ASan build reads them.
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=1:print_summary=1"
  export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
  jobs=${TETHER_CTEST_JOBS:-$(nproc 2>/dev/null || echo 2)}
  log="$dir/ctest-output.log"
  : >"$log"
  local total
  total=$(ctest --test-dir "$dir" -N | sed -n 's/^Total Tests: //p')
  [[ ${total:-0} -gt 0 ]] || {
    echo "ctest found no tests in $dir" >&2
    return 1
  }
  # Every process ctest starts inherits this marker, so that what a killed or careless
  # test leaves running can be found (and stopped, by PID) afterwards.
  local run_id
  run_id="$dir-$$-$(tether_now)"
  tether_say "-- unit tests (label unit, -j$jobs)"
  TETHER_TEST_RUN_ID=$run_id ctest --test-dir "$dir" -L '^unit$' -j "$jobs" \
    --output-on-failure --timeout 120 --no-tests=ignore 2>&1 | tee -a "$log" || rc=1
  stop_leftovers "$run_id"
  tether_say "-- integration and other tests (serial)"
  TETHER_TEST_RUN_ID=$run_id ctest --test-dir "$dir" -LE '^unit$' \
    --output-on-failure --timeout 900 --no-tests=ignore 2>&1 | tee -a "$log" || rc=1
  stop_leftovers "$run_id"
  # "100% tests passed, 0 tests failed out of 12" -> passed/failed counts.
  awk '/tests passed, .* tests failed out of/ {
         total += $NF; failed += $4 }
       END { printf "%d %d\n", total - failed, failed }' "$log" >"$dir/ctest-counts"
  return "$rc"
}

# stop_leftovers RUN_ID: stops (by PID) every process still running with
# TETHER_TEST_RUN_ID=RUN_ID in its environment: children of a test that ctest killed on a
# timeout, or that a test forgot. Warns about each; the test's own result says the rest.
stop_leftovers() {
  local id=$1 d pid
  local -a left=()
  for d in /proc/[0-9]*; do
    grep -qzx "TETHER_TEST_RUN_ID=$id" "$d/environ" 2>/dev/null || continue
    pid=${d#/proc/}
    tether_warn "a test left pid $pid running: $(tr '\0' ' ' <"$d/cmdline" 2>/dev/null); stopping it"
    kill -TERM "$pid" 2>/dev/null || true
    left+=("$pid")
  done
  ((${#left[@]})) || return 0
  sleep 2
  for pid in "${left[@]}"; do
    # Still the same process (the marker is there), not a reused PID.
    grep -qzx "TETHER_TEST_RUN_ID=$id" "/proc/$pid/environ" 2>/dev/null &&
      kill -KILL "$pid" 2>/dev/null
  done
  return 0
}

stage_test() { run_ctest "$BUILD_DIR"; }
stage_asan_test() { run_ctest "$ASAN_DIR"; }

stage_fuzz() {
  [[ -f scripts/fuzz.sh ]] || {
    echo "scripts/fuzz.sh is missing" >&2
    return 1
  }
  bash scripts/fuzz.sh "$FUZZ_SECONDS"
}

# ---- package: the .deb ----------------------------------------------------------------
readonly RELEASE_DIR=build-release

# stage_package: cpack's .deb from build-release/ (the Release build scripts/demo.sh uses:
# -O2, tests off; incremental), installed with dpkg, checked at its installed paths,
# purged. Outside CI it refuses to touch a redis-tether the host already has installed.
deb_installed() {
  [[ $(dpkg-query -W -f='${db:Status-Abbrev}' redis-tether 2>/dev/null) == ii* ]]
}

stage_package() {
  tether_ensure_packages "${TETHER_DEB_PACKAGES[@]}"
  if [[ -z ${CI:-} ]] && deb_installed; then
    echo "redis-tether is already installed here and this stage would purge it;" \
      "dpkg --purge it first, or TETHER_SKIP=package" >&2
    return 1
  fi
  TETHER_BIN='' tether_build_release
  rm -f "$RELEASE_DIR"/redis-tether_*.deb
  (cd "$RELEASE_DIR" && cpack -G DEB)
  local -a debs=("$RELEASE_DIR"/redis-tether_*.deb)
  if ((${#debs[@]} != 1)) || [[ ! -f ${debs[0]} ]]; then
    echo "cpack made no single redis-tether_*.deb in $RELEASE_DIR" >&2
    return 1
  fi
  local deb=${debs[0]}
  tether_say "-- $deb ($(du -h "$deb" | cut -f1))"
  dpkg-deb --field "$deb" Package Version Architecture Depends
  dpkg-deb --contents "$deb"

  # Whatever fails below, the package does not stay installed.
  trap '_tether_as_root dpkg --purge redis-tether >/dev/null 2>&1 || true' EXIT
  _tether_as_root env DEBIAN_FRONTEND=noninteractive dpkg -i "$deb"
  local conf=/etc/redis-tether/redis-tether.yaml unit=/lib/systemd/system/redis-tether.service
  dpkg-query -W -f='${Conffiles}\n' redis-tether | grep -q "^ $conf " || {
    echo "$conf is not a conffile" >&2
    return 1
  }
  getent passwd redis-tether
  /usr/bin/redis-tether --version
  # As the service user when we can: the installed config must be readable by it.
  if ((EUID == 0)); then
    setpriv --reuid=redis-tether --regid=redis-tether --clear-groups \
      /usr/bin/redis-tether --config "$conf" --check-config
  else
    /usr/bin/redis-tether --config "$conf" --check-config
  fi
  if [[ -f $unit ]] && command -v systemd-analyze >/dev/null; then
    systemd-analyze verify "$unit"
    tether_say "systemd-analyze verify: clean"
  else
    tether_say "no installed redis-tether.service, or no systemd-analyze: unit not verified"
  fi

  _tether_as_root dpkg --purge redis-tether
  trap - EXIT
  [[ ! -e /usr/bin/redis-tether && ! -e /etc/redis-tether ]] || {
    echo "dpkg --purge left /usr/bin/redis-tether or /etc/redis-tether behind" >&2
    return 1
  }
  if deb_installed; then
    echo "redis-tether is still installed after dpkg --purge" >&2
    return 1
  fi
  tether_say "purged; the redis-tether system user is kept on purge by design"
}

# ---- image: the container ----------------------------------------------------------------
readonly IMAGE=localhost/redis-tether:ci

# ensure_base_image: a local debian:bookworm made with debootstrap from this machine's apt
# sources (../shared/container-build.md), so that `FROM debian:bookworm` never asks a
# registry. Made once; container storage keeps it. The rootfs is built under $IMG_TMP,
# which stage_image's EXIT trap removes whatever happens.
ensure_base_image() {
  if podman image exists localhost/debian:bookworm; then
    tether_say "base image localhost/debian:bookworm exists"
    return 0
  fi
  local mirror rootfs
  mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  [[ -n $mirror ]] || {
    echo "no URIs: line in /etc/apt/sources.list.d/debian.sources" >&2
    return 1
  }
  rootfs=$IMG_TMP/rootfs
  tether_say "making localhost/debian:bookworm with debootstrap from $mirror"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$IMG_TMP/debootstrap.log" 2>&1 || {
    tail -n 20 "$IMG_TMP/debootstrap.log" >&2
    return 1
  }
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/etc/apt/sources.list
  cp /etc/apt/sources.list.d/debian.sources "$rootfs"/etc/apt/sources.list.d/
  printf 'Acquire::Check-Valid-Until "false";\nAPT::Install-Recommends "false";\n' \
    >"$rootfs"/etc/apt/apt.conf.d/99local
  : >"$rootfs"/etc/resolv.conf
  tar -C "$rootfs" -c . | podman import --change 'CMD ["bash"]' - localhost/debian:bookworm
  podman tag localhost/debian:bookworm docker.io/library/debian:bookworm
  rm -rf "$rootfs"
}

# smoke_image: the built image prints its version, accepts its baked config, and, run
# with --network host against a redis-server on a free loopback port, forwards
# redis-cli's commands, answers /health, and exits 0 on `podman stop` (SIGTERM).
smoke_image() {
  podman run --rm --pull=never "$IMAGE" --version
  podman run --rm --pull=never "$IMAGE" --config /etc/redis-tether/redis-tether.yaml --check-config
  [[ $(podman run --rm --pull=never --entrypoint id "$IMAGE" -u) != 0 ]] || {
    echo "the image runs as root" >&2
    return 1
  }

  local rport pport aport i
  tether_free_port rport
  tether_free_port pport
  tether_free_port aport
  tether_start_redis "$IMG_TMP" "$rport"
  cat >"$IMG_TMP/redis-tether.yaml" <<YAML
admin:
  listen: 127.0.0.1:$aport
services:
  - name: main
    listen: 127.0.0.1:$pport
    upstream: 127.0.0.1:$rport
YAML
  chmod 0644 "$IMG_TMP/redis-tether.yaml" # read by the image's unprivileged user
  IMG_CONTAINER=redis-tether-ci-$$
  podman run -d --pull=never --name "$IMG_CONTAINER" --network host \
    -v "$IMG_TMP/redis-tether.yaml:/etc/redis-tether/redis-tether.yaml:ro" "$IMAGE" >/dev/null
  for ((i = 0; i < 100; i++)); do
    [[ $(redis-cli -h 127.0.0.1 -p "$pport" PING 2>/dev/null) == PONG ]] && break
    [[ $(podman container inspect -f '{{.State.Running}}' "$IMG_CONTAINER") == true ]] || break
    sleep 0.1
  done
  [[ $(redis-cli -h 127.0.0.1 -p "$pport" PING 2>/dev/null) == PONG ]] || {
    echo "the container did not answer PING on 127.0.0.1:$pport; its log:" >&2
    podman logs "$IMG_CONTAINER" >&2 || true
    return 1
  }
  [[ $(redis-cli -h 127.0.0.1 -p "$pport" SET tether:image ok) == OK ]]
  [[ $(redis-cli -h 127.0.0.1 -p "$rport" GET tether:image) == ok ]] # it reached Redis
  [[ $(redis-cli -h 127.0.0.1 -p "$pport" INCR tether:image:n) == 1 ]]
  local admin="http://127.0.0.1:$aport"
  for ((i = 0; i < 50; i++)); do
    [[ $(tether_http_get "$admin/health" 2>/dev/null) == "main ok master=127.0.0.1:$rport" ]] &&
      break
    sleep 0.1
  done
  tether_http_get "$admin/health"
  tether_http_get "$admin/metrics" |
    grep -q '^redis_tether_commands_forwarded_total{service="main"} [1-9]'
  podman stop -t 10 "$IMG_CONTAINER" >/dev/null
  local code
  code=$(podman container inspect -f '{{.State.ExitCode}}' "$IMG_CONTAINER")
  podman logs "$IMG_CONTAINER" 2>&1 | tail -n 5
  podman rm "$IMG_CONTAINER" >/dev/null
  IMG_CONTAINER=''
  [[ $code == 0 ]] || {
    echo "the container exited with $code after SIGTERM" >&2
    return 1
  }
  tether_say "smoke run: PING, SET/GET/INCR through the container, /health, clean stop"
}

# stage_image: runs in its own subshell (run_stage), so its EXIT trap and globals are its own.
stage_image() {
  ((EUID == 0)) || {
    echo "the image stage needs root (rootful podman, debootstrap); TETHER_SKIP=image" >&2
    return 1
  }
  tether_ensure_packages "${TETHER_IMAGE_PACKAGES[@]}" "${TETHER_REDIS_PACKAGES[@]}"
  IMG_TMP=$(mktemp -d /tmp/tether-image.XXXXXX)
  IMG_CONTAINER=''
  trap 'if [[ -n $IMG_CONTAINER ]]; then podman rm -f "$IMG_CONTAINER" >/dev/null 2>&1; fi
        tether_stop_all; rm -rf "$IMG_TMP"' EXIT
  # Two settings this sandbox needs (../shared/container-build.md): runc, since crun fails
  # on its hybrid cgroups, and lower ulimits than root's defaults.
  if [[ -z ${CONTAINERS_CONF:-} ]]; then
    export CONTAINERS_CONF=$IMG_TMP/containers.conf
    cat >"$CONTAINERS_CONF" <<'CONF'
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
  fi
  ensure_base_image
  local jobs
  jobs=${TETHER_JOBS:-$(nproc 2>/dev/null || echo 2)}
  # --force-rm: a failed build leaves no working containers behind.
  podman build --pull=never --force-rm --build-arg JOBS="$jobs" -t "$IMAGE" -f Dockerfile .
  tether_say "-- $IMAGE: $(podman image inspect -f '{{.Size}}' "$IMAGE" | numfmt --to=iec) "
  smoke_image
  # The build stage's image and any replaced :ci image; the base and $IMAGE stay. Tidying
  # is not a verdict: an image still held by the working container of a build that was
  # killed part-way (podman ps --external) is left alone, with a warning.
  podman image prune -f >/dev/null ||
    tether_warn "podman image prune failed; left-over images: see podman ps -a --external"
  podman images
}

add_ctest_counts() {
  local f=$1/ctest-counts p f_
  [[ -f $f ]] || return 0
  read -r p f_ <"$f"
  CTEST_PASSED=$((CTEST_PASSED + p))
  CTEST_FAILED=$((CTEST_FAILED + f_))
}

main() {
  local start
  start=$(tether_now)
  tether_say "redis-tether test run in $TETHER_REPO_ROOT (CI=${CI:-unset}, fuzz ${FUZZ_SECONDS}s/target)"
  rm -f "$BUILD_DIR/ctest-counts" "$ASAN_DIR/ctest-counts"

  run_stage deps stage_deps
  run_stage format stage_format
  run_stage build stage_build
  run_stage test stage_test build
  run_stage asan-build stage_asan_build
  run_stage asan-test stage_asan_test asan-build
  run_stage fuzz stage_fuzz
  run_stage package stage_package
  run_stage image stage_image

  add_ctest_counts "$BUILD_DIR"
  add_ctest_counts "$ASAN_DIR"

  local i failed=0
  tether_step "summary"
  for i in "${!STAGE_NAMES[@]}"; do
    printf '  %-11s %-32s %s\n' "${STAGE_NAMES[i]}" "${STAGE_RESULTS[i]}" \
      "$(tether_fmt_duration "${STAGE_TIMES[i]}")"
    [[ ${STAGE_RESULTS[i]} == FAIL* ]] && failed=$((failed + 1))
  done
  printf '  %-11s %-32s %s\n' total "" "$(tether_fmt_duration $(($(tether_now) - start)))"
  if [[ -n ${SKIP// /} ]]; then
    tether_warn "stages skipped on request (TETHER_SKIP=${TETHER_SKIP:-}); CI runs them all"
  fi
  if ((failed > 0)); then
    tether_warn "$failed stage(s) failed"
  else
    tether_ok "all stages passed"
  fi
  # Plain closing line: ctest counts over both builds.
  printf 'ctest: %d passed, %d failed\n' "$CTEST_PASSED" "$CTEST_FAILED"
  ((failed == 0))
}

main "$@"
