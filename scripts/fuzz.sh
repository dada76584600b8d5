#!/usr/bin/env bash
# Fuzzes the sidecar's parsers with libFuzzer (README: "Fuzzing").
#   ./scripts/fuzz.sh                  every target: 1,000,000 inputs or 10 minutes, whichever first
#   ./scripts/fuzz.sh --short          every target for 20 seconds (CI)
#   ./scripts/fuzz.sh --time 60 sse    one target for a minute (--runs N: N inputs)
#   ./scripts/fuzz.sh --list           the targets
# Targets and their invariants: Sources/SidecarFuzzing (FuzzTarget). Seeds: Fuzz/corpus/<target>
# (checked in); the corpus libFuzzer grows and any crashing input stay in .build-fuzz/.
# Exits non-zero if a target crashed or broke an invariant, naming the saved input; replay it
# with `.build-fuzz/release/sidecar-fuzz <target> <file>`, then add it to the target's unit tests.
set -euo pipefail
cd "$(dirname "$0")/.."

all_targets=(http-request openai-request openai-request-gen sse config cache-key cache-key-gen)
runs=1000000
seconds=600
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --short) seconds=20 ;;
    --time) seconds="$2"; shift ;;
    --runs) runs="$2"; shift ;;
    --list) printf '%s\n' "${all_targets[@]}"; exit 0 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) targets+=("$1") ;;
  esac
  shift
done
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")

# Release (-O) code runs the targets 10-50x faster than debug; -sanitize=fuzzer adds libFuzzer's
# coverage counters to every Swift module, and the C and C++ ones (llhttp, toml++) get them too.
# Debug-only bounds checks on unsafe buffers are gone in release, so a bad index there shows up
# as a wrong result (an invariant) rather than a trap.
scratch=.build-fuzz
build=(swift build -c release --scratch-path "$scratch" --product sidecar-fuzz
  -Xswiftc -sanitize=fuzzer -Xcc -fsanitize=fuzzer-no-link -Xcxx -fsanitize=fuzzer-no-link)
echo "== building sidecar-fuzz (${scratch}/)"
start=$(date +%s)
mkdir -p "$scratch/fuzz"
if ! SIDECAR_FUZZ=1 nice -n 10 "${build[@]}" >"$scratch/fuzz/build.log" 2>&1; then
  grep -vE '^\[|swift-distributed-tracing|CMakeLists.txt' "$scratch/fuzz/build.log" >&2
  echo "fuzz.sh: the build failed (log: $scratch/fuzz/build.log)" >&2
  exit 1
fi
bin="$(SIDECAR_FUZZ=1 "${build[@]}" --show-bin-path)/sidecar-fuzz"
echo "built in $(( $(date +%s) - start )) s"

failed=()
summary=()
for target in "${targets[@]}"; do
  [ -d "Fuzz/corpus/$target" ] || { echo "fuzz.sh: no target $target (--list)" >&2; exit 2; }
  corpus="$scratch/fuzz/corpus/$target"
  crashes="$scratch/fuzz/crashes/$target"
  log="$scratch/fuzz/$target.log"
  mkdir -p "$corpus" "$crashes"
  dict=()
  [ -f "Fuzz/dict/$target.dict" ] && dict=("-dict=Fuzz/dict/$target.dict")
  echo "== $target: up to $runs inputs or $seconds s"
  status=0
  # The Swift runtime's backtracer would take the crash signal from libFuzzer: off.
  SWIFT_BACKTRACE=enable=no nice -n 10 "$bin" "$target" -runs="$runs" -max_total_time="$seconds" \
    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$crashes/" "${dict[@]}" \
    "$corpus" "Fuzz/corpus/$target" >"$log" 2>&1 || status=$?
  grep -E '^#[0-9]+ +(pulse|DONE)' "$log" | tail -n 3 || true
  executed=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log")
  coverage=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]+' "$log" | tail -n 1)
  summary+=("$(printf '%-20s %9s runs %5ss %7s exec/s  %s' "$target" "${executed:-?}" "${took:-?}" "${speed:-?}" "$coverage")")
  if [ "$status" -ne 0 ]; then
    grep -E '== invariant violated|ERROR: libFuzzer|SUMMARY' "$log" | head -n 5 || true
    saved=$(sed -n "s/.*Test unit written to \(.*\)$/\1/p" "$log" | tail -n 1)
    echo "!! $target failed (exit $status); log $log; input ${saved:-not saved}"
    echo "   replay: SWIFT_BACKTRACE=enable=no $bin $target ${saved:-<input>}"
    failed+=("$target")
  fi
done

echo "== summary"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: failed: ${failed[*]}" >&2
  exit 1
fi
