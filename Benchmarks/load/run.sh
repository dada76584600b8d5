#!/usr/bin/env bash
# Loopback load test for llm-sidecar. One command, one run, same wrk settings for every target:
#
#   a      nginx `return 200` fake OpenAI upstream, direct (JSON chat completion)
#   a-sse  the same stub's SSE location, direct
#   b      nginx proxy_pass (keepalive upstream) -> stub          (the reference: ratios use it)
#   b-sse  nginx proxy_pass, proxy_buffering off -> stub's SSE location
#   c      llm-sidecar serve -> stub (JSON), new prompt per request, short/long mix
#   d      llm-sidecar serve -> stub's SSE location, "stream": true
#   e      LiteLLM proxy (1 worker) -> stub (JSON); only with --litellm or --only ...,e
#   c-off  as c, with the response cache off ([cache] enabled = false): what the cache costs a miss
#   c-sem  as c, with the semantic cache on (the MiniLM model embeds every prompt it can)
#   h      llm-sidecar answering from its cache: 16 prompts per wrk thread, repeated (exact hits)
#
# --latency also runs latency.py after the targets above (--only none: only it):
#   SSE inter-chunk gaps, 200 streams x 40 chunks 50 ms apart, fake upstream direct vs through
#   the sidecar; open-loop 1,000 req/s for 10 s, stub (a) vs sidecar -> stub (c).
#
# Usage: Benchmarks/load/run.sh [-d 10s] [-c 32] [-t 2] [--only a,b,c|none] [--warmup 2s]
#                               [--bin PATH] [--no-build] [--keep] [--litellm]
#                               [--latency] [--latency-args "--rate 500 ..."] [--wait-load 0.7]
# Env:   DURATION CONNECTIONS THREADS TARGETS WARMUP SIDECAR_BIN NO_BUILD KEEP RESULTS_DIR
#        PROXY_WORKERS (nginx proxy b's worker_processes; default: the core count)
#        LITELLM=1 LITELLM_VENV LATENCY=1 LATENCY_ARGS WAIT_LOAD
#
# Prints a table and writes Benchmarks/results/load-<date>.json (latency-<date>.json for
# --latency). Everything binds 127.0.0.1 on free ports; every process started here is stopped by
# PID on exit. See README.md next to this.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
WARMUP=${WARMUP:-2s}
TARGETS=${TARGETS:-a,a-sse,b,b-sse,c,d}
SIDECAR_BIN=${SIDECAR_BIN:-}
NO_BUILD=${NO_BUILD:-0}
KEEP=${KEEP:-0}
RESULTS_DIR=${RESULTS_DIR:-$ROOT/Benchmarks/results}
WRK_TIMEOUT=${WRK_TIMEOUT:-5s}
# nginx proxy (b) workers: one per core by default, as the sidecar runs one event loop per core.
PROXY_WORKERS=${PROXY_WORKERS:-$(nproc 2>/dev/null || echo 1)}
READY_TIMEOUT_S=${READY_TIMEOUT_S:-30}
LITELLM=${LITELLM:-0}
LITELLM_VERSION=${LITELLM_VERSION:-1.106.2}
LITELLM_VENV=${LITELLM_VENV:-$ROOT/.build-bench-venv/litellm}  # gitignored (.build-*/)
LITELLM_READY_TIMEOUT_S=${LITELLM_READY_TIMEOUT_S:-180}
LATENCY=${LATENCY:-0}
LATENCY_ARGS=${LATENCY_ARGS:-}
WAIT_LOAD=${WAIT_LOAD:-0}          # wait for the 1-min load average to drop below this (0: never)
WAIT_LOAD_POLL_S=${WAIT_LOAD_POLL_S:-20}
WAIT_LOAD_MAX_S=${WAIT_LOAD_MAX_S:-900}
ALL_TARGETS=(a a-sse b b-sse c d e c-off c-sem h)

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

