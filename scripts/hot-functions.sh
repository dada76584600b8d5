#!/usr/bin/env bash
# Writes layout/hot-functions.txt: the functions of llm-sidecar's request path, hottest first, for
# the release link to place side by side (`--symbol-ordering-file`, see Package.swift).
#
# It profiles a release binary (perf, 10 kHz, call stacks) while wrk drives it through the
# load benchmark's configuration and fake upstream: new prompts (cache misses), repeated prompts
# (exact hits), then SSE streams. A function is listed when it was on the stack in at least two
# samples; functions the binary does not define (the kernel's, libc's) are left out. Names that
# a later build no longer has are skipped by the linker, so a stale list only costs the layout's
# gain for the functions that changed: rerun this after large changes to the request path.
#
# Usage: scripts/hot-functions.sh [--bin PATH] [--seconds N]
# Needs: perf (Debian: linux-perf), nginx, wrk, curl.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOAD=$ROOT/Benchmarks/load
BIN=$ROOT/.build/release/llm-sidecar
SECONDS_MISS=10
while [[ $# -gt 0 ]]; do
    case $1 in
        --bin) BIN=${2:?}; shift 2 ;;
        --seconds) SECONDS_MISS=${2:?}; shift 2 ;;
        *) echo "hot-functions.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[[ -x $BIN ]] || { echo "hot-functions.sh: no executable at $BIN (swift build -c release)" >&2; exit 1; }
for tool in perf nginx wrk curl; do
    command -v "$tool" > /dev/null || { echo "hot-functions.sh: $tool is missing" >&2; exit 1; }
done

WORK=$(mktemp -d)
chmod 755 "$WORK"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2> /dev/null || true; done
    wait 2> /dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

read -r STUB JSON_PORT SSE_PORT < <(python3 "$LOAD/helper.py" ports 3)
mkdir -p "$WORK/stub"
sed -e "s|@PREFIX@|$WORK/stub|g" -e "s|@PORT@|$STUB|g" -e "s|@UPSTREAM_PORT@|0|g" -e "s|@WORKERS@|1|g" \
    "$LOAD/nginx-stub.conf.in" > "$WORK/stub/nginx.conf"
nginx -p "$WORK/stub/" -c "$WORK/stub/nginx.conf" -e "$WORK/stub/error.log" &
PIDS+=($!)
# One sidecar whose upstream answers JSON, one whose upstream answers SSE streams.
sed -e "s#@PORT@#$JSON_PORT#g" -e "s#@BASE@#http://127.0.0.1:$STUB/v1#g" "$LOAD/sidecar.conf.in" > "$WORK/json.toml"
sed -e "s#@PORT@#$SSE_PORT#g" -e "s#@BASE@#http://127.0.0.1:$STUB/sse/v1#g" "$LOAD/sidecar.conf.in" > "$WORK/sse.toml"
"$BIN" serve --config "$WORK/json.toml" > "$WORK/json.log" 2>&1 &
JSON_PID=$!
PIDS+=("$JSON_PID")
"$BIN" serve --config "$WORK/sse.toml" > "$WORK/sse.log" 2>&1 &
SSE_PID=$!
PIDS+=("$SSE_PID")
for port in "$JSON_PORT" "$SSE_PORT"; do
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" > /dev/null 2>&1 && break; sleep 0.1; done
done

drive() { # seconds port [VAR=value ...]
    local seconds=$1 port=$2
    shift 2
    env BENCH_RUN_ID="hot$$-$port-$seconds" "$@" wrk -t1 -c8 -d"${seconds}s" -s "$LOAD/chat.lua" \
        "http://127.0.0.1:$port/v1/chat/completions" > /dev/null
}
drive 2 "$JSON_PORT"  # warm-up, not profiled
perf record -q -F 10000 -g -p "$JSON_PID,$SSE_PID" -o "$WORK/perf.data" > /dev/null 2>&1 &
PERF_PID=$!
sleep 0.5
drive "$SECONDS_MISS" "$JSON_PORT"
drive $(( (SECONDS_MISS + 2) / 3 )) "$JSON_PORT" BENCH_DISTINCT=16
drive $(( (SECONDS_MISS + 1) / 2 )) "$SSE_PORT" BENCH_STREAM=1
kill -INT "$PERF_PID"
wait "$PERF_PID" || true

perf script -i "$WORK/perf.data" -F ip,sym 2> /dev/null > "$WORK/stacks.txt"
nm --defined-only "$BIN" | awk '{ print $3 }' > "$WORK/defined.txt"
mkdir -p "$ROOT/layout"
python3 - "$WORK/stacks.txt" "$WORK/defined.txt" "$ROOT/layout/hot-functions.txt" << 'EOF'
import collections, sys
stacks, defined, out = sys.argv[1:]
defined = set(open(defined).read().split())
seen = collections.Counter()
current = set()
def flush():
    seen.update(current)
    current.clear()
for line in open(stacks):
    parts = line.split(None, 1)
    if not parts:
        flush()
        continue
    if len(parts) == 2:
        current.add(parts[1].split("+0x")[0].strip())
flush()
hot = [name for name, count in seen.most_common() if count >= 2 and name in defined]
open(out, "w").write("\n".join(hot) + "\n")
print(f"hot-functions.sh: {len(hot)} functions written to {out}")
EOF
