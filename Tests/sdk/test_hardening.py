"""Hardening, through the real binary: client tokens (401 in OpenAI's shape, the token never
forwarded), the refusal to listen beyond loopback without tokens, header limits (431), slow
clients (408) and idle connections, per-app rate limits (429 with Retry-After) and overload
(a bounded queue, then 503) while health checks and admitted requests keep being answered."""
import concurrent.futures
import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid

import openai
import pytest

from conftest import BINARY, free_port, repo_config, running_sidecar

BILLING = "sk-billing-" + "b" * 24
WEB = "sk-web-" + "w" * 24
TOKENS = {"BILLING_TOKEN": BILLING, "WEB_TOKEN": WEB}
CLIENTS = ('\n[[clients]]\napp = "billing"\ntoken_env = "BILLING_TOKEN"\n'
           '\n[[clients]]\napp = "web"\ntoken_env = "WEB_TOKEN"\n')


def with_limits(config, **limits):
    """`config` with the given [limits] keys replaced."""
    for key, value in limits.items():
        lines = config.split("\n")
        for i, line in enumerate(lines):
            if line.startswith(f"{key} = "):
                lines[i] = f"{key} = {value}"
                break
        else:
            raise AssertionError(f"no {key} in the config")
        config = "\n".join(lines)
    return config


def post(url, body, headers=None, timeout=30):
    """(status, headers, parsed body) of a POST, whatever the status."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read())


def get(url, headers=None, timeout=10):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def chat(prompt=None):
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": prompt or f"question {uuid.uuid4()}"}]}


def raw_exchange(url, data, wait=5.0):
    """Sends raw bytes on a new connection; returns everything the sidecar wrote until it closed
    the connection (or `wait` seconds passed)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait) as s:
        s.sendall(data)
        received = b""
        deadline = time.time() + wait
        while time.time() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:  # closed with our bytes unread
                break
            if not chunk:
                break
            received += chunk
        return received


def status_of(raw):
    return int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/1.1 ") else None


def error_of(raw):
    return json.loads(raw.split(b"\r\n\r\n", 1)[1])["error"]


def test_client_tokens_are_required_compared_and_never_forwarded(fake_upstream):
    config = repo_config(fake_upstream) + CLIENTS
    with running_sidecar(config, env=TOKENS) as (url, _):
        def sdk(api_key, **headers):
            return openai.OpenAI(base_url=f"{url}/v1", api_key=api_key, max_retries=0,
                                 default_headers={"Cache-Control": "no-cache", "X-Sidecar-Tier": "1", **headers})

        # The right token: answered, attributed to its app (a header cannot claim another one).
        raw = sdk(BILLING, **{"X-Sidecar-App": "web"}).chat.completions.with_raw_response.create(**chat())
        assert raw.status_code == 200 and raw.headers["X-Sidecar-App"] == "billing"
        assert sdk(WEB).chat.completions.with_raw_response.create(**chat()).headers["X-Sidecar-App"] == "web"

        # A wrong token, a token of the right length, a prefix, and none: 401 in OpenAI's shape.
        for wrong in ["sk-nope", BILLING[:-1] + "x", BILLING[:12], BILLING + "x", WEB.upper()]:
            with pytest.raises(openai.AuthenticationError) as caught:
                sdk(wrong).chat.completions.create(**chat())
            error = caught.value.response.json()["error"]
            assert error["code"] == "invalid_api_key" and error["type"] == "invalid_request_error", wrong
            assert wrong not in caught.value.response.text
            assert caught.value.response.headers["WWW-Authenticate"].startswith("Bearer")
        status, headers, body = post(f"{url}/v1/chat/completions", chat())
        assert status == 401 and body["error"]["code"] == "missing_api_key"
        status, _, body = post(f"{url}/v1/chat/completions", chat(), {"Authorization": f"Basic {BILLING}"})
        assert status == 401

        # Health checks are public; everything else needs a token.
        assert get(f"{url}/healthz")[0] == 200 and get(f"{url}/readyz")[0] == 200
        for path in ["/metrics", "/sidecar/stats", "/sidecar/", "/v1/models", "/api/tags"]:
            assert get(f"{url}{path}")[0] == 401, path
        assert get(f"{url}/metrics", {"Authorization": f"Bearer {WEB}"})[0] == 200
        status, _, _ = post(f"{url}/sidecar/route", chat(), {"Authorization": f"Bearer {WEB}"})
        assert status == 200

        # Upstreams got their own key, never a client's token.
        requests = json.loads(urllib.request.urlopen(f"{fake_upstream}/_requests").read())
        seen = json.dumps(requests)
        assert BILLING not in seen and WEB not in seen
        assert any(r["headers"].get("Authorization") == "Bearer sk-test-upstream" for r in requests)


