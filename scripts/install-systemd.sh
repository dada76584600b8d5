#!/usr/bin/env bash
# Installs llm-sidecar as a systemd service (systemd/llm-sidecar.service), or removes it.
#
# Usage: scripts/install-systemd.sh [--root DIR] [--bin PATH] [--no-start]
#        scripts/install-systemd.sh --uninstall [--purge] [--root DIR]
#   --root DIR    install under DIR instead of / (also: DESTDIR=DIR); with a root other than /
#                 nothing is enabled or started and nothing outside DIR is touched, so a test
#                 can install into a temporary directory without root
#   --bin PATH    the built binary (default: .build/release/llm-sidecar)
#   --no-start    install and daemon-reload, but neither enable nor start the service
#   --uninstall   stop and disable the service, remove the unit, binary, libraries, model and
#                 router; keeps /etc/llm-sidecar (configuration and env file) ...
#   --purge       ... unless --purge is given too (it also removes /var/lib/llm-sidecar)
#
# What it installs (paths under the root):
#   /usr/local/bin/llm-sidecar, /usr/local/lib/llm-sidecar/     the binary (+ any Swift .so it links)
#   /usr/local/share/llm-sidecar/models/{all-MiniLM-L6-v2,router}/
#   /etc/llm-sidecar/sidecar.conf  the repository's, with models_dir and router pointed at the
#                                  above; an existing one is never overwritten
#   /etc/llm-sidecar/env           secrets template, mode 0600; an existing one is kept
#   /etc/systemd/system/llm-sidecar.service
# Running it again updates the binary, libraries, model, router and unit (idempotent). Needs
# the OpenBLAS, hiredis, OpenSSL and jemalloc runtime libraries on the host (scripts/setup-system.sh, or
# apt-get install libopenblas0 libhiredis0.14 libssl3 libjemalloc2 ca-certificates).
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
args="$*"
root="${DESTDIR:-/}"
bin="${repo}/.build/release/llm-sidecar"
mode="install"
purge=0
start=1

die() { echo "install-systemd: error: $*" >&2; exit 1; }
say() { echo "install-systemd: $*"; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --root) root="${2:?--root needs a directory}"; shift 2 ;;
        --bin) bin="${2:?}"; shift 2 ;;
        --no-start) start=0; shift ;;
        --uninstall) mode="uninstall"; shift ;;
        --purge) purge=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
[[ "${purge}" == 0 || "${mode}" == "uninstall" ]] || die "--purge goes with --uninstall"

mkdir -p "${root}"
root="$(cd "${root}" && pwd)"
r="${root%/}"                       # "" when installing for real
real_root=0
[[ -z "${r}" ]] && real_root=1
if [[ "${real_root}" == 1 && "$(id -u)" -ne 0 ]]; then
    die "installing into / needs root (sudo $0 ${args}), or use --root DIR"
fi

unit_name="llm-sidecar.service"
unit_path="/etc/systemd/system/${unit_name}"
config_dir="/etc/llm-sidecar"
prefix="/usr/local"

# systemctl only for the real root and only when systemd runs (not in a container or chroot).
systemd_running() { [[ "${real_root}" == 1 && -d /run/systemd/system ]] && command -v systemctl >/dev/null; }

if [[ "${mode}" == "uninstall" ]]; then
    if systemd_running; then
        systemctl disable --now "${unit_name}" 2>/dev/null || true
    fi
    rm -f "${r}${unit_path}"
    rm -rf "${r}${unit_path}.d"
    rm -f "${r}${prefix}/bin/llm-sidecar" "${r}${prefix}/bin/llm-sidecar-healthcheck"
    rm -rf "${r}${prefix}/lib/llm-sidecar" "${r}${prefix}/share/llm-sidecar" "${r}${prefix}/share/doc/llm-sidecar"
    if [[ "${purge}" == 1 ]]; then
        rm -rf "${r}${config_dir}" "${r}/var/lib/llm-sidecar" "${r}/var/lib/private/llm-sidecar"
        say "removed llm-sidecar, its configuration and state from ${root}"
    else
        say "removed llm-sidecar from ${root}; kept ${r}${config_dir} (--purge removes it)"
    fi
    if systemd_running; then
        systemctl daemon-reload
        systemctl reset-failed "${unit_name}" 2>/dev/null || true
    fi
    exit 0
fi

# 1. Binary, libraries, model, router, configuration (kept when present).
"${repo}/scripts/stage-runtime.sh" --root "${root}" --bin "${bin}" --prefix "${prefix}" \
    --config-dir "${config_dir}" --keep-config

# 2. The environment file for secrets: a template, readable by root only (systemd reads it
#    before it drops to the service's user).
env_file="${r}${config_dir}/env"
if [[ ! -f "${env_file}" ]]; then
    (umask 077 && cat >"${env_file}" <<'ENV'
# Secrets for llm-sidecar, one VAR=value per line (systemd EnvironmentFile syntax).
# The names are the api_key_env / token_env values in sidecar.conf. Keep this file mode 0600.
# After editing: systemctl restart llm-sidecar (a reload does not re-read the environment).
#OPENAI_API_KEY=sk-...
ENV
    )
    say "wrote ${config_dir}/env (mode 0600): put the upstream API keys there"
fi
chmod 0600 "${env_file}"

# 3. The unit and the README it points at.
install -d -m 0755 "${r}/etc/systemd/system" "${r}${prefix}/share/doc/llm-sidecar"
install -m 0644 "${repo}/systemd/llm-sidecar.service" "${r}${unit_path}"
install -m 0644 "${repo}/README.md" "${r}${prefix}/share/doc/llm-sidecar/README.md"
say "installed ${unit_path}"

# 4. Enable and start, when systemd manages this machine.
if systemd_running; then
    systemctl daemon-reload
    if [[ "${start}" == 1 ]]; then
        was_active=0
        systemctl is-active --quiet "${unit_name}" && was_active=1
        systemctl enable --now "${unit_name}"
        if [[ "${was_active}" == 1 ]]; then
            say "llm-sidecar was already running: 'systemctl restart llm-sidecar' runs the new binary" \
                "('systemctl reload llm-sidecar' re-reads sidecar.conf only)"
        else
            say "started: systemctl status llm-sidecar; journalctl -u llm-sidecar -f"
        fi
    else
        say "installed; start it with: systemctl enable --now llm-sidecar"
    fi
elif [[ "${real_root}" == 1 ]]; then
    say "systemd is not running here; on the target system run:"
    say "  systemctl daemon-reload && systemctl enable --now llm-sidecar"
else
    say "installed under ${root}; on a system booted from it run:"
    say "  systemctl daemon-reload && systemctl enable --now llm-sidecar"
fi
