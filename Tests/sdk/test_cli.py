"""The command line: exit codes, check, route and embed (JSON lines)."""
import json
import os
import pathlib
import subprocess
import tempfile

import pytest

from conftest import BINARY, ROOT, closed_port

MODELS_DIR = os.environ.get("LLM_SIDECAR_MODELS_DIR", str(ROOT / "models"))


def run(args, stdin=""):
    return subprocess.run([BINARY, *args], input=stdin, capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_invalid_config_exits_2_naming_file_line_and_key():
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
        f.write('[server]\nlisten = "nowhere"\n')
    try:
        result = run(["check", "--config", f.name])
        assert result.returncode == 2
        assert f'{f.name}:2: server.listen: expected HOST:PORT or unix:PATH, found "nowhere"' in result.stderr
    finally:
        os.unlink(f.name)


def test_bad_usage_exits_2():
    assert run(["serve", "--no-such-flag"]).returncode == 2


def test_route_scores_prompts_and_messages():
    lines = [
        {"id": "easy", "prompt": "What is 2+2?"},
        {"id": 7, "messages": [{"role": "system", "content": "You are an architect."},
                               {"role": "user", "content": "Design and analyze a multi-region payments platform: "
                                "1. compare replication strategies 2. evaluate the threat model 3. plan the migration. "
                                "Justify every trade-off."}]},
    ]
    # The heuristic scorer (no learned router): its hand-set weights put these two apart.
    with tempfile.TemporaryDirectory() as tmp:
        config = pathlib.Path(tmp) / "sidecar.conf"
        config.write_text((ROOT / "sidecar.conf").read_text().replace('router = "./models/router"', 'router = ""'))
        result = run(["route", "--config", str(config)], "\n".join(json.dumps(x) for x in lines) + "\n")
    assert result.returncode == 0, result.stderr
    out = [json.loads(x) for x in result.stdout.splitlines()]
    assert [o["id"] for o in out] == ["easy", 7]
    assert out[0]["model"] == "llama3.2:3b" and out[0]["tier"] == 0 and out[0]["score"] < 0.4
    assert out[1]["model"] == "gpt-4o" and out[1]["tier"] == 1 and out[1]["score"] >= 0.4
    assert set(out[0]["features"]) >= {"length", "reasoning", "parts"}
    assert {o["router"] for o in out} == {"heuristic"}


@pytest.mark.skipif(not (pathlib.Path(MODELS_DIR) / "all-MiniLM-L6-v2" / "model.safetensors").exists()
                    or not (ROOT / "models" / "router" / "router.json").exists(),
                    reason="needs the MiniLM files and the shipped router")
def test_route_with_the_learned_router_and_a_bad_router_directory():
    config = (ROOT / "sidecar.conf").read_text().replace('models_dir = "./models"', f'models_dir = "{MODELS_DIR}"')
    prompts = ["hi there", "Prove that there are infinitely many primes.", "What is 17 * 23?",
               "Write a SQL query that finds duplicate emails in a users table."]
    lines = "".join(json.dumps({"id": i, "prompt": p}) + "\n" for i, p in enumerate(prompts))
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "sidecar.conf"
        path.write_text(config)
        result = run(["route", "--config", str(path), "--router", str(ROOT / "models" / "router")], lines)
        assert result.returncode == 0, result.stderr
        out = [json.loads(x) for x in result.stdout.splitlines()]
        assert [o["router"] for o in out] == ["learned"] * len(prompts)
        for o in out:
            # The shipped tiers: below 0.40 local, else the cloud model.
            assert (o["tier"] == 0) == (o["score"] < 0.40)
            assert o["model"] == ("llama3.2:3b" if o["tier"] == 0 else "gpt-4o")
            assert 0 <= o["score"] <= 1 and "heuristic" in o["features"]
        bad = run(["route", "--config", str(path), "--router", tmp], lines)
        assert bad.returncode == 2 and "router.json" in bad.stderr


@pytest.mark.skipif(not (pathlib.Path(MODELS_DIR) / "all-MiniLM-L6-v2" / "model.safetensors").exists(),
                    reason="all-MiniLM-L6-v2 is not installed (scripts/install-model.sh)")
def test_embed_writes_unit_vectors_per_line():
    config = (ROOT / "sidecar.conf").read_text().replace('models_dir = "./models"', f'models_dir = "{MODELS_DIR}"')
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "sidecar.conf"
        path.write_text(config)
        result = run(["embed", "--config", str(path)], '{"id":"a","text":"hello world"}\n{"id":2,"text":"bye"}\n')
    assert result.returncode == 0, result.stderr
    out = [json.loads(x) for x in result.stdout.splitlines()]
    assert [o["id"] for o in out] == ["a", 2]
    assert all(len(o["embedding"]) == 384 for o in out)
    assert abs(sum(v * v for v in out[0]["embedding"]) - 1) < 1e-4


def test_check_warns_about_plain_http_upstreams_beyond_loopback():
    closed = closed_port()
    upstreams = [
        ("loopback", f"http://127.0.0.1:{closed}/v1", ""), ("loopback-8", f"http://127.8.9.10:{closed}/v1", ""),
        ("localhost", f"http://localhost:{closed}/v1", ""), ("ipv6-loopback", f"http://[::1]:{closed}/v1", ""),
        ("lan-name", "http://gpu-box.invalid:8000/v1", "LAN_KEY"), ("lan-ip", "http://192.0.2.10:8000/v1", ""),
        ("tls", "https://gpu-box.invalid/v1", "LAN_KEY"),
    ]
    config = "".join(f'[[upstreams]]\nname = "{n}"\nbase_url = "{u}"\napi_key_env = "{k}"\n\n' for n, u, k in upstreams)
    config += '[[models]]\nname = "m"\nupstream = "loopback"\n\n[routing]\ntiers = [ { max_score = 1.01, model = "m" } ]\n'
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "sidecar.conf"
        path.write_text(config)
        result = subprocess.run([BINARY, "check", "--config", str(path)], capture_output=True, text=True, timeout=60,
                                cwd=ROOT, env={**os.environ, "LAN_KEY": "sk-lan-key-value"})
    assert result.returncode == 1, result.stderr  # the upstreams are unreachable
    warnings = [line for line in result.stdout.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2, result.stdout
    assert warnings[0].startswith('warning: upstream "lan-name" is plain http:// beyond loopback '
                                  "(http://gpu-box.invalid:8000/v1): prompts, answers and its key cross the network")
    assert warnings[1].startswith('warning: upstream "lan-ip" is plain http:// beyond loopback '
                                  "(http://192.0.2.10:8000/v1): prompts and answers cross the network")
    assert "sk-lan-key-value" not in result.stdout + result.stderr
