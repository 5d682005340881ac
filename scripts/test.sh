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
