"""Fixtures: a fake OpenAI upstream and the real llm-sidecar binary in front of it.

The sidecar runs with the repository's sidecar.conf, only its upstreams' base_url values
pointed at the fake, so tiers, models and prices are the shipped defaults.
"""
import contextlib
import os
import pathlib
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BINARY = os.environ.get("SIDECAR_BIN", str(ROOT / ".build" / "debug" / "llm-sidecar"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port():
    return free_port()


def wait_for(url, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} not ready after {timeout}s")


@pytest.fixture(scope="session")
def fake_upstream():
    with tempfile.TemporaryDirectory() as tmp:
        port_file = pathlib.Path(tmp) / "port"
        proc = subprocess.Popen([sys.executable, str(ROOT / "Tests/sdk/fake_upstream.py"), str(port_file)])
        try:
            deadline = time.time() + 10
            while not port_file.exists() or not port_file.read_text():
                if time.time() > deadline:
                    raise RuntimeError("fake upstream did not start")
                time.sleep(0.05)
            port = int(port_file.read_text())
            wait_for(f"http://127.0.0.1:{port}/v1/models")
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def sidecar(fake_upstream):
    """Base URL of a running sidecar (repo config, upstreams -> fake; plus a dead upstream)."""
    config = (ROOT / "sidecar.conf").read_text()
    config = re.sub(r'^base_url = ".*"$', f'base_url = "{fake_upstream}/v1"', config, flags=re.M)
    dead = closed_port()
    config = config.replace(
        "[routing]",
        f'[[upstreams]]\nname = "dead"\nbase_url = "http://127.0.0.1:{dead}/v1"\n\n'
        '[[models]]\nname = "dead-model"\nupstream = "dead"\n\n[routing]',
    )
    models_dir = os.environ.get("LLM_SIDECAR_MODELS_DIR", str(ROOT / "models"))
    config = config.replace('models_dir = "./models"', f'models_dir = "{models_dir}"')
    # These tests pick prompts for a tier by the heuristic scorer's hand-set weights; the learned
    # router's own decisions are tested in test_routing.py.
    config = config.replace('router = "./models/router"', 'router = ""')
    # The debug binary embeds slower than a release build: a wider budget for the semantic
    # lookup, so the cache tests see hits rather than budget skips.
    config = config.replace("semantic_budget_ms = 30 ", "semantic_budget_ms = 500")
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "sidecar.conf"
        path.write_text(config)
        port = free_port()
        env = dict(os.environ, OPENAI_API_KEY="sk-test-upstream")
        proc = subprocess.Popen(
            [BINARY, "serve", "--config", str(path), "--listen", f"127.0.0.1:{port}", "--log-level", "warning"],
            env=env,
        )
        try:
            wait_for(f"http://127.0.0.1:{port}/readyz")
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            assert proc.wait(timeout=15) == 0, "sidecar did not exit cleanly on SIGTERM"


def repo_config(fake_upstream, learned_router=False):
    """The repository's sidecar.conf with every upstream pointed at the fake (and the learned
    router off unless asked for: tests that pick prompts per tier rely on the heuristic)."""
    config = (ROOT / "sidecar.conf").read_text()
    config = re.sub(r'^base_url = ".*"$', f'base_url = "{fake_upstream}/v1"', config, flags=re.M)
    if not learned_router:
        config = config.replace('router = "./models/router"', 'router = ""')
    return config


def start_sidecar(path, env=None, **popen_args):
    """Starts the binary on `path`'s configuration, on a free loopback port, and waits until it is
    ready. Returns the process and its base URL; the caller stops it."""
    port = free_port()
    proc = subprocess.Popen(
        [BINARY, "serve", "--config", str(path), "--listen", f"127.0.0.1:{port}", "--log-level", "warning"],
        env={**os.environ, "OPENAI_API_KEY": "sk-test-upstream", **(env or {})}, **popen_args)
    try:
        wait_for(f"http://127.0.0.1:{port}/readyz")
    except BaseException:
        proc.kill()
        raise
    return proc, f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def running_sidecar(config, env=None):
    """A sidecar on `config` (text) for the block: yields its base URL and config path, then
    stops it with SIGTERM and checks it exited cleanly."""
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "sidecar.conf"
        path.write_text(config)
        proc, url = start_sidecar(path, env)
        try:
            yield url, path
        finally:
            proc.terminate()
            assert proc.wait(timeout=15) == 0
