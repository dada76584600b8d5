"""End to end with the official openai Python SDK against the real sidecar binary."""
import json
import socket
import urllib.parse
import urllib.request
import uuid
from decimal import Decimal

import openai
import pytest

HARD_PROMPT = (
    "Design a multi-region architecture for a payments platform and analyze the trade-offs.\n"
    "1. Compare active-active and active-passive replication for the ledger database.\n"
    "2. Explain how you would ensure exactly-once processing of card authorizations.\n"
    "3. Evaluate the security threat model, including key management and PCI scope.\n"
    "4. Propose a migration plan from the current monolith, with failure modes and rollback.\n"
    "The design must handle 20,000 transactions per second and should justify every choice."
)
# The fake upstream reports 11 prompt and 7 completion tokens; gpt-4o costs $2.50 / $10.00 per M.
GPT4O_COST = Decimal(11) * Decimal("2.50") / 1_000_000 + Decimal(7) * Decimal("10.00") / 1_000_000


@pytest.fixture
def client(sidecar, request):
    # Each test has a cache namespace of its own: an answer another test stored is never served
    # here (tests/sdk/test_cache.py is about the cache itself).
    return openai.OpenAI(
        base_url=f"{sidecar}/v1", api_key="sk-client-key", max_retries=0,
        default_headers={"X-Sidecar-Cache-Namespace": request.node.name})


def forwarded(fake_upstream):
    with urllib.request.urlopen(f"{fake_upstream}/_requests") as r:
        return json.load(r)


def test_simple_question_goes_to_the_local_tier(client):
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "What is 2+2?"}])
    completion = raw.parse()
    assert raw.headers["x-model-used"] == "llama3.2:3b"
    assert raw.headers["x-sidecar-upstream"] == "ollama"
    assert raw.headers["x-query-cost"] == "0"
    assert completion.choices[0].message.content == "answer from llama3.2:3b"
    assert float(raw.headers["x-sidecar-complexity"]) < 0.40


def test_design_prompt_goes_to_the_cloud_tier_priced_to_the_micro_dollar(client, fake_upstream):
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": HARD_PROMPT}])
    assert raw.headers["x-model-used"] == "gpt-4o"
    assert raw.headers["x-sidecar-upstream"] == "openai"
    assert Decimal(raw.headers["x-query-cost"]) == GPT4O_COST
    assert raw.parse().usage.prompt_tokens == 11
    last = forwarded(fake_upstream)[-1]
    assert last["body"]["model"] == "gpt-4o"
    # The sidecar injects the upstream's key; the client's own key is not forwarded.
    assert last["headers"]["Authorization"] == "Bearer sk-test-upstream"


def test_an_answer_without_usage_is_priced_by_a_marked_estimate(client):
    """Like llama.cpp's server, the upstream reports no usage: the cost is estimated, never 0."""
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": HARD_PROMPT}], extra_headers={"X-Fake-Usage": "none"})
    assert raw.headers["x-model-used"] == "gpt-4o"
    assert raw.headers["x-sidecar-cost-estimated"] == "true"
    assert Decimal(raw.headers["x-query-cost"]) > 0


def test_a_stream_without_usage_gets_an_estimated_usage_chunk(client):
    stream = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": HARD_PROMPT}], stream=True,
        stream_options={"include_usage": True}, extra_headers={"X-Fake-Usage": "none"})
    chunks = list(stream)
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    # "streamed answer from gpt-4o " is 28 bytes: 7 tokens at 4 bytes a token.
    assert chunks[-1].usage.completion_tokens == 7
    assert chunks[-1].usage.prompt_tokens > 100
    assert chunks[-1].model_extra.get("x_sidecar_usage_estimated") is True


def test_auto_alias_routes(client):
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "Hello there"}])
    assert raw.headers["x-model-used"] == "llama3.2:3b"


def test_streaming_chat_arrives_in_order_without_the_usage_chunk(client):
    stream = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": HARD_PROMPT}], stream=True)
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "streamed answer from gpt-4o "
    assert all(c.usage is None for c in chunks)


