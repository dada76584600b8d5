#!/usr/bin/env bash
# CPU per request of two sidecars measured at the same time, so that the VM's drifts (which move
# one run's figures by a third on a shared 2-core machine) hit both alike: A and B share CPU 1,
# the nginx stub upstream and one wrk per sidecar (-t1 -c8, a new prompt per request) share CPU 0.
# Each round prints both sidecars' CPU microseconds per answered request and B/A; the median of
# the rounds is the figure to quote. An A/A run (the same binary and config twice) reads 0.97-1.00.
#
# Usage: Benchmarks/load/cpu-ab.sh [-n ROUNDS] [-d SECONDS] BIN_A CONF_A BIN_B CONF_B
#        Benchmarks/load/cpu-ab.sh [-n ROUNDS] [-d SECONDS] --cache BIN
#   CONF_*: a sidecar config template with @PORT@ and @BASE@ (as Benchmarks/load/sidecar.conf.in).
#   --cache: BIN with the response cache off (A) against BIN with the exact cache on (B), every
#            request a miss: what the cache adds to a miss.
# Needs nginx, wrk and taskset (Debian: nginx-light, wrk, util-linux).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROUNDS=5
SECONDS_PER_ROUND=8
while [[ ${1:-} == -* ]]; do
    case $1 in
        -n) ROUNDS=${2:?}; shift 2 ;;
        -d) SECONDS_PER_ROUND=${2:?}; shift 2 ;;
        --cache) break ;;
        *) echo "cpu-ab.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
WORK=$(mktemp -d)
chmod 755 "$WORK"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
if [[ ${1:-} == --cache ]]; then
    BIN_A=${2:?usage}; BIN_B=$BIN_A
    CONF_A=$WORK/off.in; CONF_B=$HERE/sidecar.conf.in
    sed 's#^backend = "memory"#enabled = false#' "$HERE/sidecar.conf.in" > "$CONF_A"
else
    BIN_A=${1:?usage}; CONF_A=${2:?usage}; BIN_B=${3:?usage}; CONF_B=${4:?usage}
fi

read -r STUB_PORT PORT_A PORT_B < <(python3 "$HERE/helper.py" ports 3)
mkdir -p "$WORK/stub"
sed -e "s|@PREFIX@|$WORK/stub|g" -e "s|@PORT@|$STUB_PORT|g" -e "s|@UPSTREAM_PORT@|0|g" -e "s|@WORKERS@|1|g" \
    "$HERE/nginx-stub.conf.in" > "$WORK/stub/nginx.conf"
taskset -c 0 nginx -p "$WORK/stub/" -c "$WORK/stub/nginx.conf" -e "$WORK/stub/error.log" &
PIDS+=($!)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ratios=()
for (( round = 1; round <= ROUNDS; round++ )); do
    sed -e "s#@PORT@#$PORT_A#g" -e "s#@BASE@#http://127.0.0.1:$STUB_PORT/v1#g" "$CONF_A" > "$WORK/a.conf"
    sed -e "s#@PORT@#$PORT_B#g" -e "s#@BASE@#http://127.0.0.1:$STUB_PORT/v1#g" "$CONF_B" > "$WORK/b.conf"
    taskset -c 1 "$BIN_A" serve --config "$WORK/a.conf" > "$WORK/a.log" 2>&1 &
    A=$!
    taskset -c 1 "$BIN_B" serve --config "$WORK/b.conf" > "$WORK/b.log" 2>&1 &
    B=$!
    PIDS+=("$A" "$B")
    for port in "$PORT_A" "$PORT_B"; do
        for _ in $(seq 100); do
            curl -sf --max-time 2 "http://127.0.0.1:$port/readyz" > /dev/null 2>&1 && break
            sleep 0.1
        done
    done
    run_wrk() {  # port, seconds, run id, output
        BENCH_RUN_ID=$3 taskset -c 0 wrk -t1 -c8 -d"$2"s -s "$HERE/chat.lua" \
            "http://127.0.0.1:$1/v1/chat/completions" > "$4"
    }
    # Warm-up (pools, caches), then the measured run; each wrk asks its own new prompts.
    run_wrk "$PORT_A" 2 "wa$round$$" /dev/null & W=$!
    run_wrk "$PORT_B" 2 "wb$round$$" /dev/null
    wait "$W"
    a0=$(cpu_ticks "$A"); b0=$(cpu_ticks "$B")
    run_wrk "$PORT_A" "$SECONDS_PER_ROUND" "ra$round$$" "$WORK/wa.txt" & W=$!
    run_wrk "$PORT_B" "$SECONDS_PER_ROUND" "rb$round$$" "$WORK/wb.txt"
    wait "$W"
    a1=$(cpu_ticks "$A"); b1=$(cpu_ticks "$B")
    na=$(awk '/requests in/{print $1}' "$WORK/wa.txt"); nb=$(awk '/requests in/{print $1}' "$WORK/wb.txt")
    ticks=$(getconf CLK_TCK)
    line=$(python3 -c "
a = ($a1 - $a0) * 1e6 / $ticks / $na; b = ($b1 - $b0) * 1e6 / $ticks / $nb
print('%d %d %.1f %.1f %.4f' % ($na, $nb, a, b, b / a))")
    read -r ra rb ua ub ratio <<< "$line"
    printf 'round %d: A %s req, %s us/req   B %s req, %s us/req   B/A %s\n' "$round" "$ra" "$ua" "$rb" "$ub" "$ratio"
    ratios+=("$ratio")
    kill "$A" "$B"
    wait "$A" "$B" 2>/dev/null || true
    sleep 0.5
done
python3 -c "
import statistics, sys
r = [float(x) for x in sys.argv[1:]]
print('B/A CPU per request: median %.3f (%s)' % (statistics.median(r), ', '.join('%.3f' % x for x in r)))" "${ratios[@]}"
