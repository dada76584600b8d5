#!/usr/bin/env python3
"""A fake OpenAI-compatible upstream for the SDK end-to-end tests (standard library only).

It answers /v1/chat/completions (JSON and SSE), /v1/completions, /v1/embeddings and /v1/models
with deterministic bodies that carry `usage`, and records every request it receives so tests
can read what the sidecar forwarded (GET /_requests). Streams are framed the way real servers (OpenAI, llama.cpp's server) frame them: a role-only
first chunk, the content chunks, a chunk with an empty delta and the finish_reason, the usage chunk
when asked for, then `[DONE]`; `text/event-stream; charset=utf-8`; `logprobs: null` in choices.
Behaviour switches, by request header:
  X-Fake-Status: N        answer with status N and an OpenAI-shaped error body
  X-Fake-Chunk-Delay: S   seconds between SSE chunks
  X-Fake-Usage: none      never report usage (llama.cpp's server ignores stream_options.include_usage)
  X-Fake-Echo-Key: 1      with X-Fake-Status, quote the request's Authorization in the error message,
                          as some servers do ("Incorrect API key provided: ...")
  X-Fake-Cut-After-Role: T  the first streamed request carrying token T gets the role-only first
                          chunk, then the connection is dropped (a server that fails right after
                          opening its answer); later requests with T are answered in full
Usage: fake_upstream.py PORT_FILE   (binds 127.0.0.1:0 and writes the port to PORT_FILE)
"""
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REQUESTS = []
CUT_TOKENS = set()
LOCK = threading.Lock()
PROMPT_TOKENS = 11
COMPLETION_TOKENS = 7


def chat_body(model):
    return {
        "id": "chatcmpl-fake", "object": "chat.completion", "created": 1700000000, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": f"answer from {model}"},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
                  "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS},
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _json(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/_requests":
            with LOCK:
                return self._json(200, REQUESTS)
        if self.path == "/v1/models":
            return self._json(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
        self._json(404, {"error": {"message": "not found", "type": "invalid_request_error", "code": None}})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        with LOCK:
            REQUESTS.append({"path": self.path, "headers": dict(self.headers.items()), "body": body})
        delay = float(self.headers.get("X-Fake-Delay", "0"))
        if delay:
            time.sleep(delay)
        status = self.headers.get("X-Fake-Status")
        if status:
            message = f"fake failure {status}"
            if self.headers.get("X-Fake-Echo-Key"):
                message += f": Incorrect API key provided: {self.headers.get('Authorization', '')}"
            return self._json(int(status), {"error": {"message": message, "type": "server_error", "code": None}})
        model = (body or {}).get("model", "unknown")
        no_usage = self.headers.get("X-Fake-Usage") == "none"
        if self.path == "/v1/chat/completions":
            if body.get("stream"):
                token = self.headers.get("X-Fake-Cut-After-Role")
                with LOCK:
                    cut = token is not None and token not in CUT_TOKENS
                    CUT_TOKENS.add(token)
                return self._stream(model, body, float(self.headers.get("X-Fake-Chunk-Delay", "0")), no_usage, cut)
            answer = chat_body(model)
            if no_usage:
                del answer["usage"]
            return self._json(200, answer)
        if self.path == "/v1/completions":
            return self._json(200, {
                "id": "cmpl-fake", "object": "text_completion", "created": 1700000000, "model": model,
                "choices": [{"index": 0, "text": f"completion from {model}", "finish_reason": "stop"}],
                "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
                          "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS}})
        if self.path == "/v1/embeddings":
            inputs = body.get("input")
            inputs = inputs if isinstance(inputs, list) else [inputs]
            return self._json(200, {
                "object": "list", "model": model,
                "data": [{"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]} for i in range(len(inputs))],
                "usage": {"prompt_tokens": 5 * len(inputs), "total_tokens": 5 * len(inputs)}})
        self._json(404, {"error": {"message": "not found", "type": "invalid_request_error", "code": None}})

    def _stream(self, model, body, delay, no_usage=False, cut_after_role=False):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def send(obj):
            data = obj if isinstance(obj, bytes) else f"data: {json.dumps(obj)}\n\n".encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def chunk(delta, finish=None):
            send({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1700000000, "model": model,
                  "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]})

        chunk({"role": "assistant"})
        if cut_after_role:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        words = ["streamed", "answer", "from", model]
        for i, word in enumerate(words):
            chunk({"content": word + " "})
            if delay:
                time.sleep(delay)
        chunk({}, finish="stop")
        if (body.get("stream_options") or {}).get("include_usage") and not no_usage:
            send({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1700000000, "model": model,
                  "choices": [], "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
                                           "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS}})
        send(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with open(sys.argv[1], "w") as f:
        f.write(str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()
