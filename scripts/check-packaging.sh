#!/usr/bin/env bash
# Checks the packaging without a container engine and without systemd running: what the
# Dockerfile's RUN steps and scripts/install-systemd.sh do, run on this host into a temporary
# directory.
#
# Usage: scripts/check-packaging.sh [--bin PATH] [--also-check CONF]... [--keep]
#   --bin PATH         the built binary (default: $SIDECAR_BIN, else .build/release/llm-sidecar)
#   --also-check CONF  also run `llm-sidecar check --config CONF` from the staged tree (e.g. the
#                      Kubernetes ConfigMap's sidecar.conf): it must not be invalid (exit 2)
#   --keep             keep the temporary directory and print its path
#
# 1. the image tree: scripts/stage-runtime.sh --root TMP/image --listen 0.0.0.0:8088, as the
#    Dockerfile runs it; the layout, the model's sha256, the configuration's rewritten keys;
#    every library the binary links is either staged or comes from a Debian package the
#    Dockerfile's runtime stage installs (or one of their dependencies);
# 2. the staged binary run from the staged tree, with only the staged configuration: in a
#    private mount namespace (unshare) the staged /usr/local is mounted over /usr/local and the
#    toolchain's Swift library directory is hidden, so a missing library fails here as it
#    would in the image (without unshare: the dynamic loader with the staged library path and
#    RUNPATH ignored, and the configuration's paths prefixed with the staged root);
#    --version, check, then serve on a free loopback port, as an unprivileged user (uid 65534
#    via setpriv when run as root), as the image, the pod and the unit run it: the staged health check must see
#    /healthz and /readyz answer 200, and SIGTERM must end it with exit code 0;
# 3. scripts/install-systemd.sh --root TMP/host: the files, modes, idempotency (an edited
#    configuration and env file survive a second run), --uninstall keeping /etc and --purge;
# 4. systemd-analyze verify on the installed unit, with ExecStart pointed at the installed
#    binary under TMP/host (verify needs it to exist), and systemd-analyze security --offline
#    (exposure at most 2.0); TimeoutStopSec above the configuration's [timeouts] request_ms.
#    Skipped, and said so, when systemd-analyze is not installed (apt-get install systemd).
# Prints one line per check; exits 1 on the first failure.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
bin="${SIDECAR_BIN:-${repo}/.build/release/llm-sidecar}"
also_check=()
keep=0
readonly PREFIX=/usr/local
readonly MODELS_DIR=${PREFIX}/share/llm-sidecar/models
readonly MODEL_SHA256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

