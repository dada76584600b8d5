"""The sidecar in front of two real llama.cpp servers, through the official openai SDK."""
import concurrent.futures
import time
from decimal import Decimal

import openai
import pytest

import e2e_helpers as h
from e2e_helpers import (CLOUD_MODEL, CLOUD_UPSTREAM, HARD_PROMPT, LOCAL_EMBEDDER, LOCAL_MODEL, LOCAL_UPSTREAM,
                         SIMPLE_PROMPT)

MAX_TOKENS = 24


def chat(client, prompt, model="auto", **kw):
    kw.setdefault("max_tokens", MAX_TOKENS)
    kw.setdefault("temperature", 0)
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": prompt}], **kw)
    h.record(raw.headers, "chat", status=raw.status_code)
    return raw, raw.parse()


def test_simple_prompt_is_routed_to_the_local_tier_for_free(client):
    raw, completion = chat(client, SIMPLE_PROMPT)
    assert raw.headers["x-model-used"] == LOCAL_MODEL
    assert raw.headers["x-sidecar-upstream"] == LOCAL_UPSTREAM
    assert raw.headers["x-sidecar-route"] == "tier"
    assert float(raw.headers["x-sidecar-complexity"]) < 0.40
    assert raw.headers.get("x-sidecar-fallback") is None
    assert raw.headers["x-query-cost"] == "0"
    assert completion.choices[0].message.content.strip()
    assert completion.usage.prompt_tokens > 0 and completion.usage.completion_tokens > 0


def test_hard_prompt_is_routed_to_the_cloud_tier_and_priced_from_real_usage(client):
    raw, completion = chat(client, HARD_PROMPT, model="gpt-4o")
    assert raw.headers["x-model-used"] == CLOUD_MODEL
    assert raw.headers["x-sidecar-upstream"] == CLOUD_UPSTREAM  # and its --api_key was injected: no 401
    assert float(raw.headers["x-sidecar-complexity"]) >= 0.40
    usage = completion.usage
    assert usage.prompt_tokens > 50 and 0 < usage.completion_tokens <= MAX_TOKENS
    cost = Decimal(raw.headers["x-query-cost"])
    assert cost > 0
    assert cost == h.expected_cost(CLOUD_MODEL, usage.prompt_tokens, usage.completion_tokens)
    # The body's model is the real server's own answer: its --model_alias.
    assert completion.model == CLOUD_MODEL


def test_pinned_model_is_kept(client):
    raw, _ = chat(client, SIMPLE_PROMPT, model=f"pin/{CLOUD_MODEL}")
    assert raw.headers["x-model-used"] == CLOUD_MODEL
    assert raw.headers["x-sidecar-route"] == "pinned"
    assert Decimal(raw.headers["x-query-cost"]) > 0


def test_streaming_chat_arrives_incrementally(client):
    stream = client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "Count from one to twenty in words."}],
        stream=True, max_tokens=40, temperature=0)
    started = time.monotonic()
    arrivals, text, finish = [], [], None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic() - started)
            text.append(chunk.choices[0].delta.content)
        if chunk.choices and chunk.choices[0].finish_reason:
            finish = chunk.choices[0].finish_reason
    h.record(stream.response.headers, "chat", streamed=True, content_chunks=len(arrivals))
    assert len(arrivals) >= 8, f"only {len(arrivals)} content chunks: {text}"
    distinct = sorted({round(t, 3) for t in arrivals})
    assert len(distinct) >= 5, f"chunks arrived in bursts: {arrivals}"
    # ~90 tokens/s: the last token comes well after the first (no buffering in the relay).
    assert arrivals[-1] - arrivals[0] > 0.1, arrivals
    assert finish in ("stop", "length")
    assert stream.response.headers["x-model-used"] == LOCAL_MODEL


def test_stream_headers_and_cost_trailer_over_a_raw_socket(sidecar):
    """httpx does not expose trailers: read the chunked answer off a socket."""
    r = h.raw_request(sidecar, body={"model": "auto", "stream": True, "max_tokens": MAX_TOKENS, "temperature": 0,
                                     "messages": [{"role": "user", "content": HARD_PROMPT}]})
    events = r.sse_events()
    content = [e for e in events if '"content"' in e[1]]
    h.record(r.headers, "chat", status=r.status, streamed=True, trailers=r.trailers, content_chunks=len(content))
    assert r.status == 200 and r.chunked
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["x-model-used"] == CLOUD_MODEL
    assert r.headers["trailer"].lower() == "x-query-cost, x-sidecar-cost-estimated"
    assert "x-query-cost" in r.trailers
    assert events[-1][1] == "[DONE]"
    assert len({round(t, 3) for t, _ in content}) >= 3, "the relay buffered the stream"


def test_legacy_completions(client):
    raw = client.completions.with_raw_response.create(model="auto", prompt="The capital of France is",
                                                      max_tokens=8, temperature=0)
    h.record(raw.headers, "completions", status=raw.status_code)
    completion = raw.parse()
    assert raw.headers["x-model-used"] == LOCAL_MODEL
    assert completion.object == "text_completion"
    assert completion.choices[0].text
    assert completion.usage.completion_tokens > 0