die() { printf 'run.sh: error: %s\n' "$*" >&2; exit 1; }
log() { printf '[load] %s\n' "$*" >&2; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        -d|--duration)    DURATION=${2:?}; shift 2 ;;
        --duration=*)     DURATION=${1#*=}; shift ;;
        -c|--connections) CONNECTIONS=${2:?}; shift 2 ;;
        --connections=*)  CONNECTIONS=${1#*=}; shift ;;
        -t|--threads)     THREADS=${2:?}; shift 2 ;;
        --threads=*)      THREADS=${1#*=}; shift ;;
        --only|--targets) TARGETS=${2:?}; shift 2 ;;
        --only=*|--targets=*) TARGETS=${1#*=}; shift ;;
        --warmup)         WARMUP=${2:?}; shift 2 ;;
        --warmup=*)       WARMUP=${1#*=}; shift ;;
        --bin)            SIDECAR_BIN=${2:?}; shift 2 ;;
        --bin=*)          SIDECAR_BIN=${1#*=}; shift ;;
        --no-build)       NO_BUILD=1; shift ;;
        --keep)           KEEP=1; shift ;;
        --litellm)        LITELLM=1; shift ;;
        --latency)        LATENCY=1; shift ;;
        --latency-args)   LATENCY_ARGS=${2?}; shift 2 ;;
        --latency-args=*) LATENCY_ARGS=${1#*=}; shift ;;
        --wait-load)      WAIT_LOAD=${2:?}; shift 2 ;;
        --wait-load=*)    WAIT_LOAD=${1#*=}; shift ;;
        -h|--help)        usage; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done