ok() { echo "ok    $*"; }
skip() { echo "skip  $*"; }
fail() { echo "FAIL  $*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# Inside the private mount namespace (re-executed by step 2): run the staged tree in place.
if [[ "${1:-}" == "--in-namespace" ]]; then
    shift
    stage="$1"; shift
    for dir in "$@"; do mount -t tmpfs -o ro,size=1k llm-sidecar-hide "${dir}"; done
    mount --bind "${stage}${PREFIX}" "${PREFIX}"
    exec env CHECK_MODE=namespace STAGE="${stage}" bash "${self}" --runtime-checks
fi

# Step 2's checks, in either mode. run_staged CMD...: runs the staged binary.
if [[ "${1:-}" == "--runtime-checks" ]]; then
    conf="${STAGE}/etc/llm-sidecar/sidecar.conf"
    # The image, the pod and the systemd unit all run the sidecar as an unprivileged user: so
    # does this check when it can (as root: nobody, uid 65534, no groups, no capabilities).
    as_user=()
    user_note="as $(id -un)"
    if [[ "$(id -u)" == 0 ]] && command -v setpriv >/dev/null; then
        as_user=(setpriv --reuid 65534 --regid 65534 --clear-groups --)
        user_note="as uid 65534"
    fi
    if [[ "${CHECK_MODE}" == "namespace" ]]; then
        binary="${PREFIX}/bin/llm-sidecar"
        healthcheck=("${PREFIX}/bin/llm-sidecar-healthcheck")
        run_staged() { ${as_user[@]+"${as_user[@]}"} "${binary}" "$@"; }
        exec_staged() { exec ${as_user[@]+"${as_user[@]}"} "${binary}" "$@"; }
        libs="$(ldd "$(readlink -f "${binary}")")"
        grep -q "not found" <<<"${libs}" && fail "staged binary: unresolved libraries: $(grep 'not found' <<<"${libs}")"
        staged_libs="$(grep -c "=> ${PREFIX}/lib/llm-sidecar/" <<<"${libs}" || true)"
        ok "staged binary resolves every library with the toolchain hidden (${staged_libs} from ${PREFIX}/lib/llm-sidecar)"
    else
        binary="${STAGE}${PREFIX}/lib/llm-sidecar/llm-sidecar"
        healthcheck=("${STAGE}${PREFIX}/bin/llm-sidecar-healthcheck")
        loader="$(readlink -f /lib64/ld-linux-x86-64.so.2 2>/dev/null || true)"
        [[ -x "${loader}" ]] || fail "no dynamic loader at /lib64/ld-linux-x86-64.so.2 to run the staged binary"
        run_staged() { ${as_user[@]+"${as_user[@]}"} "${loader}" --inhibit-rpath "${binary}" --library-path "${STAGE}${PREFIX}/lib/llm-sidecar" "${binary}" "$@"; }
        exec_staged() { exec ${as_user[@]+"${as_user[@]}"} "${loader}" --inhibit-rpath "${binary}" --library-path "${STAGE}${PREFIX}/lib/llm-sidecar" "${binary}" "$@"; }
        # The configuration names /usr/local/share/...: point a copy at the staged root.
        sed "s#\"${PREFIX}/share/llm-sidecar#\"${STAGE}${PREFIX}/share/llm-sidecar#" "${conf}" >"${STAGE}/../rooted.conf"
        conf="${STAGE}/../rooted.conf"
        ok "staged binary runs by the loader with RUNPATH ignored (unshare not permitted here)"
    fi

    version="$(run_staged --version)" || fail "staged binary: --version failed"
    ok "staged binary --version: ${version}"

    set +e
    out="$(run_staged check --config "${conf}" 2>&1)"; rc=$?
    set -e
    [[ "${rc}" == 0 || "${rc}" == 1 ]] || fail "staged check exited ${rc} (2 = invalid configuration):"$'\n'"${out}"
    grep -q "^configuration: .*: ok" <<<"${out}" || fail "staged check: no 'configuration: ok' line:"$'\n'"${out}"
    grep -q "^local embeddings: all-MiniLM-L6-v2: ok" <<<"${out}" \
        || fail "staged check: the model does not load from the staged tree:"$'\n'"$(grep '^local embeddings' <<<"${out}")"
    router_line="$(grep '^router:' <<<"${out}" || true)"
    if [[ -f "${STAGE}${MODELS_DIR}/router/router.json" ]]; then
        [[ "${router_line}" == "router: learned"* ]] || fail "staged check: the router does not load: ${router_line}"
    fi
    ok "staged check ${user_note} (exit ${rc}; 1 = upstreams unreachable here): configuration ok, model ok, ${router_line:-no router line}"

    for extra in ${ALSO_CHECK:-}; do
        set +e
        out="$(run_staged check --config "${extra}" 2>&1)"; rc=$?
        set -e
        [[ "${rc}" == 0 || "${rc}" == 1 ]] || fail "check --config ${extra} exited ${rc}:"$'\n'"${out}"
        grep -q "^local embeddings: all-MiniLM-L6-v2: ok" <<<"${out}" \
            || fail "check --config ${extra}: the model does not load: $(grep '^local embeddings' <<<"${out}")"
        ok "staged check --config ${extra##*/} (exit ${rc}): valid, model ok, $(grep '^router:' <<<"${out}" || true)"
    done

    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null \
        || echo $((20000 + RANDOM % 20000)))"
    log="${STAGE}/../serve.log"
    # exec: the background job is the sidecar itself, so SIGTERM reaches it.
    exec_staged serve --config "${conf}" --listen "127.0.0.1:${port}" --log-level info >"${log}" 2>&1 &
    pid=$!
    ready=0
    deadline=$((SECONDS + 30))
    while (( SECONDS < deadline )); do
        if "${healthcheck[@]}" "127.0.0.1:${port}" /healthz 2>/dev/null \
            && "${healthcheck[@]}" "127.0.0.1:${port}" /readyz 2>/dev/null; then
            ready=1; break
        fi
        kill -0 "${pid}" 2>/dev/null || break
        sleep 0.2
    done
    # On a failure the sidecar goes at once (SIGKILL): a drain would wait for the stuck
    # connection up to request_ms.
    stop_now() { kill -KILL "${pid}" 2>/dev/null || true; wait "${pid}" 2>/dev/null || true; }
    if [[ "${ready}" != 1 ]]; then
        stop_now
        fail "staged serve ${user_note}: /healthz and /readyz not both 200 within 30 s; its log:"$'\n'"$(tail -n 20 "${log}")"
    fi
    if "${healthcheck[@]}" "127.0.0.1:${port}" /no-such-path 2>/dev/null; then
        stop_now; fail "llm-sidecar-healthcheck accepted a 404"
    fi
    ok "staged serve ${user_note} on 127.0.0.1:${port}: llm-sidecar-healthcheck sees /healthz and /readyz answer 200"
    kill -TERM "${pid}"
    set +e
    # Nothing is in flight: the drain is immediate (allow 30 s).
    for _ in $(seq 1 300); do kill -0 "${pid}" 2>/dev/null || break; sleep 0.1; done
    kill -0 "${pid}" 2>/dev/null && { stop_now; fail "staged serve still running 30 s after SIGTERM"; }
    wait "${pid}"; rc=$?
    set -e
    [[ "${rc}" == 0 ]] || fail "staged serve exited ${rc} on SIGTERM; its log:"$'\n'"$(tail -n 20 "${log}")"
    ok "staged serve drained and exited 0 on SIGTERM"
    exit 0