def test_a_stream_cut_right_after_its_role_only_opening_is_retried_unseen(client, fake_upstream):
    # The upstream sends the role chunk, then drops the connection: nothing the client could use
    # has been said, so the sidecar retries, and the client sees one whole, clean stream.
    token = str(uuid.uuid4())
    stream = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": HARD_PROMPT}], stream=True,
        extra_headers={"X-Fake-Cut-After-Role": token, "Cache-Control": "no-cache, no-store"})
    chunks = list(stream)
    assert [c.choices[0].delta.role for c in chunks if c.choices][0] == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "streamed answer from gpt-4o "
    tries = [r for r in json.loads(urllib.request.urlopen(f"{fake_upstream}/_requests").read())
             if {k.lower(): v for k, v in r["headers"].items()}.get("x-fake-cut-after-role") == token]
    assert len(tries) == 2


def test_streaming_with_usage_requested_keeps_the_usage_chunk(client):
    stream = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True,
        stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[-1].usage.completion_tokens == 7


def test_streaming_headers_through_raw_response(client):
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": HARD_PROMPT}], stream=True)
    assert raw.headers["x-model-used"] == "gpt-4o"
    assert raw.headers["trailer"].lower() == "x-query-cost, x-sidecar-cost-estimated"
    # The role chunk, four content chunks and the finish chunk (the usage chunk the sidecar asked for is hidden).
    assert len(list(raw.parse())) == 6


def test_stream_cost_arrives_as_an_http_trailer(sidecar):
    """The SDK does not expose trailers, so read the chunked response off a socket."""
    url = urllib.parse.urlparse(sidecar)
    body = json.dumps({"model": "gpt-4o", "stream": True,
                       "messages": [{"role": "user", "content": HARD_PROMPT}]}).encode()
    request = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: application/json\r\n"
               f"TE: trailers\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body
    with socket.create_connection((url.hostname, url.port), timeout=10) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    trailers = {}
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            for line in rest.split(b"\r\n"):
                if b":" in line:
                    name, value = line.split(b":", 1)
                    trailers[name.strip().lower().decode()] = value.strip().decode()
            break
        rest = rest[size + 2:]
    assert Decimal(trailers["x-query-cost"]) == GPT4O_COST


def test_pipelined_requests_are_answered_in_order(sidecar):
    """Two requests in one write (HTTP/1.1 pipelining): two complete answers, in order, the
    second one after the first, and the connection closes after the one marked close."""
    url = urllib.parse.urlparse(sidecar)

    def request(prompt, close):
        body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": prompt}]}).encode()
        return (f"POST /v1/chat/completions HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: application/json\r\n"
                f"X-Request-Id: req-{prompt[:5]}\r\nContent-Length: {len(body)}\r\n"
                + ("Connection: close\r\n" if close else "") + "\r\n").encode() + body

    with socket.create_connection((url.hostname, url.port), timeout=10) as s:
        s.sendall(request("first What is 2+2?", False) + request("second " + HARD_PROMPT, True))
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    answers = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        headers = {line.split(b":", 1)[0].strip().lower(): line.split(b":", 1)[1].strip()
                   for line in head.split(b"\r\n")[1:] if b":" in line}
        length = int(headers[b"content-length"])
        answers.append((head.split(b"\r\n")[0], headers, rest[:length]))
        data = rest[length:]
    assert [a[0] for a in answers] == [b"HTTP/1.1 200 OK", b"HTTP/1.1 200 OK"]
    assert [a[1][b"x-request-id"] for a in answers] == [b"req-first", b"req-secon"]
    assert [a[1][b"x-model-used"] for a in answers] == [b"llama3.2:3b", b"gpt-4o"]
    assert all(json.loads(a[2])["object"] == "chat.completion" for a in answers)


def test_half_closed_client_gets_its_answer_and_the_connection_closes(sidecar):
    """A client that shuts down its sending side after the request still gets the whole answer,
    then the sidecar closes the connection (no keep-alive connection left behind)."""
    url = urllib.parse.urlparse(sidecar)
    body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "What is 2+2?"}]}).encode()
    request = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    with socket.create_connection((url.hostname, url.port), timeout=10) as s:
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := s.recv(65536):  # ends only when the sidecar closes
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert json.loads(rest)["object"] == "chat.completion"