def test_listening_beyond_loopback_needs_client_tokens(fake_upstream):
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "sidecar.conf"
        path.write_text(repo_config(fake_upstream))
        # Refused before it binds: no port is opened.
        run = subprocess.run([BINARY, "serve", "--config", str(path), "--listen", f"0.0.0.0:{free_port()}"],
                             capture_output=True, text=True, timeout=30)
        assert run.returncode == 2
        assert "beyond loopback" in run.stderr and "[[clients]]" in run.stderr and "0.0.0.0" in run.stderr
        # A client whose token variable is unset is refused too, naming the variable.
        path.write_text(repo_config(fake_upstream) + CLIENTS)
        env = {k: v for k, v in os.environ.items() if k not in TOKENS}
        run = subprocess.run([BINARY, "serve", "--config", str(path), "--listen", f"127.0.0.1:{free_port()}"],
                             capture_output=True, text=True, timeout=30, env={**env, "BILLING_TOKEN": BILLING})
        assert run.returncode == 2 and "WEB_TOKEN" in run.stderr
        assert BILLING not in run.stderr
        run = subprocess.run([BINARY, "check", "--config", str(path)], capture_output=True, text=True,
                             timeout=60, env={**env, "BILLING_TOKEN": BILLING})
        assert run.returncode == 2 and "WEB_TOKEN" in run.stderr