fi

# ---------------------------------------------------------------------------------------------
while [[ $# -gt 0 ]]; do
    case "$1" in
        --bin) bin="${2:?}"; shift 2 ;;
        --also-check) also_check+=("$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"); shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "check-packaging: unknown argument: $1" >&2; exit 2 ;;
    esac
done
[[ -x "${bin}" ]] || fail "no binary at ${bin} (build it, or pass --bin / SIDECAR_BIN)"
bin="$(cd "$(dirname "${bin}")" && pwd)/$(basename "${bin}")"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/llm-sidecar-packaging.XXXXXX")"
chmod 0755 "${tmp}"   # the staged tree is run as an unprivileged user (nothing secret in it)
if [[ "${keep}" == 1 ]]; then
    trap 'echo "kept ${tmp}"' EXIT
else
    trap 'rm -rf "${tmp}"' EXIT
fi
echo "== packaging checks (binary ${bin}; work directory ${tmp})"

# 0. Shell scripts parse.
for script in stage-runtime.sh install-systemd.sh check-packaging.sh install-model.sh; do
    bash -n "${repo}/scripts/${script}" || fail "bash -n scripts/${script}"
done
ok "scripts parse (bash -n)"
if command -v shellcheck >/dev/null; then
    shellcheck -S warning "${repo}"/scripts/{stage-runtime,install-systemd,check-packaging}.sh || fail "shellcheck"
    ok "shellcheck"
fi

# 1. The image tree, staged as the Dockerfile does.
stage="${tmp}/image"
grep -q 'scripts/stage-runtime.sh --root /stage' "${repo}/Dockerfile" \
    || fail "the Dockerfile does not run scripts/stage-runtime.sh --root /stage"
listen="$(sed -n 's/.*scripts\/stage-runtime.sh --root \/stage.*--listen \([^ ]*\).*/\1/p' "${repo}/Dockerfile")"
token_env="$(sed -n 's/.*scripts\/stage-runtime.sh --root \/stage.*--client-token-env \([^ ]*\).*/\1/p' "${repo}/Dockerfile")"
"${repo}/scripts/stage-runtime.sh" --root "${stage}" --bin "${bin}" ${listen:+--listen "${listen}"} \
    ${token_env:+--client-token-env "${token_env}"} >"${tmp}/stage.log" 2>&1 \
    || fail "stage-runtime.sh: $(cat "${tmp}/stage.log")"
