#!/usr/bin/env bash
# Installs the Debian packages llm-sidecar needs to build, test and benchmark (openssl: the
# pool tests generate a TLS certificate; libssl-dev: SHA-256 cache keys; libjemalloc-dev: the allocator; libhiredis-dev and
# redis-server: the Redis cache backend and its tests; chromium, prometheus and systemd: the
# dashboard, promtool and systemd-analyze checks of the operations tests).
# Idempotent: installs only what is missing. Needs root (or sudo) on Debian 12.
set -euo pipefail

packages=(python3-venv curl ca-certificates pkg-config libopenblas-dev openssl libssl-dev libjemalloc-dev libhiredis-dev redis-server
  chromium prometheus systemd util-linux)
[ "${WITH_BENCH:-0}" = "1" ] && packages+=(wrk nginx-light)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "setup: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
