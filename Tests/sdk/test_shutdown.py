"""SIGTERM drains: a stream in flight finishes, then the sidecar exits 0."""
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.request
import pathlib

from conftest import BINARY, free_port, wait_for


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
