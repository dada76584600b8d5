#!/usr/bin/env python3
"""A fast, fault-injecting fake OpenAI upstream (Python standard library only).

A minimal HTTP/1.1 keep-alive server on asyncio streams. It serves

  POST /v1/chat/completions   JSON with usage, or SSE: 5 content chunks ~20 ms apart, a finish
                              chunk, a usage chunk when stream_options.include_usage, data: [DONE]
  GET  /v1/models             a model list

and decides per request, from its current mode, whether to answer well or inject a fault:

  healthy    every request answered well
  mixed      each request independently: 50% healthy, 50% one fault drawn uniformly from
             500, 502, 503, 429 (Retry-After: 1), close (connection closed without an answer),
             hang (accepted, never answered), slow (SSE chunks 2 s apart / JSON after 3 s),
             cut (SSE: disconnect after 2 chunks; JSON: disconnect halfway through the body)
  error500   every request answered 500
  down       the data port stops listening (connects are refused) and open connections are
             dropped; it is reopened on the same port when the mode changes
  fault:X    every request gets fault X (one of the faults above), for targeted checks

Control plane (on its own port, so it keeps working while the data port is down; the data port
serves the same paths while it is up):

  POST /_mode   {"mode": "mixed"}          switch mode now (answers {"mode","t"})
  GET  /_stats                             JSON: every request with its monotonic timestamp
                                           (time.monotonic(), CLOCK_MONOTONIC, comparable across
                                           processes on the host), mode, fault, stream flag and
                                           X-Request-Id; mode changes; counts
  GET  /_health                            {"ok": true}

A request body may carry "chaos": {"chunk_delay_ms": N, "chunks": K} to make a healthy stream
slower or longer (used by the SIGTERM drain test); faults still override it.

Usage:
  fault_upstream.py [--host 127.0.0.1] [--port 0] [--control-port 0] [--name NAME]
                    [--mode healthy] [--schedule healthy:5,mixed:20,down:5,healthy:0]
                    [--seed N] [--summary]

On start it prints one line: `LISTENING name=NAME port=P control=C pid=PID` (flushed).
SIGTERM/SIGINT stop it; --summary prints per-mode/fault counts to stderr at exit.
"""
import argparse
import asyncio
import json
import os
import random
import signal
import sys
import time

MODES = ("healthy", "mixed", "error500", "down")
FAULTS = ("500", "502", "503", "429", "close", "hang", "slow", "cut")
HANG_LIMIT_S = 120.0  # a hung request is released after this long (or when the client leaves)

ERROR_TEXT = {
    500: ("Internal Server Error", "server_error", "The server had an error while processing your request."),
    502: ("Bad Gateway", "server_error", "Bad gateway."),
    503: ("Service Unavailable", "server_error", "The engine is currently overloaded, please try again later."),
    429: ("Too Many Requests", "rate_limit_error", "Rate limit reached for requests."),
    404: ("Not Found", "invalid_request_error", "Unknown path."),
    400: ("Bad Request", "invalid_request_error", "We could not parse the JSON body of your request."),
}


def valid_mode(mode):
    return mode in MODES or (mode.startswith("fault:") and mode[6:] in FAULTS)


class BadRequest(Exception):
    pass


