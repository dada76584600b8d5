"""Secrets never leak: upstream keys (from the environment and from api_key_file) and client
tokens appear in no log line, error body, /metrics, /sidecar/* answer or `check` output, after
traffic that includes every kind of failure; the upstream gets its key, and never a client token."""
import base64
import json
import os
import pathlib
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import openai
import pytest

from conftest import BINARY, closed_port, free_port, repo_config, wait_for

OPENAI_KEY = "envkey-7Hq2Wm9Zt4Lp8Rx3Vb6N"
FILE_KEY = "filekey-K5s8Dj2Fg7Hw4Qa9Ye1C"
DEAD_KEY = "deadkey-Z3x6Cv9Bn2Mk5Lo8Pi1U"
BILLING_TOKEN = "clienttok-billing-R4t7Yu1Io3Pa6Sd9"
WEB_TOKEN = "clienttok-web-F2g5Hj8Kl1Zx4Cv7"
UPSTREAM_KEYS = [OPENAI_KEY, FILE_KEY, DEAD_KEY]
CLIENT_TOKENS = [BILLING_TOKEN, WEB_TOKEN]
SECRETS = UPSTREAM_KEYS + CLIENT_TOKENS


def forms(secret):
    """The ways a secret could show: whole, its first and last 12 characters, base64 (alone and as
    a bearer header value), hex."""
    return {
        "whole": secret, "prefix": secret[:12], "suffix": secret[-12:],
        "base64": base64.b64encode(secret.encode()).decode().rstrip("="),
        "base64 bearer": base64.b64encode(f"Bearer {secret}".encode()).decode().rstrip("="),
        "hex": secret.encode().hex(),
    }


def config_text(fake_upstream):
    config = repo_config(fake_upstream)
    config = config.replace("max_body_bytes = 16777216", "max_body_bytes = 65536")
    # Pass-through paths go to the keyed upstream.
    config = config.replace('default_upstream = ""', 'default_upstream = "openai"')
    extra = (
        '[[upstreams]]\nname = "filekey"\nbase_url = "' + fake_upstream + '/v1"\n'
        'api_key_file = "upstream-key"\n\n'
        '[[upstreams]]\nname = "dead"\nbase_url = "http://127.0.0.1:' + str(closed_port()) + '/v1"\n'
        'api_key_env = "DEAD_KEY"\n\n'
        '[[models]]\nname = "file-model"\nupstream = "filekey"\n\n'
        '[[models]]\nname = "dead-model"\nupstream = "dead"\n\n'
    )
    config = config.replace("[routing]", extra + "[routing]", 1)
    return config + (
        '\n[[clients]]\napp = "billing"\ntoken_env = "BILLING_SIDECAR_TOKEN"\n'
        '\n[[clients]]\napp = "web"\ntoken_env = "WEB_SIDECAR_TOKEN"\n'
    )


