#!/usr/bin/env bash
# Runs Benchmarks/load/run.sh several times (each run measures b and c back to back, as the
# criterion "c >= 50% of b in the same run" asks) and prints every run's ratio and the median.
# On a shared 2-core machine a single run moves by +-10%; the median of several is the figure
# to quote.
#
# Usage: Benchmarks/load/repeat.sh [-n 5] [run.sh arguments ...]   (default: --only b,c -d 8s)
# Writes Benchmarks/results/repeat-<date>.json with the per-run figures.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
RUNS=5
if [[ ${1:-} == -n ]]; then RUNS=${2:?}; shift 2; fi
ARGS=("$@")
(( ${#ARGS[@]} > 0 )) || ARGS=(--only b,c -d 8s)
RESULTS_DIR=${RESULTS_DIR:-$ROOT/Benchmarks/results}
mkdir -p "$RESULTS_DIR"

files=()
for (( i = 1; i <= RUNS; i++ )); do
    printf '[repeat] run %d of %d: run.sh %s\n' "$i" "$RUNS" "${ARGS[*]}" >&2
    before=$(ls -1 "$RESULTS_DIR"/load-*.json 2>/dev/null | sort | tail -n 1 || true)
    "$HERE/run.sh" "${ARGS[@]}" > /dev/null
    after=$(ls -1 "$RESULTS_DIR"/load-*.json | sort | tail -n 1)
    [[ $after != "$before" ]] || { echo "repeat.sh: run.sh wrote no new report" >&2; exit 1; }
    files+=("$after")
    sleep 1
done

python3 - "$RESULTS_DIR/repeat-$(date +%Y%m%d-%H%M%S).json" "${files[@]}" <<'EOF'
import json, statistics, sys
out, files = sys.argv[1], sys.argv[2:]
runs = []
for f in files:
    report = json.load(open(f))
    runs.append({r["target"]: r for r in report["results"]} | {"_file": f})
targets = [t for t in runs[0] if t != "_file"]
print("| run | " + " | ".join(f"{t} req/s" for t in targets) + " | c/b | c CPU us/req |")
print("|---|" + "---|" * (len(targets) + 2))
ratios = []
for i, run in enumerate(runs, 1):
    ratio = run["c"]["requests_per_s"] / run["b"]["requests_per_s"] if "b" in run and "c" in run else None
    if ratio is not None:
        ratios.append(ratio)
    cells = " | ".join(f"{run[t]['requests_per_s']:,.0f}" for t in targets)
    cpu = run.get("c", {}).get("cpu_us_per_request")
    print(f"| {i} | {cells} | {ratio:.3f} | {cpu} |" if ratio is not None else f"| {i} | {cells} | - | - |")
summary = {"runs": len(runs), "files": files}
if ratios:
    summary |= {"ratios_c_over_b": [round(r, 3) for r in ratios], "median": round(statistics.median(ratios), 3),
                "min": round(min(ratios), 3), "max": round(max(ratios), 3)}
    print(f"\nc/b per run: {', '.join(f'{r:.3f}' for r in ratios)}; median {statistics.median(ratios):.3f} "
          f"(min {min(ratios):.3f}, max {max(ratios):.3f}); target >= 0.500: "
          f"{'PASS' if statistics.median(ratios) >= 0.5 else 'FAIL'} on the median")
json.dump(summary, open(out, "w"), indent=2)
print(f"JSON: {out}")
EOF
