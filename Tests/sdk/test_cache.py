"""The response cache, end to end with the official openai SDK against the real binary."""
import json
import time
import urllib.request
import uuid

import openai
import pytest


def forwarded(fake_upstream):
    with urllib.request.urlopen(f"{fake_upstream}/_requests") as r:
        return json.load(r)


@pytest.fixture
def ns():
    return uuid.uuid4().hex


def client_for(sidecar, ns, key="sk-client-key"):
    return openai.OpenAI(base_url=f"{sidecar}/v1", api_key=key, max_retries=0,
                         default_headers={"X-Sidecar-Cache-Namespace": ns})


def ask(client, text, **kw):
    return client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": text}], **kw)


def test_a_repeated_request_is_answered_from_the_cache_at_no_cost(sidecar, fake_upstream, ns):
    client = client_for(sidecar, ns)
    first = ask(client, "What is the capital of Peru?")
    before = len(forwarded(fake_upstream))
    second = ask(client, "What is the capital of Peru?")
    assert first.headers["X-Sidecar-Cache"] == "miss"
    assert second.headers["X-Sidecar-Cache"] == "exact"
    assert second.headers["X-Query-Cost"] == "0"
    assert second.headers["X-Model-Used"] == first.headers["X-Model-Used"]
    assert len(forwarded(fake_upstream)) == before
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content


def test_a_streamed_answer_is_replayed_as_chunks_and_served_whole_too(sidecar, fake_upstream, ns):
    client = client_for(sidecar, ns)
    text = "Name three rivers in Africa."
    original = [c.choices[0].delta.content for c in client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": text}], stream=True) if c.choices]
    before = len(forwarded(fake_upstream))
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": text}], stream=True)
    assert raw.headers["X-Sidecar-Cache"] == "exact"
    replayed = [c.choices[0].delta.content for c in raw.parse() if c.choices]
    assert replayed == original and len(replayed) > 2
    whole = ask(client, text)
    assert whole.headers["X-Sidecar-Cache"] == "exact"
    assert whole.parse().choices[0].message.content == "".join(t or "" for t in original)
    assert len(forwarded(fake_upstream)) == before


def test_cache_control_and_credentials_keep_answers_apart(sidecar, fake_upstream, ns):
    client = client_for(sidecar, ns)
    ask(client, "Spell the word cat.")
    assert ask(client, "Spell the word cat.", extra_headers={"Cache-Control": "no-cache"}).headers[
        "X-Sidecar-Cache"] == "bypass"
    other = client_for(sidecar, ns, key="sk-another-app")
    assert ask(other, "Spell the word cat.").headers["X-Sidecar-Cache"] == "miss"
    ask(client, "Spell the word dog.", extra_headers={"Cache-Control": "no-store"})
    assert ask(client, "Spell the word dog.").headers["X-Sidecar-Cache"] == "miss"


def test_a_pinned_or_forced_request_never_gets_an_answer_routed_for_another_model(sidecar, ns):
    client = client_for(sidecar, ns)
    text = "Spell the word owl."
    routed = ask(client, text)
    assert routed.headers["X-Model-Used"] != "gpt-4o"  # a short question: the local tier
    pinned = ask(client, text, extra_headers={"X-Sidecar-Pin": "1"})
    assert pinned.headers["X-Sidecar-Cache"] == "miss" and pinned.headers["X-Model-Used"] == "gpt-4o"
    forced = ask(client, text, extra_headers={"X-Sidecar-Tier": "1"})
    assert forced.headers["X-Sidecar-Cache"] == "miss"
    assert ask(client, text, extra_headers={"X-Sidecar-Pin": "1"}).headers["X-Sidecar-Cache"] == "exact"


def test_a_paraphrase_is_a_semantic_hit_and_a_different_question_is_not(sidecar, ns):
    client = client_for(sidecar, ns)
    ask(client, "How do I reset my home wifi router?")
    # A lookup whose embedding misses the latency budget goes on without it (by design): on a
    # loaded machine ask again; no-store keeps the paraphrase's own answer out.
    for _ in range(20):
        hit = ask(client, "How can I reset my home wifi router?", extra_headers={"Cache-Control": "no-store"})
        if hit.headers["X-Sidecar-Cache"] == "semantic":
            break
        time.sleep(0.1)
    assert hit.headers["X-Sidecar-Cache"] == "semantic"
    assert hit.headers["X-Query-Cost"] == "0"
    # The guards: a different number, a negation, a different name.
    ask(client, "What is 15 percent of 80?")
    assert ask(client, "What is 15 percent of 90?").headers["X-Sidecar-Cache"] == "miss"
    assert ask(client, "How do I not reset my home wifi router?").headers["X-Sidecar-Cache"] == "miss"
    ask(client, "How do I install Rust on Windows?")
    assert ask(client, "How do I install Go on Windows?").headers["X-Sidecar-Cache"] == "miss"
