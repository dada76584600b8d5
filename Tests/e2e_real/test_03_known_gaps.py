"""KNOWN GAPS: where the sidecar behaves differently with a real llama.cpp upstream than with the
repository's fake one, and the desired behaviour. Each test states the desired behaviour and is
marked xfail(strict=False) until the Swift side lands the fix; when one starts passing, drop its
marker (pytest reports it as XPASS meanwhile)."""
from decimal import Decimal

import openai
import pytest

import e2e_helpers as h
from e2e_helpers import CLOUD_MODEL, HARD_PROMPT, LOCAL_MODEL, SIMPLE_PROMPT

known_gap = pytest.mark.known_gap


@known_gap
@pytest.mark.xfail(strict=False, reason="KNOWN GAP 1: llama-cpp-python ignores stream_options.include_usage, so a "
                   "stream's cost trailer reads 0; desired: a non-zero estimate marked X-Sidecar-Cost-Estimated: true")
def test_stream_cost_without_upstream_usage_is_a_marked_estimate(sidecar):
    r = h.raw_request(sidecar, body={"model": "auto", "stream": True, "max_tokens": 24, "temperature": 0,
                                     "messages": [{"role": "user", "content": HARD_PROMPT}]})
    content = [e for e in r.sse_events() if '"content"' in e[1]]
    h.record(r.headers, "chat", status=r.status, streamed=True, trailers=r.trailers, content_chunks=len(content))
    assert r.status == 200 and r.headers["x-model-used"] == CLOUD_MODEL
    marked = {**r.headers, **r.trailers}
    assert "x-sidecar-cost-estimated" in (r.headers.get("trailer", "").lower() + " " + " ".join(marked)), \
        f"no X-Sidecar-Cost-Estimated header or trailer: headers {r.header_list}, trailers {r.trailers}"
    assert marked["x-sidecar-cost-estimated"].lower() == "true"
    assert Decimal(r.trailers["x-query-cost"]) > 0
    # At least the relayed output tokens at the output price.
    assert Decimal(r.trailers["x-query-cost"]) >= h.expected_cost(CLOUD_MODEL, 0, len(content))


@known_gap
@pytest.mark.xfail(strict=False, reason="KNOWN GAP 3: the client asked for stream_options.include_usage and this "
                   "upstream sends no usage chunk; desired: the sidecar fills one in (estimated)")
def test_include_usage_gets_a_usage_chunk_even_from_this_upstream(client):
    stream = client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": HARD_PROMPT}], stream=True, max_tokens=16,
        temperature=0, stream_options={"include_usage": True})
    chunks = list(stream)
    content = [c for c in chunks if c.choices and c.choices[0].delta.content]
    h.record(stream.response.headers, "chat", streamed=True, content_chunks=len(content))
    assert chunks[-1].usage is not None, "no usage chunk at the end of the stream"
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens > 0 and chunks[-1].usage.prompt_tokens > 0


def _embeddings_500(client):
    """An embeddings call the local server (started without --embedding) answers 500."""
    with pytest.raises(openai.APIStatusError) as info:
        client.embeddings.create(model=LOCAL_MODEL, input="hello")
    return info.value


@known_gap
@pytest.mark.xfail(strict=False, reason="KNOWN GAP 2a: a deterministic 500 (embeddings on a server without "
                   "--embedding) is retried max_attempts times; desired: not retried")
def test_a_deterministic_500_is_not_retried(extra_sidecar):
    url = extra_sidecar("sidecar-retry500")
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-e2e", max_retries=0, timeout=60)
    err = _embeddings_500(client)
    h.record(err.response.headers, "embeddings", status=err.status_code)
    attempts = h.metric_sum(url, "llm_sidecar_upstream_responses_total", upstream="local", status="500")
    assert attempts == 1, f"the upstream answered 500 {attempts:.0f} times for one client request"


@known_gap
@pytest.mark.xfail(strict=False, reason="KNOWN GAP 2b: two embeddings 500s from a server without --embedding open "
                   "its breaker and healthy chat traffic to it goes to fallback; desired: chat unaffected")
def test_embedding_errors_do_not_open_the_breaker_for_chat(extra_sidecar):
    url = extra_sidecar("sidecar-breaker500")
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-e2e", max_retries=0, timeout=60)
    for _ in range(2):
        err = _embeddings_500(client)
        h.record(err.response.headers, "embeddings", status=err.status_code)
    state = h.breaker_state(url, "local")
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": SIMPLE_PROMPT}], max_tokens=8)
    h.record(raw.headers, "chat", status=raw.status_code)
    assert raw.status_code == 200
    assert (raw.headers.get("x-sidecar-fallback"), raw.headers["x-model-used"], state) == \
        (None, LOCAL_MODEL, "closed")


# ---- cache (pending) --------------------------------------------------------------------------
# CACHE TESTS GO HERE once the redis backend lands: scripts/e2e-real.sh already runs redis-server
# ($E2E_REDIS_URL) and writes its URL into the config; switch [cache] backend to "redis" there.
# Then: exact hit on a repeat (X-Sidecar-Cache: exact, X-Query-Cost: 0), semantic hit on a
# paraphrase, a stream stored only when complete and replayed as SSE, Cache-Control no-cache /
# no-store, and redis killed mid-run: requests still served uncached.


@pytest.mark.cache
@pytest.mark.skip(reason="cache suite pending: the redis cache backend has not landed (redis is running at "
                  "$E2E_REDIS_URL for it)")
def test_cache_exact_hit_is_free():
    pass


@pytest.mark.cache
@pytest.mark.skip(reason="cache suite pending: the redis cache backend has not landed")
def test_cache_semantic_hit_on_a_paraphrase():
    pass


@pytest.mark.cache
@pytest.mark.skip(reason="cache suite pending: the redis cache backend has not landed")
def test_cache_survives_redis_going_down():
    pass


def test_redis_is_up_for_the_cache_suite():
    """The redis the cache suite will use is running (so the pending tests have what they need)."""
    import socket
    import urllib.parse

    u = urllib.parse.urlparse(h.env("E2E_REDIS_URL"))
    with socket.create_connection((u.hostname, u.port), timeout=5) as s:
        s.sendall(b"PING\r\n")
        assert s.recv(64) == b"+PONG\r\n"