def request(url, method="GET", body=None, headers=None):
    """Any answer (status, headers, body text), errors included."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode(errors="replace")


@pytest.fixture(scope="module")
def leaked_surfaces(fake_upstream):
    """Runs a sidecar at debug level with the access log on, drives traffic with every kind of
    failure, and returns every text a secret could leak into, by name."""
    texts = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        credentials = tmp / "credentials"
        credentials.mkdir()
        (credentials / "upstream-key").write_text(FILE_KEY + "\n")
        path = tmp / "sidecar.conf"
        path.write_text(config_text(fake_upstream))
        env = {**os.environ, "OPENAI_API_KEY": OPENAI_KEY, "DEAD_KEY": DEAD_KEY,
               "BILLING_SIDECAR_TOKEN": BILLING_TOKEN, "WEB_SIDECAR_TOKEN": WEB_TOKEN,
               "CREDENTIALS_DIRECTORY": str(credentials)}
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        stdout, stderr = open(tmp / "stdout", "w+"), open(tmp / "stderr", "w+")
        proc = subprocess.Popen(
            [BINARY, "serve", "--config", str(path), "--listen", f"127.0.0.1:{port}", "--log-level", "debug"],
            env=env, stdout=stdout, stderr=stderr)
        try:
            wait_for(f"{url}/readyz")
            bodies = []

            def client(token=BILLING_TOKEN, **headers):
                return openai.OpenAI(base_url=f"{url}/v1", api_key=token, max_retries=0, default_headers=headers)

            def sdk(call):
                """The answer's text, whether it succeeded or failed."""
                try:
                    result = call()
                    if hasattr(result, "__iter__") and not hasattr(result, "model_dump_json"):
                        return "".join(json.dumps(c.model_dump()) for c in result)
                    return result.model_dump_json()
                except openai.APIStatusError as e:
                    return f"{e.status_code} {e.response.text}"
                except openai.APIError as e:
                    return f"{type(e).__name__} {e}"

            messages = [{"role": "user", "content": "What is 2+2?"}]
            # Successes through each keyed upstream, whole and streamed.
            for model in ("pin/gpt-4o", "pin/file-model", "llama3.2:3b"):
                bodies.append(sdk(lambda: client().chat.completions.create(model=model, messages=messages)))
                bodies.append(sdk(lambda: client().chat.completions.create(
                    model=model, messages=[{"role": "user", "content": f"stream {model}"}], stream=True)))
            bodies.append(sdk(lambda: client().embeddings.create(model="text-embedding-3-small", input="hi")))
            # Upstream failures, some quoting the key they were sent.
            for model in ("pin/gpt-4o", "pin/file-model"):
                for status in ("401", "403", "500", "400", "429"):
                    for echo in ({}, {"X-Fake-Echo-Key": "1"}):
                        bodies.append(sdk(lambda: client(**{"X-Fake-Status": status, **echo}).chat.completions.create(
                            model=model, messages=[{"role": "user", "content": f"fail {status} {model} {echo}"}])))
                bodies.append(sdk(lambda: client(**{"X-Fake-Status": "401", "X-Fake-Echo-Key": "1"}).chat.completions
                                  .create(model=model, messages=[{"role": "user", "content": "streamed failure"}],
                                          stream=True)))
            # A down upstream, with and without a fallback.
            bodies.append(sdk(lambda: client().chat.completions.create(model="pin/dead-model", messages=messages)))
            bodies.append(sdk(lambda: client().chat.completions.create(
                model="pin/dead-model", messages=messages, stream=True)))
            auth = {"Authorization": f"Bearer {BILLING_TOKEN}", "Content-Type": "application/json"}
            # Pass-through paths, failing and quoting the key.
            for path_ in ("/v1/files", "/v1/fine_tuning/jobs", "/api/generate", "/api/pull"):
                bodies.append(request(url + path_, "POST", {"model": "gpt-4o"},
                                      {**auth, "X-Fake-Status": "401", "X-Fake-Echo-Key": "1"})[2])
                bodies.append(request(url + path_, "POST", {"model": "gpt-4o"}, auth)[2])
            # Requests the sidecar refuses itself.
            bodies.append(request(f"{url}/v1/chat/completions", "POST", b'{"model": "x", "messages": [}', auth)[2])
            bodies.append(request(f"{url}/v1/chat/completions", "POST",
                                  {"model": "gpt-4o", "messages": [{"role": "user", "content": "x" * 100_000}]},
                                  auth)[2])
            bodies.append(request(f"{url}/v1/chat/completions", "POST", {"model": "gpt-4o"}, auth)[2])
            bodies.append(request(f"{url}/v1/../admin", "GET", None, auth)[2])
            bodies.append(request(f"{url}/nowhere", "GET", None, auth)[2])
            # Wrong and missing client tokens (their status depends on whether tokens are enforced).
            bodies.append(sdk(lambda: client(token="not-a-valid-token").chat.completions.create(
                model="pin/gpt-4o", messages=messages)))
            bodies.append(request(f"{url}/v1/chat/completions", "POST", {"model": "pin/gpt-4o", "messages": messages},
                                  {"Content-Type": "application/json"})[2])
            bodies.append(sdk(lambda: client(token=WEB_TOKEN).chat.completions.create(
                model="pin/gpt-4o", messages=[{"role": "user", "content": "from web"}])))
            texts["answer bodies"] = "\n".join(bodies)
            # The operator surfaces.
            for name, method, path_, body in (
                ("/metrics", "GET", "/metrics", None), ("/sidecar/stats", "GET", "/sidecar/stats", None),
                ("dashboard", "GET", "/sidecar/", None), ("/sidecar/feedback", "GET", "/sidecar/feedback", None),
                ("/v1/models", "GET", "/v1/models", None), ("/healthz", "GET", "/healthz", None),
                ("/sidecar/route", "POST", "/sidecar/route", {"model": "gpt-4o", "messages": messages}),
                ("/sidecar/route pinned", "POST", "/sidecar/route", {"model": "pin/file-model", "messages": messages}),
            ):
                status, headers, text = request(url + path_, method, body, auth)
                texts[name] = f"{status} {json.dumps(headers)} {text}"
            # Reload (SIGHUP): the key file is read again.
            proc.send_signal(1)
            time.sleep(1)
            bodies_after = sdk(lambda: client().chat.completions.create(
                model="pin/file-model", messages=[{"role": "user", "content": "after reload"}]))
            texts["answer after reload"] = bodies_after
            check = subprocess.run([BINARY, "check", "--config", str(path)], env=env, capture_output=True, text=True,
                                   timeout=60)
            texts["check stdout"], texts["check stderr"] = check.stdout, check.stderr
            time.sleep(0.5)  # the access log is written every 200 ms
        finally:
            proc.terminate()
            exited = proc.wait(timeout=15)
            stdout.seek(0)
            stderr.seek(0)
            texts["sidecar stdout"], texts["sidecar stderr"] = stdout.read(), stderr.read()
            stdout.close()
            stderr.close()
        assert exited == 0
        received = json.loads(urllib.request.urlopen(f"{fake_upstream}/_requests", timeout=5).read())
        return texts, received


