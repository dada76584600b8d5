"""UPSTREAM FACTS: how the real llama.cpp server (llama-cpp-python 0.3.36, uvicorn, sse-starlette)
answers, talking to it directly (no sidecar). Each test pins one difference from the repository's
fake upstreams (Tests/sdk/fake_upstream.py, Benchmarks/chaos/fault_upstream.py), so a fix on the
sidecar side can be checked against the real thing, and an upgrade that changes the behaviour
shows up here first."""
import concurrent.futures
import json
import socket
import time
import urllib.parse

import pytest

import e2e_helpers as h

pytestmark = pytest.mark.upstream_fact

CHAT = {"model": "anything", "messages": [{"role": "user", "content": "What is 2+2?"}], "max_tokens": 6,
        "temperature": 0}


def test_plain_chat_carries_usage_and_its_own_request_id(local_url):
    r = h.raw_request(local_url, body=CHAT)
    assert r.status == 200 and not r.chunked
    assert r.headers["content-type"] == "application/json"
    assert int(r.headers["content-length"]) == len(r.body)
    # Headers the fake upstreams never send: the sidecar relays them (x-request-id renamed).
    assert r.headers["server"] == "uvicorn"
    assert len(r.headers["x-request-id"]) == 32
    assert "openai-processing-ms" in r.headers
    assert r.headers["vary"] == "Origin"
    body = r.json()
    assert set(body["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}
    assert body["choices"][0]["logprobs"] is None
    # The model in the answer is whatever the request named: it is not checked against the alias.
    assert body["model"] == "anything"


def test_stream_framing(local_url):
    r = h.raw_request(local_url, body=dict(CHAT, stream=True, stream_options={"include_usage": True}), close=False)
    assert r.status == 200 and r.chunked and r.complete
    assert r.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-accel-buffering"] == "no"
    assert r.headers["connection"] == "keep-alive"
    # One SSE event per HTTP chunk, LF line endings, JSON with ", " and ": " separators.
    assert all(data.startswith(b"data: ") and data.endswith(b"\n\n") and b"\r" not in data for _, data in r.chunks)
    assert r.chunks[0][1].startswith(b'data: {"id": "chatcmpl-')
    events = [e for _, e in r.sse_events()]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    # First a role-only delta (no content), then one token per chunk, then an empty delta with
    # the finish_reason; never a usage chunk, though include_usage was asked for.
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    assert chunks[-1]["choices"][0]["delta"] == {} and chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert all("usage" not in c for c in chunks)
    assert all(c["choices"] for c in chunks)
    assert len(chunks) == CHAT["max_tokens"] + 2


def test_legacy_completion_stream_has_no_role_chunk_and_ends_with_empty_text(local_url):
    r = h.raw_request(local_url, path="/v1/completions",
                      body={"model": "x", "prompt": "The capital of France is", "max_tokens": 3, "stream": True})
    events = [e for _, e in r.sse_events()]
    chunks = [json.loads(e) for e in events[:-1]]
    assert events[-1] == "[DONE]" and len(chunks) == 4
    assert chunks[-1]["choices"][0]["text"] == "" and chunks[-1]["choices"][0]["finish_reason"] == "length"


def test_unknown_and_unsupported_parameters_are_ignored_silently(local_url):
    r = h.raw_request(local_url, body=dict(CHAT, frobnicate=7, store=True, metadata={"a": "b"}, max_tokens=2, n=3))
    assert r.status == 200
    assert len(r.json()["choices"]) == 1  # n is dropped: one choice, no error


def test_validation_errors_are_500_with_a_server_traceback(local_url):
    """A bad field is the client's fault, yet the server answers 500 (OpenAI would say 400), with
    type internal_server_error and the server's file path in the message: a deterministic 500."""
    r = h.raw_request(local_url, body={"model": "x", "messages": "not a list"})
    assert r.status == 500
    err = r.json()["error"]
    assert err["type"] == "internal_server_error" and err["code"] is None and err["param"] is None
    assert "validation error" in err["message"] and "llama_cpp/server/app.py" in err["message"]


def test_malformed_json_is_a_plain_text_500(local_url):
    r = h.raw_request(local_url, body=b'{"model":')
    assert r.status == 500
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.body == b"Internal Server Error"
    assert "x-request-id" not in r.headers


def test_unknown_paths_and_methods_get_fastapi_detail_bodies(local_url):
    r = h.raw_request(local_url, method="GET", path="/v1/nope")
    assert (r.status, r.json()) == (404, {"detail": "Not Found"})
    r = h.raw_request(local_url, method="GET", path="/v1/chat/completions")
    assert (r.status, r.json(), r.headers["allow"]) == (405, {"detail": "Method Not Allowed"}, "POST")


def test_missing_api_key_is_a_401_with_a_detail_body(cloud_url):
    r = h.raw_request(cloud_url, method="GET", path="/v1/models")
    assert (r.status, r.json()) == (401, {"detail": "Invalid API key"})


def test_context_overflow_is_an_openai_shaped_400(local_url):
    r = h.raw_request(local_url, body=dict(CHAT, messages=[{"role": "user", "content": "word " * 2500}]))
    assert r.status == 400
    assert r.json()["error"]["code"] == "context_length_exceeded"
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert r.json()["error"]["param"] == "messages"


def test_embeddings_without_the_embedding_flag_are_a_500_every_time(local_url):
    for _ in range(2):
        r = h.raw_request(local_url, path="/v1/embeddings", body={"model": "x", "input": "hello"})
        assert r.status == 500
        assert r.json()["error"] == {"message": "Llama model must be created with embedding=True to call this method",
                                     "type": "internal_server_error", "param": None, "code": None}


def test_embeddings_are_per_token_vectors_not_one_vector_per_input(cloud_url, cloud_auth):
    """SmolLM2 has no pooling: each input gets one 576-float vector per token (a list of lists)."""
    r = h.raw_request(cloud_url, path="/v1/embeddings", headers=cloud_auth,
                      body={"model": "x", "input": ["hello world", "bye"]})
    body = r.json()
    assert r.status == 200 and body["model"] == "x"
    assert [len(d["embedding"]) for d in body["data"]] == [2, 1]
    assert all(len(vec) == 576 for d in body["data"] for vec in d["embedding"])
    assert body["usage"] == {"prompt_tokens": 3, "total_tokens": 3}


def test_models_list_shape(local_url):
    assert h.get_json(f"{local_url}/v1/models") == {
        "object": "list", "data": [{"id": "smollm-local", "object": "model", "owned_by": "me", "permissions": []}]}


def test_idle_keep_alive_connections_are_closed_after_about_5_seconds(local_url):
    u = urllib.parse.urlparse(local_url)
    with socket.create_connection((u.hostname, u.port), timeout=15) as s:
        s.sendall(f"GET /v1/models HTTP/1.1\r\nHost: {u.netloc}\r\n\r\n".encode())
        data = b""
        while b"permissions" not in data:
            data += s.recv(65536)
        t0 = time.monotonic()
        assert s.recv(65536) == b""  # the server closes (FIN), no response, no Connection: close
        idle = time.monotonic() - t0
    assert 3.5 < idle < 7, idle


def test_a_second_request_cuts_a_running_stream_short(local_url):
    """interrupt_requests (default true): when another request arrives, the running stream ends at
    once: a bare `data: [DONE]`, no finish_reason. How the HTTP response ends depends on the
    server stack's versions: uvicorn 0.3x dropped the connection without the chunked body's last
    chunk ("ASGI callable returned without completing response"); uvicorn 0.55 with
    sse-starlette 3.7 (pinned in requirements.txt) ends the body cleanly. Either way nothing but
    the missing finish_reason tells the client the answer was cut."""
    long_stream = dict(CHAT, max_tokens=200, min_tokens=200, stream=True)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        first = pool.submit(h.raw_request, local_url, body=long_stream)
        time.sleep(0.5)
        second = pool.submit(h.raw_request, local_url, body=dict(CHAT, max_tokens=2))
        r1, r2 = first.result(timeout=60), second.result(timeout=60)
    events = [e for _, e in r1.sse_events()]
    chunks = [json.loads(e) for e in events[:-1]]
    assert r1.status == 200 and events[-1] == "[DONE]"
    assert len(chunks) < 100
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks)
    assert r2.status == 200