async def read_request(reader):
    """One HTTP/1.1 request: (method, path, headers(lowercase), body) or None at a clean EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if not e.partial:
            return None
        raise BadRequest("truncated head")
    except asyncio.LimitOverrunError:
        raise BadRequest("head too large")
    lines = head.decode("latin-1").split("\r\n")
    try:
        method, target, _version = lines[0].split(" ", 2)
    except ValueError:
        raise BadRequest("bad request line")
    headers = {}
    for line in lines[1:]:
        if not line:
            continue
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    body = b""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                # trailers until an empty line
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        body = b"".join(parts)
    elif "content-length" in headers:
        n = int(headers["content-length"])
        body = await reader.readexactly(n) if n else b""
    return method, target, headers, body


def response_head(status, reason, headers):
    out = ["HTTP/1.1 %d %s" % (status, reason)]
    for k, v in headers:
        out.append("%s: %s" % (k, v))
    return ("\r\n".join(out) + "\r\n\r\n").encode("latin-1")


def json_response(status, obj, extra=(), close=False):
    body = json.dumps(obj, separators=(",", ":")).encode()
    reason = ERROR_TEXT.get(status, ("OK",))[0] if status != 200 else "OK"
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    headers.extend(extra)
    if close:
        headers.append(("Connection", "close"))
    return response_head(status, reason, headers) + body


def error_response(status, extra=()):
    _reason, typ, msg = ERROR_TEXT[status]
    return json_response(status, {"error": {"message": msg, "type": typ, "param": None, "code": str(status)}}, extra)


def chunk(data):
    return b"%x\r\n%s\r\n" % (len(data), data)


def sse(obj):
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


class FaultUpstream:
    def __init__(self, name, host, port, control_port, mode, seed):
        self.name = name
        self.host = host
        self.port = port
        self.control_port = control_port
        self.mode = mode
        self.rng = random.Random(seed)
        self.server = None
        self.control = None
        self.conns = set()  # (writer, task) of the data port's open connections
        self.requests = []  # [t, mode, fault, stream, request_id, model]
        self.mode_changes = [[time.monotonic(), mode]]
        self.connections_total = 0
        self.seq = 0
        self.schedule_task = None

    # ---- lifecycle -------------------------------------------------------------------------
    async def start(self):
        self.control = await asyncio.start_server(self.handle_control, self.host, self.control_port,
                                                  reuse_address=True, backlog=512)
        self.control_port = self.control.sockets[0].getsockname()[1]
        if self.mode != "down":
            await self.open_data()
        elif self.port == 0:
            raise SystemExit("--mode down needs a fixed --port")

    async def open_data(self):
        last = None
        for _ in range(50):  # the port was ours a moment ago; retry briefly if the kernel lags
            try:
                self.server = await asyncio.start_server(self.handle_data, self.host, self.port,
                                                         reuse_address=True, backlog=1024)
                self.port = self.server.sockets[0].getsockname()[1]
                return
            except OSError as e:
                last = e
                await asyncio.sleep(0.02)
        raise last

    async def close_data(self):
        if self.server is not None:
            self.server.close()
            self.server = None
        for writer, task in list(self.conns):
            try:
                writer.transport.abort()
            except Exception:
                pass
            task.cancel()
        self.conns.clear()

    async def set_mode(self, mode):
        if not valid_mode(mode):
            raise ValueError("unknown mode %r" % mode)
        old = self.mode
        self.mode = mode
        t = time.monotonic()
        self.mode_changes.append([t, mode])
        if mode == "down" and old != "down":
            await self.close_data()
        elif old == "down" and mode != "down":
            await self.open_data()
        return t

    async def run_schedule(self, phases):
        for mode, secs in phases:
            await self.set_mode(mode)
            if secs > 0:
                await asyncio.sleep(secs)

    # ---- stats -----------------------------------------------------------------------------
    def counts(self):
        by = {}
        for _t, mode, fault, stream, _rid, _model in self.requests:
            key = "%s/%s" % (mode, fault)
            by[key] = by.get(key, 0) + 1
        return by

    def stats(self):
        return {
            "name": self.name, "port": self.port, "control_port": self.control_port,
            "mode": self.mode, "now": time.monotonic(), "connections_total": self.connections_total,
            "requests_total": len(self.requests), "counts": self.counts(),
            "mode_changes": self.mode_changes,
            "request_fields": ["t", "mode", "fault", "stream", "request_id", "model"],
            "requests": self.requests,
        }

    def summary(self):
        lines = ["fault_upstream %s: %d requests, %d connections" % (self.name, len(self.requests),
                                                                     self.connections_total)]
        for k, v in sorted(self.counts().items()):
            lines.append("  %-22s %d" % (k, v))
        return "\n".join(lines)

    # ---- control plane ---------------------------------------------------------------------
    async def control_request(self, method, path, body):
        path = path.split("?", 1)[0]
        if method == "GET" and path == "/_stats":
            return json_response(200, self.stats())
        if method == "GET" and path == "/_health":
            return json_response(200, {"ok": True, "mode": self.mode})
        if method == "POST" and path == "/_mode":
            try:
                mode = json.loads(body or b"{}")["mode"]
                t = await self.set_mode(mode)
            except (ValueError, KeyError, TypeError) as e:
                return json_response(400, {"error": {"message": str(e), "type": "invalid_request_error",
                                                     "code": "bad_mode"}})
            return json_response(200, {"mode": mode, "t": t})
        return None

    async def handle_control(self, reader, writer):
        try:
            while True:
                req = await read_request(reader)
                if req is None:
                    break
                method, path, headers, body = req
                out = await self.control_request(method, path, body)
                if out is None:
                    out = error_response(404)
                writer.write(out)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (BadRequest, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    # ---- data plane ------------------------------------------------------------------------
    async def handle_data(self, reader, writer):
        self.connections_total += 1
        entry = (writer, asyncio.current_task())
        self.conns.add(entry)
        try:
            while True:
                req = await read_request(reader)
                if req is None:
                    break
                keep = await self.serve(reader, writer, *req)
                if not keep:
                    break
        except (BadRequest, ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self.conns.discard(entry)
            try:
                writer.close()
            except Exception:
                pass

    def pick_fault(self):
        if self.mode == "healthy":
            return "ok"
        if self.mode == "error500":
            return "500"
        if self.mode == "mixed":
            if self.rng.random() < 0.5:
                return "ok"
            return self.rng.choice(FAULTS)
        if self.mode.startswith("fault:"):
            return self.mode[6:]
        return "ok"

    async def serve(self, reader, writer, method, target, headers, body):
        """Answers one request; False closes the connection."""
        path = target.split("?", 1)[0]
        close_after = headers.get("connection", "").lower() == "close"
        if path.startswith("/_"):
            out = await self.control_request(method, path, body)
            writer.write(out if out is not None else error_response(404))
            await writer.drain()
            return not close_after
        if method == "GET" and path.endswith("/models"):
            writer.write(json_response(200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": 1700000000, "owned_by": self.name}
                for m in ("small-local", "big-cloud")]}))
            await writer.drain()
            return not close_after
        if not (method == "POST" and path.endswith("/chat/completions")):
            writer.write(error_response(404))
            await writer.drain()
            return not close_after
        try:
            payload = json.loads(body or b"{}")
            if not isinstance(payload, dict):
                raise ValueError
        except ValueError:
            writer.write(error_response(400))
            await writer.drain()
            return not close_after
        stream = bool(payload.get("stream"))
        include_usage = bool((payload.get("stream_options") or {}).get("include_usage"))
        model = str(payload.get("model", ""))
        chaos = payload.get("chaos") if isinstance(payload.get("chaos"), dict) else {}
        fault = self.pick_fault()
        self.seq += 1
        rid = headers.get("x-request-id", "")
        self.requests.append([time.monotonic(), self.mode, fault, stream, rid, model])

        if fault in ("500", "502", "503"):
            writer.write(error_response(int(fault)))
            await writer.drain()
            return not close_after
        if fault == "429":
            writer.write(error_response(429, extra=[("Retry-After", "1")]))
            await writer.drain()
            return not close_after
        if fault == "close":
            writer.transport.abort()
            return False
        if fault == "hang":
            # Never answer; hold the connection until the client gives up (or a long limit).
            try:
                await asyncio.wait_for(reader.read(), HANG_LIMIT_S)
            except asyncio.TimeoutError:
                pass
            return False

        n_chunks = int(chaos.get("chunks", 5))
        delay = float(chaos.get("chunk_delay_ms", 20)) / 1000.0
        if fault == "slow":
            delay = 2.0
        created = int(time.time())
        cid = "chatcmpl-%s-%d" % (self.name, self.seq)
        prompt_tokens = max(1, len(body) // 4)
        if not stream:
            content = " ".join("tok%d" % i for i in range(n_chunks))
            obj = {"id": cid, "object": "chat.completion", "created": created, "model": model,
                   "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                "finish_reason": "stop"}],
                   "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": n_chunks,
                             "total_tokens": prompt_tokens + n_chunks}}
            out = json_response(200, obj, extra=[("X-Upstream-Name", self.name)], close=close_after)
            if fault == "slow":
                await asyncio.sleep(3.0)
            if fault == "cut":
                writer.write(out[: len(out) - len(out) // 3])
                await writer.drain()
                writer.transport.abort()
                return False
            writer.write(out)
            await writer.drain()
            return not close_after

        # Framed as real servers (OpenAI, llama.cpp's) frame streams: a role-only first chunk, one
        # HTTP chunk per event, logprobs, a charset on the content type.
        writer.write(response_head(200, "OK", [("Content-Type", "text/event-stream; charset=utf-8"),
                                               ("Cache-Control", "no-cache"),
                                               ("X-Upstream-Name", self.name),
                                               ("Transfer-Encoding", "chunked")]
                                   + ([("Connection", "close")] if close_after else [])))
        await writer.drain()
        base = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model}
        writer.write(chunk(sse(dict(base, choices=[{"index": 0, "delta": {"role": "assistant"}, "logprobs": None,
                                                    "finish_reason": None}]))))
        for i in range(n_chunks):
            if fault == "cut" and i == 2:
                writer.transport.abort()
                return False
            if i > 0 or fault == "slow":
                await asyncio.sleep(delay)
            delta = {"content": "tok%d " % i}
            writer.write(chunk(sse(dict(base, choices=[{"index": 0, "delta": delta, "logprobs": None,
                                                        "finish_reason": None}]))))
            await writer.drain()
        out = chunk(sse(dict(base, choices=[{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}])))
        if include_usage:
            out += chunk(sse(dict(base, choices=[], usage={"prompt_tokens": prompt_tokens,
                                                           "completion_tokens": n_chunks,
                                                           "total_tokens": prompt_tokens + n_chunks})))
        out += chunk(b"data: [DONE]\n\n")
        writer.write(out + b"0\r\n\r\n")
        await writer.drain()
        return not close_after


def parse_schedule(text):
    phases = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        mode, _, secs = item.partition(":")
        if not valid_mode(mode):
            raise SystemExit("unknown mode in --schedule: %r" % mode)
        phases.append((mode, float(secs or 0)))
    return phases


async def amain(args):
    up = FaultUpstream(args.name, args.host, args.port, args.control_port, args.mode, args.seed)
    await up.start()
    print("LISTENING name=%s port=%d control=%d pid=%d" % (up.name, up.port, up.control_port, os.getpid()),
          flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.schedule:
        up.schedule_task = asyncio.ensure_future(up.run_schedule(parse_schedule(args.schedule)))
    await stop.wait()
    if args.stats_out:
        with open(args.stats_out, "w") as f:
            json.dump(up.stats(), f)
    if args.summary:
        sys.stderr.write(up.summary() + "\n")
    await up.close_data()
    up.control.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--control-port", type=int, default=0)
    p.add_argument("--name", default="fake")
    p.add_argument("--mode", default="healthy", help="healthy | mixed | error500 | down | fault:X")
    p.add_argument("--schedule", default="", help="MODE:SECONDS,... run at start (last phase stays)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--summary", action="store_true", help="print per-mode/fault counts to stderr at exit")
    p.add_argument("--stats-out", default="", help="write the /_stats JSON to this file at exit")
    args = p.parse_args()
    if not valid_mode(args.mode):
        p.error("unknown --mode %r" % args.mode)
    try:
        asyncio.run(amain(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
