"""Two sidecars sharing one real redis-server: each serves the other's answers (exact and
semantic); Redis killed with requests in flight fails none of them, and caching resumes when it
is back. Skipped when redis-server is not installed (scripts/setup-system.sh installs it)."""
import concurrent.futures
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
import uuid

import openai
import pytest

from conftest import BINARY, ROOT, free_port, wait_for

REDIS = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(REDIS is None, reason="redis-server is not installed")


class Redis:
    def __init__(self, port):
        self.port = port
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            if subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True).stdout.strip() == b"PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


@pytest.fixture(scope="module")
def fleet(fake_upstream):
    redis = Redis(free_port())
    redis.start()
    config = (ROOT / "sidecar.conf").read_text()
    config = re.sub(r'^base_url = ".*"$', f'base_url = "{fake_upstream}/v1"', config, flags=re.M)
    config = config.replace('backend = "memory"', 'backend = "redis"')
    config = re.sub(r'^redis_url = ".*?"', f'redis_url = "redis://127.0.0.1:{redis.port}/2"', config, flags=re.M)
    # Each instance's local copy is tiny, so answers really come from Redis.
    config = config.replace("max_entries = 10000", "max_entries = 1")
    config = config.replace("semantic_budget_ms = 30 ", "semantic_budget_ms = 500")  # the debug binary
    models_dir = os.environ.get("LLM_SIDECAR_MODELS_DIR", str(ROOT / "models"))
    config = config.replace('models_dir = "./models"', f'models_dir = "{models_dir}"')
    procs, urls = [], []
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "sidecar.conf"
        path.write_text(config)
        try:
            for _ in range(2):
                port = free_port()
                procs.append(subprocess.Popen(
                    [BINARY, "serve", "--config", str(path), "--listen", f"127.0.0.1:{port}", "--log-level", "warning"],
                    env=dict(os.environ, OPENAI_API_KEY="sk-test-upstream")))
                wait_for(f"http://127.0.0.1:{port}/readyz")
                urls.append(f"http://127.0.0.1:{port}")
            yield redis, urls
        finally:
            for proc in procs:
                proc.terminate()
                assert proc.wait(timeout=15) == 0
            if redis.proc.poll() is None:
                redis.kill()


def client(url, ns):
    return openai.OpenAI(base_url=f"{url}/v1", api_key="sk-client-key", max_retries=0,
                         default_headers={"X-Sidecar-Cache-Namespace": ns})


def ask(c, text, **kw):
    return c.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": text}], **kw)


def eventually(check, timeout=5.0):
    deadline = time.time() + timeout
    while True:
        value = check()
        if value or time.time() > deadline:
            return value
        time.sleep(0.1)


def test_one_sidecar_serves_what_the_other_stored(fleet):
    _, (a, b) = fleet
    ns = uuid.uuid4().hex
    assert ask(client(a, ns), "Which ocean is the deepest?").headers["X-Sidecar-Cache"] == "miss"
    assert eventually(lambda: ask(client(b, ns), "Which ocean is the deepest?").headers["X-Sidecar-Cache"] == "exact")
    # A streamed request on B replays A's whole answer as chunks.
    raw = client(b, ns).chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Which ocean is the deepest?"}], stream=True)
    assert raw.headers["X-Sidecar-Cache"] == "exact"
    assert len([c for c in raw.parse() if c.choices]) > 2


def test_a_paraphrase_on_one_sidecar_hits_what_the_other_stored(fleet):
    _, (a, b) = fleet
    ns = uuid.uuid4().hex
    ask(client(a, ns), "How do I boil an egg so the yolk stays soft?")
    # B stores nothing of its own (no-store), so only A's entry, found through Redis, can hit.
    assert eventually(lambda: ask(client(b, ns), "How can I boil an egg so the yolk stays soft?",
                                  extra_headers={"Cache-Control": "no-store"}).headers["X-Sidecar-Cache"] == "semantic")


def test_feedback_given_on_one_sidecar_is_in_the_fleets_report_on_the_other(fleet):
    _, (a, b) = fleet
    raw = ask(client(a, uuid.uuid4().hex), f"Tell me a fun fact, take {uuid.uuid4().hex[:6]}.")

    def report(url):
        with urllib.request.urlopen(f"{url}/sidecar/feedback") as r:
            return json.load(r)

    def count(url):
        rows = [row for row in report(url)["tiers"] if row["model"] == raw.headers["X-Model-Used"]]
        return rows[0]["ratings"] if rows else 0

    before = count(b)
    body = json.dumps({"request_id": raw.headers["X-Request-Id"], "rating": 1}).encode()
    request = urllib.request.Request(f"{a}/sidecar/feedback", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as r:
        assert r.status == 200
    # B never saw the request: its report is the fleet's, read from Redis.
    assert report(b)["source"] == "redis"
    assert count(b) == before + 1


def test_an_apps_spend_adds_up_across_the_fleet(fleet):
    _, (a, b) = fleet
    app = f"fleet-{uuid.uuid4().hex[:8]}"
    ask(client(a, uuid.uuid4().hex), "What does a fleet cost?", extra_headers={"X-Sidecar-App": app,
                                                                             "X-Sidecar-Tier": "1"})
    # B serves this app only on the free local tier: any spend it reports came from A through Redis.
    free = {"X-Sidecar-App": app, "X-Sidecar-Tier": "0"}
    assert float(ask(client(b, uuid.uuid4().hex), "And now?", extra_headers=free).headers["X-Query-Cost"]) == 0
    assert eventually(lambda: float(ask(client(b, uuid.uuid4().hex), "And now?", extra_headers=free)
                                    .headers["X-Sidecar-Spend-Today"]) > 0, timeout=10)


def test_redis_killed_mid_traffic_fails_no_request_and_caching_resumes(fleet):
    redis, (a, b) = fleet
    ns = uuid.uuid4().hex

    def one(i):
        return ask(client(a if i % 2 else b, ns), f"Give me fact number {i % 7} about owls.").status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(one, i) for i in range(120)]
        time.sleep(0.2)
        redis.kill()
        statuses = [f.result() for f in futures]
    assert statuses == [200] * 120
    # Down: requests are answered (uncached or from memory), quickly.
    started = time.time()
    assert ask(client(a, ns), "Is a whale a mammal?").status_code == 200
    assert time.time() - started < 2
    redis.start()
    # Back: a new answer stored by A reaches B through Redis again.
    def shared():
        text = f"Name a bird that cannot fly, take {uuid.uuid4().hex[:6]}."
        ask(client(a, ns), text)
        return eventually(lambda: ask(client(b, ns), text).headers["X-Sidecar-Cache"] == "exact", timeout=2)
    assert eventually(shared, timeout=15)


def test_a_paraphrase_on_the_same_sidecar_hits_with_redis(fleet):
    _, (a, _) = fleet
    ns = uuid.uuid4().hex
    ask(client(a, ns), "How do I make my home wifi router restart?", max_tokens=16, temperature=0)
    assert eventually(lambda: ask(client(a, ns), "How can I make my home wifi router restart?", max_tokens=16,
                                  temperature=0, extra_headers={"Cache-Control": "no-store"})
                      .headers["X-Sidecar-Cache"] == "semantic")
