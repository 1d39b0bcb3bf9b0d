#!/bin/sh
# Fuzzes every file reader for a bounded time, one at a time, and prints the figures.
# Usage: bench/fuzz-readers.sh [SECONDS_PER_TARGET [TARGET...]]   (default 60 s, all targets)
# Builds build-fuzz/ with clang and libFuzzer (ASan + UBSan) if needed. Inputs that crash,
# hang or exhaust memory are left in build-fuzz/fuzz-artifacts/TARGET/; the corpus the fuzzer
# grows is kept in build-fuzz/fuzz-corpus/TARGET/ for the next run.
set -eu
cd "$(dirname "$0")/.."
secs=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-"model-keras model-weights g model-config dataset image idx onnx h5-edit"}
build=${PS_FUZZ_BUILD:-build-fuzz}

if [ ! -f "$build/build.ninja" ]; then
  CC=clang meson setup "$build" -Dfuzzing=true -Dapp=disabled >/dev/null
fi
meson compile -C "$build" fuzz-seeds $(for t in $targets; do echo tests/fuzz/fuzz-$t; done) >/dev/null

printf '%-14s %8s %10s %8s %6s %s\n' target seconds execs execs/s found "(crash/oom/timeout/leak)"
for t in $targets; do
  corpus="$build/fuzz-corpus/$t"
  artifacts="$build/fuzz-artifacts/$t"
  log="$build/fuzz-artifacts/$t.log"
  mkdir -p "$corpus" "$artifacts"
  extra=""
  # Not pending/: inputs that still hang would stop every job.
  for d in "$build/tests/fuzz/seeds/$t" "tests/fuzz/regress/$t"; do
    [ -d "$d" ] && extra="$extra $d"
  done
  dict=""
  [ -f "tests/fuzz/$t.dict" ] && dict="-dict=tests/fuzz/$t.dict"
  # One process at a time (-fork=1): the machine is shared; a crash is recorded and the
  # fuzzing goes on, so that one known defect does not hide the next. Memory is judged by
  # what is really used (2 GB resident), not by what HDF5 asks for on damaged metadata.
  ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1} \
  UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
  PRUNESCOPE_THREADS=1 \
    "$build/tests/fuzz/fuzz-$t" -fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 \
      -max_total_time="$secs" -rss_limit_mb=2048 -malloc_limit_mb=65536 -timeout=5 -max_len=2000000 $dict \
      -artifact_prefix="$artifacts/" \
      "$corpus" $extra \
      >"$log" 2>&1 || true
  # Fork mode's last status line: "#EXECS: cov: .. exec/s N oom/timeout/crash: A/B/C time: Ts"
  execs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#')
  rate=$(grep -o 'exec/s [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  count() { find "$artifacts" -maxdepth 1 -name "$1-*" | wc -l; }
  c=$(count crash); o=$(count oom); ti=$(count timeout); l=$(count leak)
  printf '%-14s %8s %10s %8s %6s %s\n' "$t" "$secs" "${execs:-0}" "${rate:-0}" \
    $((c + o + ti + l)) "($c/$o/$ti/$l)"
done
echo "inputs that failed: $build/fuzz-artifacts/TARGET/; logs: $build/fuzz-artifacts/TARGET.log"
