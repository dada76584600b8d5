"""Operations through the live sidecar: /sidecar/stats after mixed traffic, the dashboard as
headless Chromium renders it, /metrics through promtool, and the JSON access log."""
import json
import pathlib
import re
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid

import openai
import pytest

from conftest import repo_config, start_sidecar

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PROMTOOL = shutil.which("promtool")


@pytest.fixture(scope="module")
def traffic(fake_upstream):
    """A sidecar with the access log on, after mixed traffic: both tiers, a stream, a cache hit,
    an error, two apps. Yields its URL, the costs it reported and its stderr file."""
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "sidecar.conf"
        path.write_text(repo_config(fake_upstream))
        log = open(pathlib.Path(tmp) / "stderr", "w+")
        proc, url = start_sidecar(path, env={"OPENAI_API_KEY": "sk-test-upstream-secret"}, stderr=log)
        try:
            ns = str(uuid.uuid4())
            costs = []

            def client(**headers):
                return openai.OpenAI(base_url=f"{url}/v1", api_key="sk-client-secret", max_retries=0,
                                     default_headers={"X-Sidecar-Cache-Namespace": ns, **headers})

            for tier, app in (("0", "web"), ("1", "web"), ("1", "billing")):
                raw = client(**{"X-Sidecar-Tier": tier, "X-Sidecar-App": app}).chat.completions.with_raw_response.create(
                    model="gpt-4o", messages=[{"role": "user", "content": f"question for tier {tier} from {app}"}])
                costs.append(float(raw.headers["X-Query-Cost"]))
            repeat = client(**{"X-Sidecar-Tier": "1", "X-Sidecar-App": "web"}).chat.completions.with_raw_response.create(
                model="gpt-4o", messages=[{"role": "user", "content": "question for tier 1 from web"}])
            assert repeat.headers["X-Sidecar-Cache"] == "exact"
            stream = client(**{"X-Sidecar-Tier": "1"}).chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "a streamed one"}], stream=True)
            assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
            with pytest.raises(openai.BadRequestError):
                client(**{"X-Sidecar-Tier": "nine"}).chat.completions.create(
                    model="gpt-4o", messages=[{"role": "user", "content": "bad tier"}])
            time.sleep(0.5)  # the access log is written every 200 ms
            yield url, costs, log
        finally:
            proc.terminate()
            assert proc.wait(timeout=15) == 0
            log.close()


def get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read().decode()


def test_stats_sum_the_traffic(traffic):
    url, costs, _ = traffic
    stats = json.loads(get(f"{url}/sidecar/stats"))
    today = stats["today"]
    assert today["requests"] == 5  # the refused one never reached a model
    assert today["cache_hits"] == 1 and today["hit_rate"] == pytest.approx(0.2)
    assert today["cost_usd"] > sum(costs) - 1e-12  # and the stream's cost
    assert today["saved_usd"] == pytest.approx(costs[1])
    models = {m["model"]: m for m in stats["models"]}
    assert set(models) == {"llama3.2:3b", "gpt-4o"}
    apps = {a["app"]: a for a in stats["apps"]}
    assert apps["billing"]["cost_usd"] == pytest.approx(costs[2])
    assert stats["since_start"]["tiers"] == {"0": 1, "1": 3}
    assert stats["since_start"]["errors"] == 1
    assert {b["upstream"] for b in stats["breakers"]} >= {"ollama", "openai"}
    assert sum(m["requests"] for m in stats["history"]) == 6


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (Debian: prometheus)")
def test_metrics_pass_promtool(traffic):
    url, _, _ = traffic
    text = get(f"{url}/metrics")
    assert 'llm_sidecar_requests_total{endpoint="chat_completions",model="gpt-4o",tier="",cache="exact"' in text
    assert 'llm_sidecar_cost_usd_total{model="gpt-4o",app="billing",source="usage"}' in text
    assert 'llm_sidecar_saved_usd_total{model="gpt-4o",app="web"}' in text
    result = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_the_dashboard_shows_models_spend_and_hit_rate(traffic):
    url, _, _ = traffic
    stats = json.loads(get(f"{url}/sidecar/stats"))
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             f"--user-data-dir={profile}", "--virtual-time-budget=5000", "--dump-dom", f"{url}/sidecar/"],
            capture_output=True, text=True, timeout=120)
    dom = result.stdout
    assert 'id="spend-today"' in dom, result.stderr[-2000:]

    def text_of(element_id):
        match = re.search(rf'id="{element_id}"[^>]*>(.*?)</', dom, flags=re.S)
        return match.group(1).strip() if match else None

    spend = stats["today"]["cost_usd"]
    assert text_of("spend-today") == "$" + (f"{spend:.2f}" if spend >= 1 else f"{spend:.6f}")
    assert text_of("hit-rate") == f"{stats['today']['hit_rate'] * 100:.1f}%"
    models = re.search(r'id="models">(.*?)</tbody>', dom, flags=re.S).group(1)
    assert "llama3.2:3b" in models and "gpt-4o" in models


def test_one_json_access_log_line_per_request_and_never_a_key(traffic):
    _, costs, log = traffic
    log.flush()
    log.seek(0)
    text = log.read()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    chat = [line for line in lines if line["endpoint"] == "chat_completions"]
    assert len(chat) == 6
    first = chat[0]
    assert {"ts", "id", "app", "model_requested", "model", "tier", "score", "cache", "status", "latency_ms",
            "prompt_tokens", "completion_tokens", "cost_usd"} <= set(first)
    assert first["app"] == "web" and first["model"] == "llama3.2:3b" and first["status"] == 200
    assert [line["cache"] for line in chat].count("exact") == 1
    assert any(line["status"] == 400 for line in chat)
    assert "sk-test-upstream-secret" not in text and "sk-client-secret" not in text
