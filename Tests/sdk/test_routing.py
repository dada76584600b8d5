"""Routing through the live sidecar: the dry run, the router and route headers, strategies,
per-request overrides and app ceilings, feedback, and a calibrated threshold put to work.

Each sidecar here runs the repository's sidecar.conf (so the shipped learned router, when the
embedding model is installed) with a few routing keys changed.
"""
import contextlib
import json
import os
import pathlib
import re
import subprocess
import urllib.error
import urllib.request
import uuid

import openai
import pytest

from conftest import BINARY, ROOT, repo_config, running_sidecar

MODELS_DIR = os.environ.get("LLM_SIDECAR_MODELS_DIR", str(ROOT / "models"))
HAVE_MODEL = (pathlib.Path(MODELS_DIR) / "all-MiniLM-L6-v2" / "model.safetensors").exists()
HAVE_ROUTER = (ROOT / "models" / "router" / "router.json").exists()
LEARNED = HAVE_MODEL and HAVE_ROUTER


# Written for these tests (no evaluation data): a spread from chit-chat to proofs.
SAMPLE = [
    "hello!", "thanks, that works", "What is the capital of France?", "Translate 'good morning' to Spanish.",
    "What is 7 times 8?", "Give me a synonym for happy.", "Who wrote Hamlet?", "What time zone is Tokyo in?",
    "Summarize the plot of Cinderella in two sentences.", "Write a haiku about autumn rain.",
    "Explain how a hash map handles collisions.", "Write a Python function that reverses a linked list.",
    "Compare TCP and UDP for a multiplayer game and recommend one.",
    "Prove that the square root of 2 is irrational.",
    "A train leaves at 3pm at 60 km/h and another at 4pm at 90 km/h on the same track. When does the second "
    "catch up, and how far from the station?",
    "Design a rate limiter for a distributed API gateway; analyze the failure modes and trade-offs.",
    "Derive the closed form of the sum of the first n squares and prove it by induction.",
    "Refactor this code to remove the race condition: ```go\nfunc (c *Counter) Inc() { c.n++ }\n```",
    "Evaluate the security of storing session tokens in localStorage versus HttpOnly cookies, with a threat model.",
    "Plan a migration of a 2 TB PostgreSQL database to a new region with under one minute of downtime.",
]


@contextlib.contextmanager
def sidecar_with(fake_upstream, routing_keys="", tiers=None):
    config = repo_config(fake_upstream, learned_router=True)
    config = config.replace('models_dir = "./models"', f'models_dir = "{MODELS_DIR}"')
    config = config.replace('router = "./models/router"', f'router = "{ROOT / "models" / "router"}"')
    # The debug binary embeds slower than a release build.
    config = config.replace("embedding_budget_ms = 30 ", "embedding_budget_ms = 3000")
    config = config.replace("semantic_budget_ms = 30 ", "semantic_budget_ms = 3000")
    if tiers is not None:
        config = re.sub(r"^tiers = \[.*?\}\s*\]", f"tiers = {tiers}", config, flags=re.M | re.S)
    for line in filter(None, routing_keys.splitlines()):
        key = line.split("=", 1)[0].strip()
        pattern = rf"^{re.escape(key)} = .*$"
        if re.search(pattern, config, flags=re.M):
            config = re.sub(pattern, lambda _: line, config, count=1, flags=re.M)
        else:
            config = config.replace("[routing]\n", "[routing]\n" + line + "\n", 1)
    with running_sidecar(config) as (url, path):
        yield url, path


@pytest.fixture(scope="module")
def routed(fake_upstream):
    with sidecar_with(fake_upstream, 'apps = [ { name = "batch", max_tier = 0 } ]') as (url, path):
        yield url, path


@pytest.fixture(scope="module")
def easy_and_hard(routed):
    """The sample's lowest- and highest-scoring prompts by the sidecar's own dry run: which
    prompts a learned router sends where is its business; these tests check what follows."""
    url, _ = routed
    scored = sorted((post(f"{url}/sidecar/route", {"messages": [{"role": "user", "content": p}]}).json()["score"], p)
                    for p in SAMPLE)
    (low, easy), (high, hard) = scored[0], scored[-1]
    assert low < 0.40 <= high, scored
    return easy, hard


def client(url, **headers):
    # A fresh namespace per client: these tests are about routing, never a cache hit.
    headers.setdefault("X-Sidecar-Cache-Namespace", str(uuid.uuid4()))
    return openai.OpenAI(base_url=f"{url}/v1", api_key="sk-client-key", max_retries=0, default_headers=headers)


def ask(c, text, **kw):
    return c.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": text}], **kw)


