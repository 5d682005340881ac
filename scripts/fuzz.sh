#!/usr/bin/env bash
# scripts/fuzz.sh [SECONDS_PER_TARGET]: build the libFuzzer targets with clang-14 and run
# each for SECONDS_PER_TARGET (default 60) seconds.
#
#   fuzz/corpus/<target>/     seed corpus (checked in, never written to)
#   $BUILD/corpus/<target>/   working corpus: seeds + what libFuzzer finds (kept between runs)
#   fuzz/artifacts/           inputs that crashed a target, copied for the bug report
#
# Environment: FUZZ_BUILD_DIR (default <repo>/build-fuzz), TETHER_JOBS (make parallelism).
# Exits non-zero when any target crashed (or failed to build).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$TETHER_REPO_ROOT"

readonly SECONDS_PER_TARGET=${1:-60}
[[ $SECONDS_PER_TARGET =~ ^[0-9]+$ ]] || tether_die "usage: scripts/fuzz.sh [SECONDS_PER_TARGET]"
readonly BUILD=${FUZZ_BUILD_DIR:-$TETHER_REPO_ROOT/build-fuzz}
readonly TARGETS=(fuzz_request_scanner fuzz_reply_framer)
readonly ARTIFACTS=$TETHER_REPO_ROOT/fuzz/artifacts

command -v clang++-14 >/dev/null || tether_die "clang++-14 not found (apt-get install clang-14 libfuzzer-14-dev)"

tether_step "building fuzz targets in $BUILD"
mkdir -p "$BUILD"
CC=clang-14 CXX=clang++-14 cmake -S "$TETHER_REPO_ROOT" -B "$BUILD" -DTETHER_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$BUILD/cmake.log" 2>&1 || {
  cat "$BUILD/cmake.log" >&2
  tether_die "cmake failed"
}
make -C "$BUILD" -j"${TETHER_JOBS:-$(nproc)}" "${TARGETS[@]}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

crashed=()
summary=()
for target in "${TARGETS[@]}"; do
  tether_step "$target: ${SECONDS_PER_TARGET}s"
  work=$BUILD/corpus/$target
  out=$BUILD/artifacts/$target
  log=$BUILD/$target.log
  mkdir -p "$work" "$out"
  rc=0
  "$BUILD/fuzz/$target" -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 \
    -max_len=4096 -timeout=10 -artifact_prefix="$out/" \
    "$work" "$TETHER_REPO_ROOT/fuzz/corpus/$target" >"$log" 2>&1 || rc=$?
  if ((rc != 0)); then
    tail -n 60 "$log"
  else
    grep -E '^(#[0-9]+ +(INITED|DONE)|Done |stat::)' "$log" || true
  fi
  execs=$(awk '/^stat::number_of_executed_units:/ {print $2}' "$log")
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log")
  found=()
  for f in "$out"/crash-* "$out"/leak-* "$out"/timeout-* "$out"/oom-*; do
    [[ -e $f ]] || continue
    mkdir -p "$ARTIFACTS"
    cp "$f" "$ARTIFACTS/$target-$(basename "$f")"
    found+=("$f")
    rm -f "$f"
  done
  if ((rc != 0 || ${#found[@]} > 0)); then
    crashed+=("$target")
    summary+=("$(printf '%-22s FAIL  exit=%s  artifacts: %s' "$target" "$rc" "${found[*]:-none}")")
  else
    summary+=("$(printf '%-22s ok    %s execs in %ss, corpus %s files' "$target" "${execs:-?}" \
      "${secs:-?}" "$(find "$work" -type f | wc -l)")")
  fi
done

tether_step "fuzz summary"
printf '  %s\n' "${summary[@]}"
if ((${#crashed[@]} > 0)); then
  tether_warn "crashing inputs copied to fuzz/artifacts/ (reproduce: $BUILD/fuzz/<target> <file>)"
  exit 1
fi
tether_ok "no crashes"