ok "stage-runtime.sh --root TMP/image${listen:+ --listen ${listen}}${token_env:+ --client-token-env ${token_env}} (as in the Dockerfile)"
# The image listens beyond loopback, so it needs its client token (as docker run -e gives it).
if [[ -n "${token_env}" ]]; then export "${token_env}=check-packaging-$RANDOM$RANDOM$RANDOM$RANDOM"; fi

for path in "${PREFIX}/bin/llm-sidecar" "${PREFIX}/bin/llm-sidecar-healthcheck" "${PREFIX}/lib/llm-sidecar/llm-sidecar" \
    "${MODELS_DIR}/all-MiniLM-L6-v2/model.safetensors" "${MODELS_DIR}/all-MiniLM-L6-v2/vocab.txt" \
    "${MODELS_DIR}/all-MiniLM-L6-v2/LICENSE" /etc/llm-sidecar/sidecar.conf; do
    [[ -e "${stage}${path}" ]] || fail "staged tree lacks ${path}"
done
[[ "$(readlink "${stage}${PREFIX}/bin/llm-sidecar")" == "../lib/llm-sidecar/llm-sidecar" ]] || fail "bin/llm-sidecar is not the relative symlink"
[[ "$(sha256sum "${stage}${MODELS_DIR}/all-MiniLM-L6-v2/model.safetensors" | cut -d' ' -f1)" == "${MODEL_SHA256}" ]] \
    || fail "staged model.safetensors has the wrong sha256"
if [[ -f "${repo}/models/router/router.json" ]]; then
    cmp -s "${repo}/models/router/router.json" "${stage}${MODELS_DIR}/router/router.json" || fail "router.json not staged"
    router_note="router staged"
else
    router_note="no models/router/router.json in the repository yet: router not staged"
fi
conf="${stage}/etc/llm-sidecar/sidecar.conf"
grep -q "^models_dir = \"${MODELS_DIR}\"" "${conf}" || fail "staged sidecar.conf: models_dir is not ${MODELS_DIR}"
grep -q "^router = \"${MODELS_DIR}/router\"" "${conf}" || fail "staged sidecar.conf: router is not ${MODELS_DIR}/router"
[[ -z "${listen}" ]] || grep -q "^listen = \"${listen}\"" "${conf}" || fail "staged sidecar.conf: listen is not ${listen}"
grep -q '^state_file = "spend.json"' "${conf}" || fail "staged sidecar.conf: [spend] state_file is not spend.json"
if python3 -c 'import tomllib' 2>/dev/null; then
    python3 - "${conf}" "${repo}/sidecar.conf" "${token_env}" <<'PY' || fail "staged sidecar.conf differs from the repository's beyond the rewritten keys"
import sys, tomllib
staged, original = (tomllib.load(open(p, "rb")) for p in sys.argv[1:3])
for section, key in (("embeddings", "models_dir"), ("routing", "router"), ("server", "listen"), ("spend", "state_file")):
    staged.get(section, {}).pop(key, None); original.get(section, {}).pop(key, None)
# The image's client token (--client-token-env): one [[clients]] entry added.
if sys.argv[3]:
    clients = staged.pop("clients", [])
    if clients != [{"app": "app", "token_env": sys.argv[3]}]:
        sys.exit(1)
sys.exit(0 if staged == original else 1)
PY
    ok "staged sidecar.conf: the repository's, with models_dir, router, listen and state_file rewritten${token_env:+ and a [[clients]] token in ${token_env}} (tomllib)"
else
    ok "staged sidecar.conf: models_dir, router and listen rewritten"
fi
ok "staged tree: binary, relative symlink, health check, model (sha256 ok); ${router_note}"