class Reply:
    """A plain HTTP answer (the standard library's, so no client package beyond the SDK)."""

    def __init__(self, status, body):
        self.status_code = status
        self.text = body.decode()

    def json(self):
        return json.loads(self.text)


def post(url, obj=None, content=None):
    data = content if content is not None else json.dumps(obj).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return Reply(r.status, r.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.read())


def get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return Reply(r.status, r.read())


def upstream_requests(fake_upstream):
    with urllib.request.urlopen(f"{fake_upstream}/_requests") as r:
        return json.load(r)


def test_the_dry_run_decides_without_forwarding(routed, fake_upstream, easy_and_hard):
    url, _ = routed
    EASY, HARD = easy_and_hard
    before = len(upstream_requests(fake_upstream))
    decisions = {}
    for name, text in (("easy", EASY), ("hard", HARD)):
        r = post(f"{url}/sidecar/route", {"model": "gpt-4o", "messages": [{"role": "user", "content": text}]})
        assert r.status_code == 200, r.text
        decisions[name] = r.json()
    assert len(upstream_requests(fake_upstream)) == before
    easy, hard = decisions["easy"], decisions["hard"]
    assert easy["model"] == "llama3.2:3b" and easy["tier"] == 0 and easy["upstream"] == "ollama"
    assert hard["model"] == "gpt-4o" and hard["tier"] == 1
    assert hard["score"] > easy["score"]
    assert easy["fallbacks"] == ["gpt-4o"] and easy["strategy"] == "cost" and easy["route"] == "tier"
    assert {"length", "reasoning", "heuristic" if LEARNED else "length"} <= set(easy["features"])
    assert easy["router"] == ("learned" if LEARNED else "heuristic")
    # A body that is not a chat request gets OpenAI's error shape.
    bad = post(f"{url}/sidecar/route", content=b"{not json")
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"


def test_answers_say_which_router_decided_and_how(routed, easy_and_hard):
    url, _ = routed
    EASY, HARD = easy_and_hard
    dry = post(f"{url}/sidecar/route", {"model": "gpt-4o", "messages": [{"role": "user", "content": HARD}]}).json()
    raw = ask(client(url), HARD)
    # The live request is decided exactly as the dry run said.
    assert raw.headers["X-Sidecar-Complexity"] == f"{dry['score']:.3f}"
    assert raw.headers["X-Model-Used"] == dry["model"]
    assert raw.headers["X-Sidecar-Router"] == ("learned" if LEARNED else "heuristic")
    assert raw.headers["X-Sidecar-Route"] == "tier"
    assert raw.headers["X-Model-Used"] == "gpt-4o"
    pinned = ask(client(url, **{"X-Sidecar-Pin": "1"}), EASY)
    assert pinned.headers["X-Model-Used"] == "gpt-4o" and pinned.headers["X-Sidecar-Route"] == "pinned"


def test_a_forced_tier_a_cost_ceiling_and_an_app_ceiling(routed, fake_upstream, easy_and_hard):
    url, _ = routed
    EASY, HARD = easy_and_hard
    forced = ask(client(url, **{"X-Sidecar-Tier": "1"}), EASY)
    assert forced.headers["X-Model-Used"] == "gpt-4o" and forced.headers["X-Sidecar-Route"] == "tier:forced"
    by_name = ask(client(url, **{"X-Sidecar-Tier": "llama3.2:3b"}), HARD)
    assert by_name.headers["X-Model-Used"] == "llama3.2:3b"
    # gpt-4o would cost about 60 prompt tokens x $2.50 + 512 x $10 per million: over $0.001.
    capped = ask(client(url, **{"X-Sidecar-Max-Cost": "0.001"}), HARD)
    assert capped.headers["X-Model-Used"] == "llama3.2:3b" and capped.headers["X-Sidecar-Route"] == "tier:cost"
    roomy = ask(client(url, **{"X-Sidecar-Max-Cost": "0.05"}), HARD)
    assert roomy.headers["X-Model-Used"] == "gpt-4o"
    batch = ask(client(url, **{"X-Sidecar-App": "batch"}), HARD)
    assert batch.headers["X-Model-Used"] == "llama3.2:3b" and batch.headers["X-Sidecar-Route"] == "tier:app"
    other = ask(client(url, **{"X-Sidecar-App": "web"}), HARD)
    assert other.headers["X-Model-Used"] == "gpt-4o"
    # The sidecar's own headers never reach the upstream.
    last = upstream_requests(fake_upstream)[-1]
    assert not any(k.lower().startswith("x-sidecar-") for k in last["headers"])
    for headers, code in (({"X-Sidecar-Tier": "7"}, "invalid_tier"), ({"X-Sidecar-Max-Cost": "cheap"}, "invalid_max_cost")):
        with pytest.raises(openai.BadRequestError) as error:
            ask(client(url, **headers), EASY)
        assert error.value.code == code