def raw_exchange(sidecar, request, half_close=False):
    """Sends raw bytes, reads until the sidecar closes the connection."""
    url = urllib.parse.urlparse(sidecar)
    with socket.create_connection((url.hostname, url.port), timeout=10) as s:
        s.sendall(request)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


def test_bytes_that_are_not_http_get_an_openai_shaped_400_and_the_connection_closes(sidecar):
    data = raw_exchange(sidecar, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n")
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 400 Bad Request"
    headers = {line.split(b":", 1)[0].lower(): line.split(b":", 1)[1].strip() for line in lines[1:]}
    assert headers[b"connection"] == b"close"
    assert int(headers[b"content-length"]) == len(rest)
    error = json.loads(rest)["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "bad_http_request"


def test_upgrade_request_is_answered_over_http1_then_the_connection_closes(sidecar):
    """An h2c upgrade attempt (curl --http2 on http://) gets a plain HTTP/1.1 answer and a close,
    so the client's next request goes over a new connection instead of hanging."""
    url = urllib.parse.urlparse(sidecar)
    data = raw_exchange(sidecar, (f"GET /healthz HTTP/1.1\r\nHost: {url.netloc}\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                                  "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n").encode())
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"connection: close" in head.lower()


def test_head_request_gets_headers_and_no_body(sidecar):
    url = urllib.parse.urlparse(sidecar)
    data = raw_exchange(sidecar, f"HEAD /healthz HTTP/1.1\r\nHost: {url.netloc}\r\nConnection: close\r\n\r\n".encode())
    head, sep, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and sep and rest == b""
    assert b"content-length:" in head.lower()


def test_expect_100_continue_gets_an_interim_answer_before_the_body(sidecar):
    url = urllib.parse.urlparse(sidecar)
    body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "What is 2+2?"}]}).encode()
    with socket.create_connection((url.hostname, url.port), timeout=10) as s:
        s.sendall((f"POST /v1/chat/completions HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: application/json\r\n"
                   f"Expect: 100-continue\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n").encode())
        interim = s.recv(65536)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert json.loads(rest)["object"] == "chat.completion"


def test_completions(client):
    raw = client.completions.with_raw_response.create(model="gpt-4o", prompt="Say hi")
    assert raw.headers["x-model-used"] == "llama3.2:3b"
    assert raw.parse().choices[0].text == "completion from llama3.2:3b"


def test_embeddings_are_priced_by_the_owning_model(client):
    raw = client.embeddings.with_raw_response.create(model="text-embedding-3-small", input=["a", "b"])
    result = raw.parse()
    assert len(result.data) == 2
    assert raw.headers["x-sidecar-upstream"] == "openai"
    # 10 prompt tokens x $0.02 per M
    assert Decimal(raw.headers["x-query-cost"]) == Decimal("0.0000002")


def test_models_list_includes_auto_and_configured_models(client):
    ids = [m.id for m in client.models.list()]
    assert ids == ["auto", "llama3.2:3b", "gpt-4o", "text-embedding-3-small", "dead-model", "all-MiniLM-L6-v2"]


def test_local_embeddings_are_computed_in_process_and_free(client):
    raw = client.embeddings.with_raw_response.create(
        model="all-MiniLM-L6-v2", input=["What is the capital of France?", "What's France's capital city?"])
    result = raw.parse()
    assert raw.headers["x-sidecar-upstream"] == "local"
    assert raw.headers["x-query-cost"] == "0"
    assert len(result.data) == 2 and len(result.data[0].embedding) == 384
    a, b = result.data[0].embedding, result.data[1].embedding
    cosine = sum(x * y for x, y in zip(a, b))
    assert cosine > 0.8  # the two paraphrases are close; vectors are unit length
    assert abs(sum(x * x for x in a) - 1) < 1e-4
    assert result.usage.prompt_tokens == 9 + 11


def test_malformed_request_raises_bad_request_error(client):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gpt-4o", messages="not a list of messages")
    assert info.value.status_code == 400
    assert info.value.body["code"] == "invalid_json"


def test_dead_upstream_raises_internal_server_error_with_502(client):
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(
            model="dead-model", messages=[{"role": "user", "content": "hi"}],
            extra_headers={"X-Sidecar-Pin": "1"})
    assert info.value.status_code == 502
    assert 'Upstream "dead" failed' in info.value.body["message"]
