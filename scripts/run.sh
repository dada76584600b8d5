#!/usr/bin/env bash
# Sets up, builds (release) and runs the sidecar. With no --config it uses ./sidecar.conf,
# then /etc/llm-sidecar/sidecar.conf, then the same settings built into the binary.
#   ./scripts/run.sh [serve|check|route|embed] [--config PATH] [--listen HOST:PORT]
# Set-up and build output goes to stderr, so `route` and `embed` keep a clean stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
{
  ./scripts/setup-system.sh
  # The local embedding model (optional: the sidecar runs without it and says so).
  ./scripts/install-model.sh || echo "run.sh: local embedding model not installed; continuing without it"
  swift build -c release --product llm-sidecar
} >&2
exec "$(swift build -c release --show-bin-path)/llm-sidecar" "$@"