# Every library not staged must come from the runtime stage's Debian packages.
runtime_packages="$(sed -n 's/^ARG RUNTIME_PACKAGES="\(.*\)"/\1/p' "${repo}/Dockerfile")"
[[ -n "${runtime_packages}" ]] || fail "no ARG RUNTIME_PACKAGES=\"...\" in the Dockerfile"
if command -v dpkg >/dev/null && command -v apt-cache >/dev/null; then
    # shellcheck disable=SC2086
    provided="$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
        --no-replaces --no-enhances ${runtime_packages} apt 2>/dev/null | sed -n 's/^ *|\{0,1\}\(Pre\)\{0,1\}Depends: <\{0,1\}\([^ :>]*\).*/\2/p; s/^\([a-z0-9][^ :]*\)$/\1/p' | sort -u)"
    missing=()
    while read -r name path; do
        [[ -e "${stage}${PREFIX}/lib/llm-sidecar/${name}" ]] && continue
        # dpkg knows one spelling of a path (merged /usr: /lib/... or /usr/lib/...).
        real="$(readlink -f "${path}")"
        pkg=""
        for candidate in "${real}" "${path}" "${real#/usr}" "/usr${path}"; do
            pkg="$( (dpkg -S "${candidate}" 2>/dev/null || true) | head -n 1 | cut -d: -f1)"
            [[ -n "${pkg}" ]] && break
        done
        [[ -n "${pkg}" ]] || { missing+=("${name} (no package owns ${path})"); continue; }
        grep -qx "${pkg}" <<<"${provided}" || missing+=("${name} (${pkg})")
    done < <(ldd "${bin}" | awk '$2 == "=>" { print $1, $3 }')
    [[ ${#missing[@]} -eq 0 ]] || fail "libraries neither staged nor installed by RUNTIME_PACKAGES (${runtime_packages}): ${missing[*]}"
    ok "every other library comes from RUNTIME_PACKAGES (${runtime_packages}) or their dependencies"
else
    skip "library-to-package check (no dpkg/apt-cache here)"
fi

# 2. The staged binary, run from the staged tree.
# The toolchain's Swift library directory (where libswiftCore.so resolves here) is hidden.
hide=()
swift_lib_dir="$(ldd "${bin}" | awk '$1 == "libswiftCore.so" { print $3 }' | xargs -r dirname)"
[[ -n "${swift_lib_dir}" ]] && hide+=("${swift_lib_dir}")
# Copies the unprivileged user can read.
extra_confs=()
for extra in ${also_check[@]+"${also_check[@]}"}; do
    install -m 0644 "${extra}" "${tmp}/$(basename "${extra}")"
    extra_confs+=("${tmp}/$(basename "${extra}")")
done
export ALSO_CHECK="${extra_confs[*]:-}"
if unshare --mount --propagation private true 2>/dev/null; then
    unshare --mount --propagation private bash "${self}" --in-namespace "${stage}" ${hide[@]+"${hide[@]}"}
else
    CHECK_MODE=loader STAGE="${stage}" bash "${self}" --runtime-checks
fi

# 3. The systemd installation, into a temporary root.
host="${tmp}/host"
"${repo}/scripts/install-systemd.sh" --root "${host}" --bin "${bin}" >"${tmp}/install.log" 2>&1 \
    || fail "install-systemd.sh --root: $(cat "${tmp}/install.log")"
unit="${host}/etc/systemd/system/llm-sidecar.service"
for path in /etc/systemd/system/llm-sidecar.service /etc/llm-sidecar/sidecar.conf /etc/llm-sidecar/env \
    "${PREFIX}/bin/llm-sidecar" "${MODELS_DIR}/all-MiniLM-L6-v2/model.safetensors"; do
    [[ -e "${host}${path}" ]] || fail "install-systemd.sh did not install ${path}"
done
[[ "$(stat -c %a "${host}/etc/llm-sidecar/env")" == 600 ]] || fail "/etc/llm-sidecar/env is not mode 0600"
grep -q "^listen = \"127.0.0.1:8088\"" "${host}/etc/llm-sidecar/sidecar.conf" || fail "installed config does not listen on loopback"
grep -q "systemctl daemon-reload" "${tmp}/install.log" || fail "install-systemd.sh did not say what to run without systemd"
ok "install-systemd.sh --root TMP/host: unit, config, env (0600), binary, model; printed the systemctl commands"

echo "# edited" >>"${host}/etc/llm-sidecar/sidecar.conf"
echo "OPENAI_API_KEY=sk-kept" >>"${host}/etc/llm-sidecar/env"
"${repo}/scripts/install-systemd.sh" --root "${host}" --bin "${bin}" >"${tmp}/install2.log" 2>&1 || fail "second install-systemd.sh run failed"
tail -n 1 "${host}/etc/llm-sidecar/sidecar.conf" | grep -q "^# edited" || fail "a second run overwrote sidecar.conf"
grep -q "^OPENAI_API_KEY=sk-kept" "${host}/etc/llm-sidecar/env" || fail "a second run overwrote the env file"
ok "install-systemd.sh again: idempotent, the edited sidecar.conf and env file kept"

# 4. The unit: systemd-analyze verify and security, on a copy whose ExecStart names the
#    installed binary (verify checks that it exists and is executable).
request_ms="$(sed -n 's/^request_ms *= *\([0-9_]*\).*/\1/p' "${repo}/sidecar.conf" | tr -d _)"
stop_s="$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s\{0,1\}$/\1/p' "${unit}")"
[[ -n "${request_ms}" && -n "${stop_s}" ]] || fail "could not read request_ms (${request_ms}) or TimeoutStopSec (${stop_s})"
(( stop_s * 1000 > request_ms )) || fail "TimeoutStopSec=${stop_s}s is not above [timeouts] request_ms = ${request_ms}"
ok "TimeoutStopSec=${stop_s}s is above the graceful-shutdown deadline (request_ms = ${request_ms})"
if command -v systemd-analyze >/dev/null; then
    verify_dir="${tmp}/verify"
    mkdir -p "${verify_dir}"
    sed "s#/usr/local/bin/llm-sidecar#${host}${PREFIX}/bin/llm-sidecar#g" "${unit}" >"${verify_dir}/llm-sidecar.service"
    # verify loads the default dependencies (sysinit.target ...) from the host's unit path;
    # it needs no running systemd.
    out="$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify "${verify_dir}/llm-sidecar.service" 2>&1)" \
        || fail "systemd-analyze verify:"$'\n'"${out}"
    [[ -z "${out}" ]] || fail "systemd-analyze verify printed warnings:"$'\n'"${out}"
    ok "systemd-analyze verify llm-sidecar.service: clean"
    out="$(systemd-analyze security --offline=yes --threshold=20 "${verify_dir}/llm-sidecar.service" 2>&1)" \
        || fail "systemd-analyze security: exposure above 2.0:"$'\n'"$(tail -n 3 <<<"${out}")"
    ok "systemd-analyze security --offline: $(grep -o 'Overall exposure level.*' <<<"${out}" | sed 's/ for [^:]*:/:/')"
else
    skip "systemd-analyze verify/security: systemd-analyze not installed (apt-get install systemd)"
fi

"${repo}/scripts/install-systemd.sh" --uninstall --root "${host}" >/dev/null
[[ ! -e "${unit}" && ! -e "${host}${PREFIX}/bin/llm-sidecar" && ! -e "${host}${PREFIX}/lib/llm-sidecar" \
    && ! -e "${host}${PREFIX}/share/llm-sidecar" ]] || fail "--uninstall left files behind"
[[ -f "${host}/etc/llm-sidecar/sidecar.conf" && -f "${host}/etc/llm-sidecar/env" ]] || fail "--uninstall removed /etc/llm-sidecar"
"${repo}/scripts/install-systemd.sh" --uninstall --purge --root "${host}" >/dev/null
[[ ! -e "${host}/etc/llm-sidecar" ]] || fail "--uninstall --purge left /etc/llm-sidecar"
ok "install-systemd.sh --uninstall keeps /etc/llm-sidecar; --purge removes it"
echo "== packaging checks passed"