def test_legacy_completions_on_the_cloud_tier_are_priced(client):
    raw = client.completions.with_raw_response.create(model="auto", prompt=HARD_PROMPT, max_tokens=8, temperature=0)
    h.record(raw.headers, "completions", status=raw.status_code)
    usage = raw.parse().usage
    assert raw.headers["x-model-used"] == CLOUD_MODEL
    assert Decimal(raw.headers["x-query-cost"]) == h.expected_cost(CLOUD_MODEL, usage.prompt_tokens,
                                                                   usage.completion_tokens)


def test_builtin_local_embeddings(client):
    raw = client.embeddings.with_raw_response.create(
        model=LOCAL_EMBEDDER, input=["What is the capital of France?", "What's France's capital city?"])
    h.record(raw.headers, "embeddings", status=raw.status_code)
    result = raw.parse()
    assert raw.headers["x-sidecar-upstream"] == "local"
    assert raw.headers["x-query-cost"] == "0"
    assert len(result.data) == 2 and len(result.data[0].embedding) == 384
    cosine = sum(x * y for x, y in zip(result.data[0].embedding, result.data[1].embedding))
    assert cosine > 0.8


def test_upstream_embeddings_from_the_server_started_with_embedding(client):
    raw = client.embeddings.with_raw_response.create(model=CLOUD_MODEL, input=["hello world", "goodbye moon"])
    h.record(raw.headers, "embeddings", status=raw.status_code)
    result = raw.parse()
    assert raw.headers["x-sidecar-upstream"] == CLOUD_UPSTREAM
    assert raw.headers["x-model-used"] == CLOUD_MODEL
    assert len(result.data) == 2
    # Relayed as the server made them: one 576-float vector per token (SmolLM2 has no pooling),
    # not one vector per input as OpenAI's API has it (see test_01).
    assert all(isinstance(d.embedding[0], list) and len(d.embedding[0]) == 576 for d in result.data)
    assert result.usage.prompt_tokens > 0
    assert Decimal(raw.headers["x-query-cost"]) == h.expected_cost(CLOUD_MODEL, result.usage.prompt_tokens, 0)


def test_models_list(client):
    ids = [m.id for m in client.models.list()]
    assert ids == ["auto", LOCAL_MODEL, CLOUD_MODEL, LOCAL_EMBEDDER]


@pytest.mark.parametrize("n", [6])
def test_concurrency_above_what_one_server_serves(client, n):
    """Six requests at once to the local tier (one llama.cpp process answers one at a time) and
    three at once to the cloud tier: all answered, by the routed model, none by fallback."""
    prompts = [(f"Say the number {i} in French.", LOCAL_MODEL) for i in range(n)]
    prompts += [(HARD_PROMPT + f" (variant {i})", CLOUD_MODEL) for i in range(3)]
    with concurrent.futures.ThreadPoolExecutor(len(prompts)) as pool:
        results = list(pool.map(lambda p: chat(client, p[0], max_tokens=12), prompts))
    for (prompt, model), (raw, completion) in zip(prompts, results):
        assert raw.status_code == 200
        assert raw.headers["x-model-used"] == model, prompt
        assert raw.headers.get("x-sidecar-fallback") is None
        assert completion.choices[0].message.content is not None


def test_bad_request_is_openai_shaped(client):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="auto", messages="not a list")
    assert info.value.status_code == 400


def test_the_upstreams_request_id_is_relayed(client):
    """llama-cpp-python echoes the X-Request-Id it receives (starlette-context), so the sidecar's
    X-Upstream-Request-Id is its own id: one id across both logs."""
    raw, _ = chat(client, SIMPLE_PROMPT, max_tokens=2)
    assert raw.headers["x-upstream-request-id"] == raw.headers["x-request-id"]
    assert "openai-processing-ms" in raw.headers  # upstream headers pass through


def test_context_overflow_is_relayed_as_a_400_without_retries_or_fallback(client, sidecar):
    before = h.metric_sum(sidecar, "llm_sidecar_retries_total")
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="auto", max_tokens=4,
                                       messages=[{"role": "user", "content": "word " * 2500}])
    h.record(info.value.response.headers, "chat", status=info.value.status_code)
    assert info.value.body["code"] == "context_length_exceeded"
    assert info.value.response.headers.get("x-sidecar-fallback") is None
    assert h.metric_sum(sidecar, "llm_sidecar_retries_total") == before


@pytest.mark.parametrize("idle", [4.95, 5.3])
def test_requests_after_the_upstreams_5s_keep_alive_timeout_succeed(client, sidecar, idle):
    """uvicorn closes idle connections after 5 s: a request sent about then must not fail or fall back."""
    chat(client, SIMPLE_PROMPT, max_tokens=2)
    before = h.metric_sum(sidecar, "llm_sidecar_upstream_failures_total")
    time.sleep(idle)
    raw, _ = chat(client, SIMPLE_PROMPT, max_tokens=2)
    assert raw.status_code == 200
    assert raw.headers["x-model-used"] == LOCAL_MODEL and raw.headers.get("x-sidecar-fallback") is None
    print(f"upstream failures during the idle race: {h.metric_sum(sidecar, 'llm_sidecar_upstream_failures_total') - before:.0f}")
