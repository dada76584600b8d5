"""SIGTERM drains: a stream in flight finishes, then the sidecar exits 0; and a client that
connects while the sidecar starts is answered."""
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
import pathlib

import pytest

from conftest import BINARY, free_port, repo_config, wait_for


def test_sigterm_drains_an_in_flight_stream_then_exits_zero(fake_upstream):
    config = (
        f'[[upstreams]]\nname = "local"\nbase_url = "{fake_upstream}/v1"\n'
        '[[models]]\nname = "m"\nupstream = "local"\n'
        '[routing]\ntiers = [ { max_score = 1.01, model = "m" } ]\n'
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "sidecar.conf"
        path.write_text(config)
        port = free_port()
        proc = subprocess.Popen([BINARY, "serve", "--config", str(path), "--listen", f"127.0.0.1:{port}",
                                 "--log-level", "warning"])
        try:
            wait_for(f"http://127.0.0.1:{port}/readyz")
            body = json.dumps({"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/chat/completions", data=body.encode(),
                headers={"Content-Type": "application/json", "X-Fake-Chunk-Delay": "0.3"})
            with urllib.request.urlopen(request, timeout=10) as response:
                first = response.readline()
                assert first.startswith(b"data: ")
                proc.send_signal(signal.SIGTERM)
                rest = response.read().decode()
            assert rest.rstrip().endswith("data: [DONE]")
            assert rest.count("data: ") == 6  # the four content chunks, the finish chunk and [DONE]
            assert proc.wait(timeout=15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()


def test_clients_connecting_while_it_starts_are_answered(fake_upstream):
    """A client that connects the moment the port opens (a restart, with clients retrying) is
    answered. The check that the port is not another sidecar's once listened for an instant and
    left such a connection open and unanswered: it hung in 20 starts of 20."""
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "sidecar.conf"
        path.write_text(repo_config(fake_upstream))
        for start in range(5):
            port = free_port()
            proc = subprocess.Popen(
                [BINARY, "serve", "--config", str(path), "--listen", f"127.0.0.1:{port}", "--log-level", "warning"],
                env={**os.environ, "OPENAI_API_KEY": "sk-test-upstream"})
            try:
                answer = None
                deadline = time.time() + 30
                while answer is None and time.time() < deadline:
                    with socket.socket() as client:
                        client.settimeout(5)
                        try:
                            client.connect(("127.0.0.1", port))
                        except OSError:
                            continue  # refused: nothing listens yet
                        client.sendall(b"GET /healthz HTTP/1.1\r\nHost: sidecar\r\nConnection: close\r\n\r\n")
                        try:
                            answer = client.recv(64)
                        except socket.timeout:
                            pytest.fail(f"start {start}: a connection made while it started was never answered")
                assert answer and answer.startswith(b"HTTP/1.1 200"), f"start {start}: {answer!r}"
            finally:
                proc.terminate()
                assert proc.wait(timeout=15) == 0