def test_header_limits_slow_clients_and_idle_connections(fake_upstream):
    config = with_limits(repo_config(fake_upstream), request_read_ms=600, idle_connection_ms=1500,
                         max_headers=20, max_field_bytes=4096, max_header_bytes=16384)
    with running_sidecar(config) as (url, _):
        head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
        # One header field, the target, all headers together, or too many fields: 431.
        for extra in [b"X-Big: " + b"a" * 5000 + b"\r\n",
                      b"".join(b"X-F%d: %s\r\n" % (i, b"b" * 3000) for i in range(6)),
                      b"".join(b"X-N%d: v\r\n" % i for i in range(25))]:
            raw = raw_exchange(url, head + extra + b"\r\n")
            assert status_of(raw) == 431, raw[:200]
            assert error_of(raw)["code"] == "request_headers_too_large"
        raw = raw_exchange(url, b"GET /healthz?" + b"q" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status_of(raw) == 431
        # Within the limits: answered.
        assert status_of(raw_exchange(url, head + b"Connection: close\r\n\r\n")) == 200

        # A head that never ends, and a body that never comes: 408 at request_read_ms, then closed.
        for partial in [b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-",
                        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"mo"]:
            started = time.time()
            raw = raw_exchange(url, partial, wait=10)
            assert status_of(raw) == 408, raw[:200]
            assert error_of(raw)["code"] == "request_timeout"
            assert time.time() - started < 8
        # A connection that sends nothing is closed after idle_connection_ms (no answer).
        started = time.time()
        assert raw_exchange(url, b"", wait=10) == b""
        assert time.time() - started < 8
        # A kept-alive connection answers, then idles out the same way.
        raw = raw_exchange(url, head + b"\r\n", wait=10)
        assert status_of(raw) == 200 and raw.count(b"HTTP/1.1 ") == 1


def test_connections_beyond_max_connections_are_closed_as_they_come(fake_upstream):
    config = with_limits(repo_config(fake_upstream), max_connections=3)
    with running_sidecar(config) as (url, _):
        host, port = url.removeprefix("http://").split(":")
        # Three connections, each answered once (so each is counted). The readiness probe's own
        # connection is counted until the sidecar has finished closing it, a moment after its
        # answer: a connection refused in that moment is opened again.
        held, deadline = [], time.time() + 5
        while len(held) < 3:
            s = socket.create_connection((host, int(port)), timeout=5)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            if s.recv(65536).startswith(b"HTTP/1.1 200"):
                held.append(s)
            else:
                s.close()
                assert time.time() < deadline, "a connection under max_connections was refused for 5 s"
                time.sleep(0.05)
        try:
            # A fourth is closed without an answer; the held ones still work.
            assert raw_exchange(url, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", wait=5) == b""
            held[0].sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert held[0].recv(65536).startswith(b"HTTP/1.1 200")
        finally:
            for s in held:
                s.close()
        # Once they are gone, new connections are served again.
        time.sleep(0.3)
        assert get(f"{url}/healthz")[0] == 200


def test_per_app_request_and_token_rates(fake_upstream):
    config = repo_config(fake_upstream) + CLIENTS
    config = config.replace(
        '# apps = [ { app = "billing", requests_per_minute = 600, tokens_per_minute = 200000 } ]',
        'apps = [ { app = "billing", requests_per_minute = 3 }, { app = "web", tokens_per_minute = 60 } ]')
    with running_sidecar(config, env=TOKENS) as (url, _):
        def ask(token):
            return post(f"{url}/v1/chat/completions", chat(),
                        {"Authorization": f"Bearer {token}", "Cache-Control": "no-cache", "X-Sidecar-Tier": "1"})

        statuses = [ask(BILLING) for _ in range(4)]
        assert [s for s, _, _ in statuses] == [200, 200, 200, 429]
        _, headers, body = statuses[3]
        assert body["error"]["code"] == "rate_limit_exceeded" and body["error"]["type"] == "requests"
        assert '"billing"' in body["error"]["message"]
        assert 1 <= int(headers["Retry-After"]) <= 20  # one request comes back every 20 s
        # web has no request rate; its token rate (60 a minute) is spent within a few requests:
        # each costs its estimate on arrival (body bytes / 4), then its usage (11 + 7 tokens).
        results = [ask(WEB) for _ in range(8)]
        codes = [s for s, _, _ in results]
        assert codes[0] == 200 and 429 in codes
        limited = results[codes.index(429)]
        assert limited[2]["error"]["type"] == "tokens" and int(limited[1]["Retry-After"]) >= 1
        # Health checks are never rate limited.
        assert all(get(f"{url}/healthz")[0] == 200 for _ in range(20))


def test_overload_is_shed_while_health_checks_and_admitted_requests_are_answered(fake_upstream):
    config = with_limits(repo_config(fake_upstream), max_in_flight=2, max_queued=2, queue_timeout_ms=8000)
    delay = 1.0
    with running_sidecar(config) as (url, _):
        def ask(_):
            started = time.time()
            status, headers, body = post(f"{url}/v1/chat/completions", chat(),
                                         {"Cache-Control": "no-cache", "X-Fake-Delay": str(delay)})
            return status, headers, body, time.time() - started

        # Ten times what the limits allow (2 in flight + 2 queued), at once.
        with concurrent.futures.ThreadPoolExecutor(max_workers=40) as pool:
            load = [pool.submit(ask, i) for i in range(40)]
            health = []
            while not all(f.done() for f in load):
                started = time.time()
                status, _, _ = get(f"{url}/healthz")
                health.append((status, time.time() - started))
                time.sleep(0.05)
            results = [f.result() for f in load]
        answered = [r for r in results if r[0] == 200]
        shed = [r for r in results if r[0] == 503]
        # Nothing lost: every request was answered or refused with a reason to retry.
        assert len(answered) + len(shed) == 40
        assert len(answered) >= 4
        for _, headers, body, _ in shed:
            assert body["error"]["code"] == "sidecar_overloaded" and int(headers["Retry-After"]) >= 1
        # Refusals are immediate; admitted requests take the upstream's time (queued ones, twice).
        assert max(r[3] for r in shed) < delay
        assert sorted(r[3] for r in answered)[1] < 2 * delay
        # Health checks kept answering throughout, quickly.
        assert health and all(status == 200 for status, _ in health)
        assert max(seconds for _, seconds in health) < 0.5

        # Clients that give up while queued leave no slot taken: after the load, requests are
        # admitted again at once.
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            held = [pool.submit(ask, i) for i in range(2)]
            time.sleep(0.3)
            host, port = url.removeprefix("http://").split(":")
            body = json.dumps(chat()).encode()
            for _ in range(2):
                with socket.create_connection((host, int(port))) as s:
                    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                              b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
                    time.sleep(0.1)
            assert all(f.result()[0] == 200 for f in held)
        after = [post(f"{url}/v1/chat/completions", chat(), {"Cache-Control": "no-cache"}, timeout=5)
                 for _ in range(3)]
        assert [s for s, _, _ in after] == [200, 200, 200]
        # The two raw requests were admitted when the held ones ended, alongside `after`: they
        # may still be finishing. Every slot comes back within moments (a leak would not).
        deadline = time.time() + 5
        while True:
            metrics = get(f"{url}/metrics")[2].decode()
            if re.search(r"^llm_sidecar_requests_in_flight 0(\.0)?$", metrics, re.M) or time.time() > deadline:
                break
            time.sleep(0.05)
        assert re.search(r"^llm_sidecar_requests_in_flight 0(\.0)?$", metrics, re.M), metrics[-2000:]
        assert re.search(r"^llm_sidecar_requests_queued 0(\.0)?$", metrics, re.M)
        assert re.search(r'^llm_sidecar_errors_total\{code="sidecar_overloaded",status="503"\} 3[0-9]', metrics, re.M)


def test_a_unix_socket_listener_has_no_tcp_port_and_its_permissions(fake_upstream):
    with tempfile.TemporaryDirectory() as tmp:
        sock = pathlib.Path(tmp) / "sidecar.sock"
        config = repo_config(fake_upstream).replace('listen = "127.0.0.1:8088"', f'listen = "unix:{sock}"')
        config = config.replace('socket_mode = "0660"', 'socket_mode = "0600"')
        path = pathlib.Path(tmp) / "sidecar.conf"
        path.write_text(config)
        proc = subprocess.Popen([BINARY, "serve", "--config", str(path), "--log-level", "warning"],
                                env={**os.environ, "OPENAI_API_KEY": "sk-test-upstream"})
        try:
            deadline = time.time() + 20
            while not sock.exists() and time.time() < deadline:
                time.sleep(0.05)
            time.sleep(0.2)
            assert sock.is_socket() and (sock.stat().st_mode & 0o777) == 0o600

            def exchange(data):
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.settimeout(10)
                    s.connect(str(sock))
                    s.sendall(data)
                    received = b""
                    while chunk := s.recv(65536):
                        received += chunk
                    return received

            assert status_of(exchange(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")) == 200
            body = json.dumps({**chat(), "model": "pin/gpt-4o"}).encode()
            raw = exchange(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                           b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            assert status_of(raw) == 200 and b"X-Model-Used: gpt-4o" in raw
            # No TCP listener: nothing of this process listens on a TCP port.
            if shutil.which("ss"):
                listening = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True).stdout
                assert f"pid={proc.pid}," not in listening
        finally:
            proc.terminate()
            assert proc.wait(timeout=15) == 0


def test_ollama_model_management_is_refused_unless_enabled(fake_upstream):
    with running_sidecar(repo_config(fake_upstream)) as (url, _):
        for path in ["/api/pull", "/api/push", "/api/create", "/api/copy", "/api/delete", "/api/blobs/sha256:00"]:
            status, _, body = post(f"{url}{path}", {"model": "http://198.51.100.7/library/evil:latest"})
            assert status == 403 and body["error"]["code"] == "ollama_admin_disabled", path
            assert body["error"]["type"] == "permission_error"
        seen = json.loads(urllib.request.urlopen(f"{fake_upstream}/_requests").read())
        assert not any(r["path"].startswith("/api/") and "evil" in json.dumps(r["body"]) for r in seen)
    config = repo_config(fake_upstream).replace("ollama_admin = false", "ollama_admin = true")
    with running_sidecar(config) as (url, _):
        status, _, _ = post(f"{url}/api/pull", {"model": "llama3.2:3b"})
        assert status != 403  # forwarded (the fake upstream has no /api/pull: its 404)


def test_a_second_sidecar_on_the_same_unix_socket_is_refused(fake_upstream):
    """Binding a Unix socket removes the file at its path: a second sidecar took the path from a
    running one, which went on running unreachable. It is refused, as on a TCP port in use."""
    with tempfile.TemporaryDirectory() as tmp:
        sock = pathlib.Path(tmp) / "sidecar.sock"
        path = pathlib.Path(tmp) / "sidecar.conf"
        path.write_text(repo_config(fake_upstream).replace('listen = "127.0.0.1:8088"', f'listen = "unix:{sock}"'))
        env = {**os.environ, "OPENAI_API_KEY": "sk-test-upstream"}
        command = [BINARY, "serve", "--config", str(path), "--log-level", "warning"]

        def healthz():
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(10)
                s.connect(str(sock))
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return s.recv(64)

        first = subprocess.Popen(command, env=env)
        try:
            deadline = time.time() + 20
            while time.time() < deadline:
                try:
                    if healthz().startswith(b"HTTP/1.1 200"):
                        break
                except OSError:
                    time.sleep(0.05)
            second = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
            try:
                code = second.wait(timeout=15)
            except subprocess.TimeoutExpired:
                second.kill()
                second.wait()
                pytest.fail("a second sidecar started on the socket path a running one listens on")
            assert code != 0 and "another process listens on" in second.stderr.read()
            assert healthz().startswith(b"HTTP/1.1 200"), "the first sidecar no longer answers on its socket"
        finally:
            first.terminate()
            assert first.wait(timeout=15) == 0
