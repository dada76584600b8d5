"""SIGHUP reloads the configuration: a stream in flight finishes on the old one, the next
request follows the new one, and a broken file leaves the running configuration serving."""
import pathlib
import signal
import subprocess
import tempfile
import threading
import time
import uuid

import openai

from conftest import repo_config, start_sidecar

EASY = "hi, how are you?"


def test_sighup_swaps_the_tiers_without_cutting_a_stream(fake_upstream):
    config = repo_config(fake_upstream)
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "sidecar.conf"
        path.write_text(config)
        proc, url = start_sidecar(path, stderr=subprocess.PIPE, text=True)
        try:
            client = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-client", max_retries=0,
                                   default_headers={"X-Sidecar-Cache-Namespace": str(uuid.uuid4())})
            assert client.chat.completions.with_raw_response.create(
                model="gpt-4o", messages=[{"role": "user", "content": EASY}]).headers["X-Model-Used"] == "llama3.2:3b"

            # A slow stream (4 words, 0.5 s apart) starts on the old configuration.
            streamed = {}

            def stream():
                raw = client.chat.completions.with_raw_response.create(
                    model="gpt-4o", messages=[{"role": "user", "content": "stream me " + EASY}], stream=True,
                    extra_headers={"X-Fake-Chunk-Delay": "0.5"})
                streamed["model"] = raw.headers["X-Model-Used"]
                streamed["text"] = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)

            thread = threading.Thread(target=stream)
            thread.start()
            time.sleep(0.6)
            path.write_text(config.replace('{ max_score = 0.40, model = "llama3.2:3b" }',
                                           '{ max_score = 0.40, model = "gpt-4o" }'))
            proc.send_signal(signal.SIGHUP)

            def model_now():
                return client.chat.completions.with_raw_response.create(
                    model="gpt-4o", messages=[{"role": "user", "content": f"{EASY} {uuid.uuid4()}"}]
                ).headers["X-Model-Used"]

            deadline = time.time() + 10
            while model_now() != "gpt-4o":
                assert time.time() < deadline, "the reload did not take effect"
                time.sleep(0.1)
            assert thread.is_alive(), "the stream should still be running across the reload"
            thread.join(timeout=20)
            assert streamed == {"model": "llama3.2:3b", "text": "streamed answer from llama3.2:3b "}

            # A broken file: the running configuration stays, and the sidecar says why.
            path.write_text("this is = not [valid toml")
            proc.send_signal(signal.SIGHUP)
            time.sleep(1)
            assert proc.poll() is None
            assert model_now() == "gpt-4o"
        finally:
            proc.send_signal(signal.SIGTERM)
            _, stderr = proc.communicate(timeout=15)
        assert proc.returncode == 0
        assert "configuration not reloaded; the running one stays" in stderr
