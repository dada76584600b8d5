"""The response cache in front of real llama.cpp servers, on the real redis the script runs."""
import re
import shutil
import signal
import subprocess
import time
import uuid

import openai
import pytest

import e2e_helpers as h
from e2e_helpers import CLOUD_MODEL, HARD_PROMPT

pytestmark = pytest.mark.cache


def client_for(url, ns):
    return openai.OpenAI(base_url=f"{url}/v1", api_key="sk-e2e-client", max_retries=0, timeout=120,
                         default_headers={"X-Sidecar-Cache-Namespace": ns})


def chat(client, prompt, **kw):
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": prompt}], max_tokens=16, temperature=0, **kw)
    h.record(raw.headers, "chat", status=raw.status_code)
    return raw


def test_cache_exact_hit_is_free(sidecar):
    client = client_for(sidecar, uuid.uuid4().hex)
    first = chat(client, HARD_PROMPT)
    assert first.headers["x-sidecar-cache"] == "miss"
    assert first.headers["x-model-used"] == CLOUD_MODEL and first.headers["x-query-cost"] != "0"
    second = chat(client, HARD_PROMPT)
    assert second.headers["x-sidecar-cache"] == "exact"
    assert second.headers["x-query-cost"] == "0"
    assert second.headers["x-model-used"] == CLOUD_MODEL
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content
    # A streamed request for it replays the answer as chunks, with [DONE] and a 0 cost trailer.
    stream = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": HARD_PROMPT}], max_tokens=16, temperature=0,
        stream=True)
    pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    assert "".join(pieces) == first.parse().choices[0].message.content and len(pieces) > 1


def test_cache_semantic_hit_on_a_paraphrase(sidecar):
    client = client_for(sidecar, uuid.uuid4().hex)
    chat(client, "How do I make my home wifi router restart?")
    for _ in range(20):  # an embedding over the latency budget skips the lookup: ask again
        hit = chat(client, "How can I make my home wifi router restart?", extra_headers={"Cache-Control": "no-store"})
        if hit.headers["x-sidecar-cache"] == "semantic":
            break
        time.sleep(0.2)
    assert hit.headers["x-sidecar-cache"] == "semantic" and hit.headers["x-query-cost"] == "0"
    assert chat(client, "How do I make my home wifi router not restart?").headers["x-sidecar-cache"] == "miss"


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_cache_survives_redis_going_down(extra_sidecar):
    port = h.free_port()
    argv = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    redis = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    try:
        h.wait_until(lambda: subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True)
                     .stdout.strip() == b"PONG", 10, what="redis up")
        url = extra_sidecar("sidecar-cache-redis", edit=lambda c: re.sub(
            r'^redis_url = ".*"$', f'redis_url = "redis://127.0.0.1:{port}/0"', c, flags=re.M))
        client = client_for(url, uuid.uuid4().hex)
        assert chat(client, "Name one planet.").headers["x-sidecar-cache"] == "miss"
        redis.send_signal(signal.SIGKILL)
        redis.wait()
        started = time.monotonic()
        down = chat(client, "Name one moon of Jupiter.")
        assert down.status_code == 200 and down.headers["x-sidecar-cache"] == "miss"
        assert time.monotonic() - started < 60  # the model's time; Redis added at most its timeout
        redis = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        h.wait_until(lambda: subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True)
                     .stdout.strip() == b"PONG", 10, what="redis back")

        def cached_again():
            text = f"Name one ocean, variant {uuid.uuid4().hex[:4]}."
            chat(client, text)
            keys = subprocess.run(["redis-cli", "-p", str(port), "--scan", "--pattern", "llmsc:1:a:*"],
                                  capture_output=True).stdout.split()
            return len(keys) > 0
        h.wait_until(cached_again, 30, interval=1, what="caching in redis resumed")
    finally:
        if redis.poll() is None:
            redis.kill()
            redis.wait()