def test_the_traffic_ran(leaked_surfaces):
    texts, _ = leaked_surfaces
    # The test would prove nothing if the sidecar had not logged, answered or checked.
    stderr = texts["sidecar stderr"]
    assert '"endpoint":"chat_completions"' in stderr and '"status":502' in stderr  # the access log
    assert " debug " in stderr and "upstream attempt failed" in stderr  # debug-level lines
    assert "llm_sidecar_requests_total" in texts["/metrics"]
    assert texts["/sidecar/stats"].startswith("200")
    assert texts["/sidecar/route"].startswith("200")
    assert "UPSTREAM" in texts["check stdout"]
    assert "answer from file-model" in texts["answer after reload"]
    assert "request_too_large" in texts["answer bodies"]
    assert "invalid_json" in texts["answer bodies"]
    # The fake upstream quoted the key it got; the client read it masked.
    for key in (OPENAI_KEY, FILE_KEY):
        assert "Incorrect API key provided: Bearer " + "*" * len(key) in texts["answer bodies"]


@pytest.mark.parametrize("secret", SECRETS)
def test_no_secret_appears_anywhere(leaked_surfaces, secret):
    texts, _ = leaked_surfaces
    for surface, text in texts.items():
        for form, needle in forms(secret).items():
            assert needle not in text, f"{form} of {secret[:6]}... appears in {surface}"


def test_the_upstream_gets_its_key_and_never_a_client_token(leaked_surfaces):
    _, received = leaked_surfaces
    authorizations = {r["headers"].get("Authorization") for r in received}
    assert f"Bearer {OPENAI_KEY}" in authorizations
    assert f"Bearer {FILE_KEY}" in authorizations
    for r in received:
        flat = json.dumps(r)
        for token in CLIENT_TOKENS:
            assert token not in flat, f"the upstream received a client token at {r['path']}"
