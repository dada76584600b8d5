#!/usr/bin/env bash
# Fuzzes the sidecar's parsers with libFuzzer (README: "Fuzzing").
#   ./scripts/fuzz.sh                  every target: 1,000,000 inputs or 10 minutes, whichever first
#   ./scripts/fuzz.sh --short          every target for 20 seconds, debug build (CI, after test.sh)
#   ./scripts/fuzz.sh --time 60 sse    one target for a minute (--runs N: N inputs)
#   ./scripts/fuzz.sh --list           the targets
# Builds: --release (the default) builds sidecar-fuzz optimised, every module instrumented (C and
# C++ too: llhttp, toml++), with AddressSanitizer, in .build-fuzz-asan/ (--no-asan: without it,
# about 3x faster, in .build-fuzz/): the thorough one, but a fresh build takes ~25 min of CPU.
# --debug (the default for --short) builds it in .build/, where only the sidecar's own modules
# are instrumented and the dependencies `swift build` already built are reused (a couple of
# minutes; the next plain `swift build` recompiles those modules); debug code checks the bounds
# of unsafe buffers, which the release build leaves to AddressSanitizer.
# Targets and their invariants: Sources/SidecarFuzzing (FuzzTarget). Seeds: Fuzz/corpus/<target>
# (checked in, with the inputs found so far); the corpus libFuzzer grows and any crashing input
# stay in .build-fuzz/fuzz/. Exits non-zero if a target crashed or broke an invariant, naming
# the saved input and how to replay it; then fix, and add the input to the target's unit tests.
set -euo pipefail
cd "$(dirname "$0")/.."

all_targets=(http-request openai-request openai-request-gen sse config cache-key cache-key-gen)
runs=1000000
seconds=600
mode=""
asan=1
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --short) seconds=20; mode="${mode:-debug}" ;;
    --time) seconds="$2"; shift ;;
    --runs) runs="$2"; shift ;;
    --debug) mode=debug ;;
    --release) mode=release ;;
    --no-asan) asan=0 ;;
    --list) printf '%s\n' "${all_targets[@]}"; exit 0 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) targets+=("$1") ;;
  esac
  shift
done
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
for target in "${targets[@]}"; do
  [ -d "Fuzz/corpus/$target" ] || { echo "fuzz.sh: no target $target (--list)" >&2; exit 2; }
done

# SIDECAR_FUZZ declares sidecar-fuzz and instruments the sidecar's modules (Package.swift).
mode="${mode:-release}"
if [ "$mode" = debug ]; then
  build=(swift build --product sidecar-fuzz)
elif [ "$asan" = 1 ]; then
  mode="release, AddressSanitizer"
  build=(swift build -c release --scratch-path .build-fuzz-asan --product sidecar-fuzz
    -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=fuzzer-no-link,address -Xcxx -fsanitize=fuzzer-no-link,address)
else
  build=(swift build -c release --scratch-path .build-fuzz --product sidecar-fuzz
    -Xswiftc -sanitize=fuzzer -Xcc -fsanitize=fuzzer-no-link -Xcxx -fsanitize=fuzzer-no-link)
fi
work=.build-fuzz/fuzz
mkdir -p "$work"
echo "== building sidecar-fuzz ($mode): ${build[*]}"
start=$(date +%s)
if ! SIDECAR_FUZZ=1 nice -n 10 "${build[@]}" >"$work/build.log" 2>&1; then
  grep -vE '^\[|swift-distributed-tracing|CMakeLists.txt' "$work/build.log" >&2
  echo "fuzz.sh: the build failed (log: $work/build.log)" >&2
  exit 1
fi
bin="$(SIDECAR_FUZZ=1 "${build[@]}" --show-bin-path)/sidecar-fuzz"
echo "built in $(( $(date +%s) - start )) s"

failed=()
summary=()
for target in "${targets[@]}"; do
  corpus="$work/corpus/$target"
  crashes="$work/crashes/$target"
  log="$work/$target.log"
  mkdir -p "$corpus" "$crashes"
  options=()
  [ -f "Fuzz/dict/$target.dict" ] && options+=("-dict=Fuzz/dict/$target.dict")
  # TOMLKit 0.6 never frees a parsed table (nor its key lists): LeakSanitizer would stop there.
  leaks=1
  [ "$target" = config ] && leaks=0
  echo "== $target: up to $runs inputs or $seconds s"
  status=0
  # The Swift runtime's backtracer would take the crash signal from libFuzzer: off.
  SWIFT_BACKTRACE=enable=no ASAN_OPTIONS="detect_leaks=$leaks" nice -n 10 "$bin" "$target" \
    -runs="$runs" -max_total_time="$seconds" -detect_leaks="$leaks" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$crashes/" "${options[@]}" \
    "$corpus" "Fuzz/corpus/$target" >"$log" 2>&1 || status=$?
  executed=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | head -n 1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | head -n 1)
  took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | head -n 1)
  coverage=$(grep -aoE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]+' "$log" | tail -n 1)
  summary+=("$(printf '%-20s %9s runs %5ss %7s exec/s  %s' "$target" "${executed:-?}" "${took:-?}" "${speed:-?}" "$coverage")")
  if [ "$status" -ne 0 ]; then
    grep -aE '== invariant violated|Assertion|ERROR: libFuzzer|SUMMARY' "$log" | cut -c1-600 | head -n 4 || true
    saved=$(sed -n "s/.*Test unit written to \(.*\)$/\1/p" "$log" | tail -n 1)
    echo "!! $target failed (exit $status); log $log; input ${saved:-not saved}"
    echo "   replay: SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=$leaks $bin $target ${saved:-<input>}"
    failed+=("$target")
  fi
done

echo "== summary (runs, seconds, executions per second, libFuzzer's coverage and corpus)"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: failed: ${failed[*]}" >&2
  exit 1
fi