def test_feedback_is_stored_with_the_decision_and_reported_by_tier(routed, easy_and_hard):
    url, _ = routed
    EASY, HARD = easy_and_hard
    easy = ask(client(url), EASY)
    hard = ask(client(url), HARD)
    for raw, rating in ((easy, 1), (hard, 0.5), (easy, True)):  # the third replaces the first
        r = post(f"{url}/sidecar/feedback", {"request_id": raw.headers["X-Request-Id"], "rating": rating})
        assert r.status_code == 200, r.text
        assert r.json()["model"] == raw.headers["X-Model-Used"]
    report = get(f"{url}/sidecar/feedback").json()
    assert report["source"] == "local"
    rows = {row["model"]: row for row in report["tiers"]}
    assert rows["llama3.2:3b"]["ratings"] == 1 and rows["llama3.2:3b"]["mean_rating"] == 1
    assert rows["llama3.2:3b"]["tier"] == 0
    assert rows["gpt-4o"]["ratings"] == 1 and rows["gpt-4o"]["mean_rating"] == 0.5
    unknown = post(f"{url}/sidecar/feedback", {"request_id": "no-such-request", "rating": 1})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_request"
    for bad in ({"request_id": easy.headers["X-Request-Id"], "rating": 7}, {"rating": 1}, "nope"):
        r = post(f"{url}/sidecar/feedback", bad)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_feedback"


def test_the_quality_strategy_sends_borderline_prompts_up(fake_upstream, routed, easy_and_hard):
    url, _ = routed
    EASY, _ = easy_and_hard
    assert ask(client(url), EASY).headers["X-Model-Used"] == "llama3.2:3b"
    # A margin as wide as the scale: every prompt clears the local tier's max_score.
    with sidecar_with(fake_upstream, 'strategy = "quality"\nstrategy_margin = 1.0') as (quality, _):
        raw = ask(client(quality), EASY)
        assert raw.headers["X-Model-Used"] == "gpt-4o" and raw.headers["X-Sidecar-Route"] == "tier"
        assert post(f"{quality}/sidecar/route", {"messages": [{"role": "user", "content": EASY}]}
                          ).json()["strategy"] == "quality"


def test_the_latency_strategy_prefers_the_faster_model_that_is_strong_enough(fake_upstream, easy_and_hard):
    EASY, _ = easy_and_hard
    with sidecar_with(fake_upstream, 'strategy = "latency"') as (url, _):
        # Unmeasured: the cheapest tier that clears the score.
        assert ask(client(url), EASY).headers["X-Model-Used"] == "llama3.2:3b"
        # The local model turns slow, the cloud one answers fast.
        for _ in range(3):
            ask(client(url, **{"X-Sidecar-Tier": "0", "X-Fake-Delay": "0.3"}), EASY)
            ask(client(url, **{"X-Sidecar-Tier": "1"}), EASY)
        assert ask(client(url), EASY).headers["X-Model-Used"] == "gpt-4o"


def test_a_calibrated_threshold_sends_that_share_to_the_strong_tier(fake_upstream, routed):
    _, path = routed
    lines = "".join(json.dumps({"id": i, "prompt": p}) + "\n" for i, p in enumerate(SAMPLE))
    result = subprocess.run([BINARY, "calibrate", "--strong-share", "0.3", "--config", str(path)],
                            input=lines, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    calibration = json.loads(result.stdout)
    assert calibration["prompts"] == len(SAMPLE) and calibration["strong_share"] == 0.3
    assert calibration["router"] == ("learned" if LEARNED else "heuristic")
    assert calibration["measured_strong_share"] == pytest.approx(0.3, abs=0.051)
    threshold = calibration["threshold"]
    tiers = f'[ {{ max_score = {threshold}, model = "llama3.2:3b" }}, {{ max_score = 1.01, model = "gpt-4o" }} ]'
    with sidecar_with(fake_upstream, tiers=tiers) as (url, _):
        used = [ask(client(url), p).headers["X-Model-Used"] for p in SAMPLE]
    strong = used.count("gpt-4o") / len(SAMPLE)
    assert strong == pytest.approx(calibration["measured_strong_share"], abs=0.051)
    assert subprocess.run([BINARY, "calibrate", "--strong-share", "1.5"], capture_output=True).returncode == 2