[[ $CONNECTIONS =~ ^[0-9]+$ && $THREADS =~ ^[0-9]+$ ]] || die "CONNECTIONS and THREADS must be integers"
(( THREADS >= 1 && CONNECTIONS >= THREADS )) || die "need THREADS >= 1 and CONNECTIONS >= THREADS (wrk)"
[[ $DURATION =~ ^[0-9]+[smh]?$ ]] || die "DURATION must look like 10s, 1m or 30"
[[ $WARMUP =~ ^[0-9]+[smh]?$ ]] || die "WARMUP must look like 2s or 0"
[[ $WAIT_LOAD =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "WAIT_LOAD must be a number like 0.7 (0: do not wait)"

# Selected targets, in canonical order.
declare -A WANT=()
[[ $TARGETS == none ]] && TARGETS=""
[[ $LITELLM == 1 ]] && TARGETS="$TARGETS,e"
IFS=',' read -r -a _req <<< "$TARGETS"
for t in "${_req[@]}"; do
    t=${t// /}
    [[ -z $t ]] && continue
    case " ${ALL_TARGETS[*]} " in *" $t "*) WANT[$t]=1 ;; *) die "unknown target '$t' (known: ${ALL_TARGETS[*]})" ;; esac
done
SELECTED=()
for t in "${ALL_TARGETS[@]}"; do [[ -n ${WANT[$t]:-} ]] && SELECTED+=("$t"); done
(( ${#SELECTED[@]} > 0 || LATENCY == 1 )) || die "no targets selected (--only none needs --latency)"
want() { [[ -n ${WANT[$1]:-} ]]; }
NEED_PROXY=0; { want b || want b-sse; } && NEED_PROXY=1
NEED_SIDECAR=0; { want c || want d || want c-off || want c-sem || want h || [[ $LATENCY == 1 ]]; } && NEED_SIDECAR=1

# ---------------------------------------------------------------------------------------------
# Tools.
command -v wrk >/dev/null 2>&1 || die "wrk not found. Install it: apt-get install -y wrk"
NGINX=${NGINX:-$(command -v nginx || true)}
[[ -z $NGINX && -x /usr/sbin/nginx ]] && NGINX=/usr/sbin/nginx
[[ -n $NGINX && -x $NGINX ]] || die "nginx not found. Install it: apt-get install -y nginx-light (the system service is never used)"
command -v python3 >/dev/null 2>&1 || die "python3 not found (used to pick free ports and write the report)"
HAVE_CURL=0; command -v curl >/dev/null 2>&1 && HAVE_CURL=1
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)

# ---------------------------------------------------------------------------------------------
# Process bookkeeping: everything started here is recorded and stopped by PID.
PIDS=()
KNOWN_ROOTS=()  # nginx masters: their CPU is not "other" load during a measurement
TMP=""
cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do
        [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        [[ -z $pid ]] && continue
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ -n $TMP && -d $TMP ]]; then
        if [[ $KEEP == 1 || $rc -ne 0 ]]; then
            log "kept work dir (configs, logs, raw wrk output): $TMP"
        else
            rm -rf "$TMP"
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

forget_pid() {
    local i
    for i in "${!PIDS[@]}"; do [[ ${PIDS[$i]} == "$1" ]] && unset 'PIDS[i]'; done
    PIDS=("${PIDS[@]}")
}

stop_pid() { # pid [timeout_tenths]
    local pid=$1 n=${2:-50}
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 "$n"); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            log "PID $pid did not exit after SIGTERM; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
    forget_pid "$pid"
}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/llm-sidecar-load.XXXXXX")
chmod 755 "$TMP"  # nginx workers may run as another user and need to reach their temp dirs
RES="$TMP/results"; mkdir -p "$RES"

# ---------------------------------------------------------------------------------------------
# Small helpers.

# http_status PORT PATH: print the HTTP status of GET PATH (no fork; bash /dev/tcp).
http_status() {
    local fd line
    { exec {fd}<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
    printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$2" >&"$fd" 2>/dev/null || { exec {fd}>&-; return 1; }
    IFS= read -r -t 2 line <&"$fd" || { exec {fd}>&-; return 1; }
    exec {fd}>&-
    line=${line%$'\r'}
    [[ $line =~ ^HTTP/[0-9.]+\ ([0-9]{3}) ]] || return 1
    printf '%s' "${BASH_REMATCH[1]}"
}

# wait_ready PID PORT PATH TIMEOUT_S: poll until GET PATH = 200; print ms since $T0 (EPOCHREALTIME).
wait_ready() {
    local pid=$1 port=$2 path=$3 timeout=$4 st deadline now
    deadline=$(( ${EPOCHREALTIME/./} + timeout * 1000000 ))
    while :; do
        if ! kill -0 "$pid" 2>/dev/null; then return 2; fi
        st=$(http_status "$port" "$path" || true)
        now=${EPOCHREALTIME/./}
        if [[ $st == 200 ]]; then
            printf '%d' $(( (now - T0_US + 500) / 1000 ))
            return 0
        fi
        (( now > deadline )) && return 1
        sleep 0.005
    done
}

proc_status_kb() { # pid field -> kB value of VmRSS/VmHWM from /proc/pid/status
    local k v _
    while read -r k v _; do
        [[ $k == "$2:" ]] && { printf '%s' "$v"; return 0; }
    done < "/proc/$1/status"
    return 1
}

proc_tree() { # pid -> pid and its direct children (nginx master + workers)
    local p stat rest ppid
    printf '%s\n' "$1"
    for p in /proc/[0-9]*; do
        stat=$(cat "$p/stat" 2>/dev/null) || continue
        rest=${stat##*) }
        read -r _ ppid _ <<< "$rest"
        [[ $ppid == "$1" ]] && printf '%s\n' "${p#/proc/}"
    done
    return 0
}

cpu_ticks() { # pid... -> utime+stime summed (clock ticks)
    local total=0 p stat rest f
    for p in "$@"; do
        stat=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        rest=${stat##*) }
        read -r -a f <<< "$rest"
        total=$(( total + f[11] + f[12] ))
    done
    printf '%d' "$total"
}

# sys_ticks: user+nice+system clock ticks of all CPUs from /proc/stat (process time; no idle,
# iowait, irq, softirq or steal).
sys_ticks() {
    local _cpu u n s _rest
    read -r _cpu u n s _rest < /proc/stat
    printf '%d' $(( u + n + s ))
}

# children_ticks VAR: CPU (user+sys, clock ticks) of this shell's reaped children (wrk, curl...),
# from the `times` builtin. Sets VAR; must not run in a subshell (a fork starts from zero).
children_ticks() {
    local _line1 cu cs
    times > "$TMP/.times"
    { read -r _line1; read -r cu cs; } < "$TMP/.times"
    printf -v "$1" '%d' $(( ( $(duration_ms "$cu") + $(duration_ms "$cs") ) * CLK_TCK / 1000 ))
}

duration_ms() { # 1m2.345s -> 62345
    local v=${1%s} m sec whole frac
    m=${v%%m*}; sec=${v#*m}; whole=${sec%.*}; frac=${sec#*.}000
    printf '%d' $(( (10#$m * 60 + 10#$whole) * 1000 + 10#${frac:0:3} ))
}

# ---------------------------------------------------------------------------------------------
# Ports and nginx instances.
read -r STUB_PORT PROXY_PORT SC_PORT_C SC_PORT_D LITELLM_PORT SC_PORT_OFF SC_PORT_SEM SC_PORT_H \
    < <(python3 "$HERE/helper.py" ports 8)
[[ -n $LITELLM_PORT ]] || die "could not pick free ports"

start_nginx() { # name template port [upstream_port]; sets NGINX_PID_<name>
    local name=$1 tpl=$2 port=$3 up=${4:-0} dir="$TMP/$1" pid rc
    mkdir -p "$dir"
    sed -e "s|@PREFIX@|$dir|g" -e "s|@PORT@|$port|g" -e "s|@UPSTREAM_PORT@|$up|g" -e "s|@WORKERS@|$PROXY_WORKERS|g" "$tpl" > "$dir/nginx.conf"
    if ! "$NGINX" -t -q -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log" 2>"$dir/configtest.log"; then
        cat "$dir/configtest.log" >&2
        die "nginx rejected the generated $name config ($dir/nginx.conf)"
    fi
    "$NGINX" -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log" >"$dir/stdout.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    T0_US=${EPOCHREALTIME/./}
    rc=0; wait_ready "$pid" "$port" /healthz 10 >/dev/null || rc=$?
    if (( rc != 0 )); then
        cat "$dir/stdout.log" "$dir/error.log" 2>/dev/null | tail -n 20 >&2
        die "nginx ($name) did not come up on 127.0.0.1:$port"
    fi
    printf -v "NGINX_PID_${name}" '%s' "$pid"
    KNOWN_ROOTS+=("$pid")
    log "nginx $name: PID $pid on 127.0.0.1:$port"
}

# ---------------------------------------------------------------------------------------------
# Sidecar binary.
BIN=""
if (( NEED_SIDECAR )); then
    if [[ -n $SIDECAR_BIN ]]; then
        BIN=$SIDECAR_BIN
        [[ -x $BIN ]] || die "SIDECAR_BIN/--bin '$BIN' is not an executable file"
    else
        BIN="$ROOT/.build/release/llm-sidecar"
        stale=""
        if [[ -x $BIN ]]; then
            stale=$(find "$ROOT/Sources" "$ROOT/Package.swift" "$ROOT/Package.resolved" -newer "$BIN" -print -quit 2>/dev/null || true)
        fi
        if [[ ! -x $BIN || -n $stale ]]; then
            if [[ $NO_BUILD == 1 ]]; then
                [[ -x $BIN ]] || die "$BIN is missing and --no-build was given (run: swift build -c release)"
                log "warning: $BIN is older than $stale; benchmarking it anyway (--no-build)"
            else
                command -v swift >/dev/null 2>&1 || die "swift not found; cannot build $BIN"
                log "building release binary (${BIN#$ROOT/} is ${stale:+older than ${stale#$ROOT/}}${stale:-missing}) ..."
                b0=$SECONDS
                (cd "$ROOT" && swift build -c release --product llm-sidecar) >&2 || die "swift build -c release failed"
                log "build took $(( SECONDS - b0 )) s"
                [[ -x $BIN ]] || die "build finished but $BIN does not exist"
            fi
        fi
    fi
fi

write_sidecar_config() { # path listen_port base_url [variant: off|semantic]
    sed -e "s#@PORT@#$2#g" -e "s#@BASE@#$3#g" "$HERE/sidecar.conf.in" > "$1"
    case ${4:-} in
        off) sed -i 's#^backend = "memory"#enabled = false#' "$1" ;;
        semantic) sed -i "s#^local_model = \"\"#local_model = \"all-MiniLM-L6-v2\"\nmodels_dir = \"$ROOT/models\"#" "$1" ;;
    esac
}

# ---------------------------------------------------------------------------------------------
# Load generation.

sample_body() { # stream(0/1) -> a request body like the Lua script's
    if [[ $1 == 1 ]]; then
        printf '{"model":"gpt-4o","messages":[{"role":"user","content":"Preflight %s: what is 2 plus 2?"}],"stream":true,"stream_options":{"include_usage":true}}' "$$"
    else
        printf '{"model":"gpt-4o","messages":[{"role":"user","content":"Preflight %s: what is 2 plus 2?"}]}' "$$"
    fi
}

preflight() { # target url stream: one request with curl; fail clearly if not 2xx
    local t=$1 url=$2 stream=$3 code
    (( HAVE_CURL )) || return 0
    code=$(curl -sS -o "$TMP/$t.preflight.body" -D "$TMP/$t.preflight.headers" -w '%{http_code}' \
        --max-time 10 -H 'Content-Type: application/json' -H 'Authorization: Bearer sk-bench-not-a-real-key' \
        --data-binary "$(sample_body "$stream")" "$url" 2>"$TMP/$t.preflight.err") || code="curl-failed"
    if [[ ! $code =~ ^2 ]]; then
        log "preflight $t: POST $url -> $code"
        cat "$TMP/$t.preflight.err" "$TMP/$t.preflight.headers" 2>/dev/null >&2 || true
        head -c 2000 "$TMP/$t.preflight.body" 2>/dev/null >&2 || true; echo >&2
        die "target $t does not answer a chat completion with 2xx; not benchmarking it"
    fi
    local used
    used=$(tr -d '\r' < "$TMP/$t.preflight.headers" | awk -F': ' 'tolower($1)=="x-model-used"{print $2}')
    log "preflight $t: $code${used:+, X-Model-Used: $used}"
}

# wrk_bg OUTFILE ARGS...: wrk with the common -t/-c/--timeout, in the background so that a
# signal interrupts `wait` and the EXIT trap stops wrk too.
wrk_bg() {
    local out=$1 pid rc=0
    shift
    wrk -t"$THREADS" -c"$CONNECTIONS" --timeout "$WRK_TIMEOUT" "$@" >"$out" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait "$pid" || rc=$?
    forget_pid "$pid"
    return "$rc"
}

# wait_quiet TARGET: with WAIT_LOAD > 0, wait until the 1-minute load average is below it (poll
# every WAIT_LOAD_POLL_S, at most WAIT_LOAD_MAX_S; then measure anyway and say so).
wait_quiet() {
    local t=$1 la waited=0
    [[ $WAIT_LOAD =~ ^0*(\.0*)?$ ]] && return 0
    while :; do
        read -r la _ < /proc/loadavg
        if awk -v a="$la" -v b="$WAIT_LOAD" 'BEGIN { exit !(a + 0 < b + 0) }'; then
            printf 'quiet_wait_s=%s\nloadavg1_before=%s\n' "$waited" "$la" >> "$RES/$t.extra"
            return 0
        fi
        if (( waited >= WAIT_LOAD_MAX_S )); then
            log "load average still $la after ${waited}s; measuring $t anyway (marked not quiet)"
            printf 'quiet_wait_s=%s\nloadavg1_before=%s\nnot_quiet=1\n' "$waited" "$la" >> "$RES/$t.extra"
            return 0
        fi
        log "waiting for a quiet machine before $t: 1-min load average $la >= $WAIT_LOAD"
        sleep "$WAIT_LOAD_POLL_S"
        waited=$(( waited + WAIT_LOAD_POLL_S ))
    done
}

# run_wrk target url stream pid-of-process-under-test
run_wrk() {
    local t=$1 url=$2 stream=$3 pid=$4 pids known c0 c1 k0 k1 s0 s1 w0 w1 e0 e1 out="$TMP/$t.wrk.txt"
    export BENCH_STREAM=$stream
    wait_quiet "$t"
    if [[ ! $WARMUP =~ ^0+[smh]?$ ]]; then
        wrk_bg "$TMP/$t.warmup.txt" -d"$WARMUP" -s "$HERE/chat.lua" "$url" \
            || { cat "$TMP/$t.warmup.txt" >&2; die "wrk warm-up failed for $t"; }
    fi
    mapfile -t pids < <(proc_tree "$pid")
    mapfile -t known < <(for p in "${KNOWN_ROOTS[@]}" "$pid"; do proc_tree "$p"; done | sort -u)
    log "measuring $t: wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency $url"
    children_ticks w0
    e0=${EPOCHREALTIME/./}; s0=$(sys_ticks); c0=$(cpu_ticks "${pids[@]}"); k0=$(cpu_ticks "${known[@]}")
    wrk_bg "$out" -d"$DURATION" --latency -s "$HERE/chat.lua" "$url" \
        || { cat "$out" >&2; die "wrk failed for $t"; }
    c1=$(cpu_ticks "${pids[@]}"); k1=$(cpu_ticks "${known[@]}"); s1=$(sys_ticks); e1=${EPOCHREALTIME/./}
    children_ticks w1
    grep -q '^WRKJSON ' "$out" || { cat "$out" >&2; die "wrk output for $t has no WRKJSON line"; }
    grep '^WRKJSON ' "$out" | tail -n 1 | cut -d' ' -f2- > "$RES/$t.wrkjson"
    {
        printf 'url=%s\n' "$url"
        printf 'cpu_ticks=%s\nclk_tck=%s\n' "$(( c1 - c0 ))" "$CLK_TCK"
        # CPU used during the run by anything but wrk and the processes started here.
        printf 'wrk_cpu_ticks=%s\nother_cpu_ticks=%s\nwall_us=%s\n' \
            "$(( w1 - w0 ))" "$(( (s1 - s0) - (k1 - k0) - (w1 - w0) ))" "$(( e1 - e0 ))"
    } > "$RES/$t.extra"
    # Show wrk's own summary (without the Lua line) for the record.
    grep -v '^WRKJSON ' "$out" | sed "s/^/[$t] /" >&2
}

bench_nginx_target() { # target url stream pid name
    preflight "$1" "$2" "$3"
    run_wrk "$1" "$2" "$3" "$4"
    printf 'cpu_process=%s\n' "$5" >> "$RES/$1.extra"
    sleep 1
}

bench_sidecar_target() { # target port base_url stream
    local t=$1 port=$2 base=$3 stream=$4 cfg="$TMP/sidecar-$1.toml" pid ready rc idle hwm after
    write_sidecar_config "$cfg" "$port" "$base" "${VARIANT:-}"
    T0_US=${EPOCHREALTIME/./}
    "$BIN" serve --config "$cfg" --listen "127.0.0.1:$port" >"$TMP/sidecar-$t.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    rc=0; ready=$(wait_ready "$pid" "$port" /readyz "$READY_TIMEOUT_S") || rc=$?
    if (( rc != 0 )); then
        tail -n 30 "$TMP/sidecar-$t.log" >&2 || true
        (( rc == 2 )) && die "llm-sidecar exited during startup (config $cfg)"
        die "llm-sidecar did not answer GET /readyz = 200 within ${READY_TIMEOUT_S}s on 127.0.0.1:$port"
    fi
    log "sidecar for $t: PID $pid, ready in $ready ms (upstream $base)"
    sleep 1
    idle=$(proc_status_kb "$pid" VmRSS || echo "")
    preflight "$t" "http://127.0.0.1:$port/v1/chat/completions" "$stream"
    run_wrk "$t" "http://127.0.0.1:$port/v1/chat/completions" "$stream" "$pid"
    kill -0 "$pid" 2>/dev/null || { tail -n 30 "$TMP/sidecar-$t.log" >&2; die "llm-sidecar died during the $t run"; }
    hwm=$(proc_status_kb "$pid" VmHWM || echo "")
    after=$(proc_status_kb "$pid" VmRSS || echo "")
    # Over the sidecar's life (preflight, warm-up, run): requests it answered and the upstream
    # connections and TLS handshakes it opened for them, from its own /metrics.
    curl -s --max-time 5 "http://127.0.0.1:$port/metrics" > "$TMP/$t.metrics" || true
    {
        printf 'cpu_process=llm-sidecar\nready_ms=%s\nidle_rss_kb=%s\npeak_rss_kb=%s\nrss_after_kb=%s\nconfig=%s\n' \
            "$ready" "$idle" "$hwm" "$after" "$(basename "$cfg")"
        for name in requests_total upstream_connections_opened_total upstream_tls_handshakes_total; do
            printf 'metric_%s=%s\n' "$name" \
                "$(awk -v m="llm_sidecar_$name" '$1 == m || index($1, m "{") == 1 { s += $NF } END { print s + 0 }' \
                    "$TMP/$t.metrics")"
        done
    } >> "$RES/$t.extra"
    stop_pid "$pid" 100
    sleep 1
}

# LiteLLM (target e): its own venv (created on first use, outside git), 1 worker, offline cost
# map, master key = the key chat.lua sends, one OpenAI-compatible model per chat.lua model name,
# both pointing at the stub.
ensure_litellm() {
    local have=""
    if [[ -x $LITELLM_VENV/bin/python ]]; then
        have=$("$LITELLM_VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("litellm"))' 2>/dev/null || true)
    fi
    if [[ $have != "$LITELLM_VERSION" ]]; then
        log "installing litellm[proxy]==$LITELLM_VERSION into $LITELLM_VENV (about 45 s, 750 MB) ..."
        python3 -m venv "$LITELLM_VENV" || die "python3 -m venv $LITELLM_VENV failed (apt-get install -y python3-venv)"
        "$LITELLM_VENV/bin/pip" install -q "litellm[proxy]==$LITELLM_VERSION" >&2 \
            || die "pip could not install litellm[proxy]==$LITELLM_VERSION"
    fi
    [[ -x $LITELLM_VENV/bin/litellm ]] || die "$LITELLM_VENV/bin/litellm missing after install"
}

bench_litellm_target() { # target port stub_base
    local t=$1 port=$2 base=$3 cfg="$TMP/litellm-$1.yaml" pid ready rc hwm m
    ensure_litellm
    {
        printf '# Generated by Benchmarks/load/run.sh: the chat.lua model names -> the nginx stub.\n'
        printf 'model_list:\n'
        for m in gpt-4o llama3.2:3b; do
            printf '  - model_name: "%s"\n    litellm_params:\n      model: "openai/%s"\n' "$m" "$m"
            printf '      api_base: "%s"\n      api_key: "sk-bench-upstream-not-a-real-key"\n' "$base"
        done
    } > "$cfg"
    T0_US=${EPOCHREALTIME/./}
    LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_MASTER_KEY=sk-bench-not-a-real-key LITELLM_TELEMETRY=False \
        "$LITELLM_VENV/bin/litellm" --config "$cfg" --host 127.0.0.1 --port "$port" --num_workers 1 \
        >"$TMP/litellm-$t.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    rc=0; ready=$(wait_ready "$pid" "$port" /health/liveliness "$LITELLM_READY_TIMEOUT_S") || rc=$?
    if (( rc != 0 )); then
        tail -n 30 "$TMP/litellm-$t.log" >&2 || true
        die "LiteLLM did not answer GET /health/liveliness = 200 within ${LITELLM_READY_TIMEOUT_S}s"
    fi
    log "litellm for $t: PID $pid, ready in $ready ms (upstream $base)"
    sleep 1
    preflight "$t" "http://127.0.0.1:$port/v1/chat/completions" 0
    run_wrk "$t" "http://127.0.0.1:$port/v1/chat/completions" 0 "$pid"
    kill -0 "$pid" 2>/dev/null || { tail -n 30 "$TMP/litellm-$t.log" >&2; die "LiteLLM died during the $t run"; }
    hwm=$(proc_status_kb "$pid" VmHWM || echo "")
    printf 'cpu_process=litellm %s\nready_ms=%s\npeak_rss_kb=%s\n' "$LITELLM_VERSION" "$ready" "$hwm" >> "$RES/$t.extra"
    stop_pid "$pid" 100
    sleep 1
}

# ---------------------------------------------------------------------------------------------
# Run.
LAT_NOTE=""; [[ $LATENCY == 1 ]] && LAT_NOTE=" + latency.py"
log "targets: ${SELECTED[*]:-none}$LAT_NOTE; wrk -t$THREADS -c$CONNECTIONS -d$DURATION (warm-up $WARMUP); work dir $TMP"
start_nginx stub "$HERE/nginx-stub.conf.in" "$STUB_PORT"
(( NEED_PROXY )) && start_nginx proxy "$HERE/nginx-proxy.conf.in" "$PROXY_PORT" "$STUB_PORT"

{
    printf 'date=%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    printf 'duration=%s\nconnections=%s\nthreads=%s\nwarmup=%s\nwrk_timeout=%s\n' "$DURATION" "$CONNECTIONS" "$THREADS" "$WARMUP" "$WRK_TIMEOUT"
    printf 'targets=%s\n' "$(IFS=,; echo "${SELECTED[*]}")"
    printf 'nproc=%s\n' "$(nproc 2>/dev/null || echo '?')"
    printf 'cpu=%s\n' "$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo 2>/dev/null)"
    printf 'kernel=%s\n' "$(uname -r)"
    printf 'loadavg_at_start=%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
    printf 'nginx_proxy_workers=%s\n' "$PROXY_WORKERS"
    printf 'nginx=%s\n' "$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')"
    printf 'wrk=%s\n' "$(wrk --version 2>&1 | head -n 1 | awk '{print $1" "$2}')"
    printf 'git_commit=%s\n' "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)"
    if [[ -n $BIN ]]; then
        printf 'sidecar_bin=%s\n' "$BIN"
        printf 'sidecar_bin_mtime=%s\n' "$(date -u -r "$BIN" +%Y-%m-%dT%H:%M:%SZ)"
        printf 'sidecar_bin_bytes=%s\n' "$(stat -c %s "$BIN")"
    fi
} > "$RES/meta"

STUB="http://127.0.0.1:$STUB_PORT"
PROXY="http://127.0.0.1:$PROXY_PORT"
for t in "${SELECTED[@]}"; do
    case $t in
        a)     bench_nginx_target a     "$STUB/v1/chat/completions"      0 "$NGINX_PID_stub"  nginx-stub ;;
        a-sse) bench_nginx_target a-sse "$STUB/sse/v1/chat/completions"  1 "$NGINX_PID_stub"  nginx-stub ;;
        b)     bench_nginx_target b     "$PROXY/v1/chat/completions"     0 "$NGINX_PID_proxy" nginx-proxy ;;
        b-sse) bench_nginx_target b-sse "$PROXY/sse/v1/chat/completions" 1 "$NGINX_PID_proxy" nginx-proxy ;;
        c)     bench_sidecar_target c "$SC_PORT_C" "$STUB/v1" 0 ;;
        d)     bench_sidecar_target d "$SC_PORT_D" "$STUB/sse/v1" 1 ;;
        e)     bench_litellm_target e "$LITELLM_PORT" "$STUB/v1" ;;
        c-off) VARIANT=off bench_sidecar_target c-off "$SC_PORT_OFF" "$STUB/v1" 0 ;;
        c-sem) VARIANT=semantic bench_sidecar_target c-sem "$SC_PORT_SEM" "$STUB/v1" 0 ;;
        h)     BENCH_DISTINCT=16 bench_sidecar_target h "$SC_PORT_H" "$STUB/v1" 0 ;;
    esac
done

printf 'loadavg_at_end=%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" >> "$RES/meta"
mkdir -p "$RESULTS_DIR"
if (( ${#SELECTED[@]} > 0 )); then
    OUT="$RESULTS_DIR/load-$(date +%Y%m%d-%H%M%S).json"
    python3 "$HERE/helper.py" report "$RES" "$OUT" "$(IFS=,; echo "${SELECTED[*]}")"
fi

if [[ $LATENCY == 1 ]]; then
    # LATENCY_ARGS is word-split on purpose (plain flags and numbers).
    # shellcheck disable=SC2086
    python3 "$HERE/latency.py" --bin "$BIN" --stub-port "$STUB_PORT" --stub-pid "$NGINX_PID_stub" \
        --wait-load "$WAIT_LOAD" --workdir "$TMP/latency" \
        --out "$RESULTS_DIR/latency-$(date +%Y%m%d-%H%M%S).json" $LATENCY_ARGS &
    lat_pid=$!
    PIDS+=("$lat_pid")
    rc=0; wait "$lat_pid" || rc=$?
    forget_pid "$lat_pid"
    (( rc == 0 )) || die "latency.py failed (exit $rc)"
fi
