#!/usr/bin/env python3
"""Chaos test for llm-sidecar (Python standard library only).

Default run: two fault-injecting fake upstreams (fault_upstream.py): `local` healthy throughout,
`cloud` cycling healthy -> mixed -> error500 -> down -> healthy. The sidecar is configured with
small-local (local, fallbacks [big-cloud]) and big-cloud (cloud, fallbacks [small-local]) and short
timeouts. N concurrent clients send paced chat requests (short prompts -> local tier, long design
prompts -> cloud tier, ~30% streaming) and every answer is checked against the contract:

  ok          200 and a well-formed completion, or a stream ending in data: [DONE] with no error
  error       a well-formed OpenAI error: JSON {"error":{"message","type","code"}}, 429/502/503/504
  cut         200 stream ending with an SSE error event then data: [DONE] (the upstream failed after
              the response head reached the client: the contract cannot retry it)
  VIOLATION   anything else: client timeout (hang), over request_ms + 1 s, malformed body or stream,
              connection reset/closed by the sidecar mid-response, unexpected status

Exit 0 only with zero violations, >= --min-requests requests, success rate excluding cuts
>= --min-success, and the breaker criteria (see README.md).

--sigterm: the same load with slow streams (5 chunks 500 ms apart), SIGTERM to the sidecar in
the middle; every request in flight at that moment must complete (no stream cut), new connections
must be refused or answered, and the sidecar must exit 0 within its drain time.
"""
import argparse
import asyncio
import datetime
import json
import os
import random
import re
import select
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
FAKE = os.path.join(HERE, "fault_upstream.py")
OK_STATUSES_FOR_ERRORS = {429, 502, 503, 504}

SHORT_PROMPTS = [
    "What is the capital of France?",
    "Translate 'good morning' into Spanish.",
    "Give me a synonym for happy.",
    "How many days are in a leap year?",
    "Say hello in German.",
    "What colour is the sky on a clear day?",
    "Name a fruit that is yellow.",
    "What is 12 plus 30?",
]

LONG_PROMPT = """Design a distributed rate limiter for a multi-region API gateway that serves 2 million requests per second.
1. Compare token bucket, leaky bucket and sliding window algorithms, and explain why you would pick one; analyze the trade-offs in memory, accuracy and latency.
2. Describe the architecture: where counters live, how regions synchronise, and how the design behaves under network partitions and clock skew.
3. Evaluate the failure modes and edge cases: hot keys, thundering herds, a region going down, and a Redis cluster failover.
4. Propose a migration plan from the current per-node limiter, with a rollout strategy and the metrics you must watch.
5. Assess the security implications, including abuse by distributed clients, and recommend mitigations.
The answer must be comprehensive, should include pseudocode for the core algorithm, and must not exceed 1500 words. Ensure each section ends with a short justification."""


# --------------------------------------------------------------------------------------------
# processes
# --------------------------------------------------------------------------------------------
class Children:
    """Everything this script starts, stopped by PID in reverse order."""

    def __init__(self):
        self.procs = []

    def add(self, name, proc):
        self.procs.append((name, proc))
        return proc

    def stop_all(self):
        for name, p in reversed(self.procs):
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 5
        for name, p in reversed(self.procs):
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    p.kill()
                    p.wait(timeout=2)
                except Exception:
                    pass


def start_fake(children, name, mode, seed, rundir):
    err = open(os.path.join(rundir, "%s.stderr" % name), "w")
    p = children.add(name, subprocess.Popen(
        [sys.executable, FAKE, "--name", name, "--mode", mode, "--seed", str(seed), "--summary"],
        stdout=subprocess.PIPE, stderr=err, text=True))
    r, _, _ = select.select([p.stdout], [], [], 10)
    if not r:
        raise SystemExit("fake upstream %s did not start" % name)
    line = p.stdout.readline()
    m = re.search(r"port=(\d+) control=(\d+)", line)
    if not m:
        raise SystemExit("fake upstream %s: unexpected first line %r" % (name, line))
    return p, int(m.group(1)), int(m.group(2))


def write_config(path, local_port, cloud_port, a):
    text = """# written by Benchmarks/chaos/chaos.py
[server]
listen = "127.0.0.1:0"

[timeouts]
connect_ms = {connect_ms}
first_byte_ms = {first_byte_ms}
idle_ms = {idle_ms}
request_ms = {request_ms}

[retry]
max_attempts = {max_attempts}
base_delay_ms = 50
max_delay_ms = 500
max_retry_after_ms = 2000

[breaker]
consecutive_failures = {consecutive_failures}
failure_rate = {failure_rate}
minimum_requests = {minimum_requests}
window_ms = 30000
cooldown_ms = {cooldown_ms}
half_open_probes = {half_open_probes}

[[upstreams]]
name = "local"
base_url = "http://127.0.0.1:{local_port}/v1"
api_key_env = ""

[[upstreams]]
name = "cloud"
base_url = "http://127.0.0.1:{cloud_port}/v1"
api_key_env = ""

[[models]]
name = "small-local"
upstream = "local"
input_usd_per_mtok = 0.0
output_usd_per_mtok = 0.0
fallbacks = ["big-cloud"]

[[models]]
name = "big-cloud"
upstream = "cloud"
input_usd_per_mtok = 2.50
output_usd_per_mtok = 10.00
fallbacks = ["small-local"]

[routing]
tiers = [ {{ max_score = 0.40, model = "small-local" }},
          {{ max_score = 1.01, model = "big-cloud" }} ]
default_upstream = "local"
ollama_upstream = ""

[cache]
backend = "memory"
""".format(local_port=local_port, cloud_port=cloud_port, **vars(a))
    with open(path, "w") as f:
        f.write(text)


def start_sidecar(children, binary, config, rundir, log_level="info"):
    log = open(os.path.join(rundir, "sidecar.log"), "w")
    p = children.add("sidecar", subprocess.Popen(
        [binary, "serve", "--config", config, "--listen", "127.0.0.1:0", "--log-level", log_level],
        stdout=log, stderr=subprocess.STDOUT, cwd=rundir))
    deadline = time.monotonic() + 30
    pat = re.compile(r"server\.address=\S*:(\d+)|listening on \S*:(\d+)")
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise SystemExit("sidecar exited with %s at start; see %s" % (p.returncode, log.name))
        with open(log.name) as f:
            for line in f:
                m = pat.search(line)
                if m:
                    return p, int(m.group(1) or m.group(2))
        time.sleep(0.05)
    raise SystemExit("sidecar did not report its port; see %s" % log.name)


# --------------------------------------------------------------------------------------------
# a minimal HTTP/1.1 client on asyncio streams
# --------------------------------------------------------------------------------------------
class HTTPFailure(Exception):
    def __init__(self, kind, detail, got_bytes=0, partial=None):
        super().__init__("%s: %s" % (kind, detail))
        self.kind = kind
        self.detail = detail
        self.got_bytes = got_bytes
        self.partial = partial


class Response:
    __slots__ = ("status", "headers", "body", "trailers", "t_head", "chunked", "complete")

    def __init__(self):
        self.status = 0
        self.headers = {}
        self.body = b""
        self.trailers = {}
        self.t_head = None
        self.chunked = False
        self.complete = False


class Conn:
    def __init__(self, host, port):
        self.host = host
        self.port = port
        self.reader = None
        self.writer = None
        self.used = 0  # requests completed on this connection

    def close(self):
        if self.writer is not None:
            try:
                self.writer.transport.abort()
            except Exception:
                pass
        self.reader = self.writer = None
        self.used = 0

    async def request(self, method, path, headers=(), body=b""):
        """Sends one request and reads the whole answer. Raises HTTPFailure."""
        fresh = self.writer is None
        if fresh:
            try:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
            except ConnectionRefusedError as e:
                raise HTTPFailure("refused", str(e))
            except OSError as e:
                raise HTTPFailure("connect_error", str(e))
        head = ["%s %s HTTP/1.1" % (method, path), "Host: %s:%d" % (self.host, self.port)]
        for k, v in headers:
            head.append("%s: %s" % (k, v))
        head.append("Content-Length: %d" % len(body))
        data = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        resp = Response()
        got = 0
        try:
            self.writer.write(data)
            await self.writer.drain()
            try:
                raw = await self.reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as e:
                kind = "eof_before_response" if not e.partial else "truncated_head"
                raise HTTPFailure(kind, "connection closed before a response (%d bytes)" % len(e.partial),
                                  len(e.partial))
            resp.t_head = time.monotonic()
            got = len(raw)
            lines = raw.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ", 2)
            resp.status = int(parts[1])
            for line in lines[1:]:
                if line:
                    k, _, v = line.partition(":")
                    resp.headers[k.strip().lower()] = v.strip()
            te = resp.headers.get("transfer-encoding", "").lower()
            chunks = []
            if "chunked" in te:
                resp.chunked = True
                while True:
                    try:
                        size_line = await self.reader.readuntil(b"\r\n")
                    except asyncio.IncompleteReadError as e:
                        raise HTTPFailure("truncated_body", "connection closed inside a chunked body",
                                          got, b"".join(chunks))
                    got += len(size_line)
                    size = int(size_line.split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while True:
                            line = await self.reader.readuntil(b"\r\n")
                            if line == b"\r\n":
                                break
                            k, _, v = line.decode("latin-1").partition(":")
                            resp.trailers[k.strip().lower()] = v.strip()
                        break
                    try:
                        chunks.append(await self.reader.readexactly(size))
                        await self.reader.readexactly(2)
                    except asyncio.IncompleteReadError as e:
                        chunks.append(e.partial)
                        raise HTTPFailure("truncated_body", "connection closed inside a chunk", got,
                                          b"".join(chunks))
                    got += size + 2
                resp.body = b"".join(chunks)
            elif "content-length" in resp.headers:
                n = int(resp.headers["content-length"])
                try:
                    resp.body = await self.reader.readexactly(n)
                except asyncio.IncompleteReadError as e:
                    raise HTTPFailure("truncated_body", "connection closed after %d of %d body bytes"
                                      % (len(e.partial), n), got, e.partial)
            else:
                resp.body = await self.reader.read()
                self.close()
            resp.complete = True
        except HTTPFailure:
            self.close()
            raise
        except (ConnectionResetError, BrokenPipeError) as e:
            self.close()
            raise HTTPFailure("connection_reset", str(e) or type(e).__name__, got)
        except asyncio.CancelledError:
            self.close()
            raise
        except (OSError, ValueError, IndexError) as e:
            self.close()
            raise HTTPFailure("protocol_error", "%s: %s" % (type(e).__name__, e), got)
        if resp.headers.get("connection", "").lower() == "close":
            self.close()
        else:
            self.used += 1
        return resp


# --------------------------------------------------------------------------------------------
# checking answers
# --------------------------------------------------------------------------------------------
def well_formed_error(obj):
    if not isinstance(obj, dict) or not isinstance(obj.get("error"), dict):
        return False
    e = obj["error"]
    return (isinstance(e.get("message"), str) and e["message"] != "" and isinstance(e.get("type"), str)
            and "code" in e)


def parse_sse(body):
    """Returns (events, trailing_garbage): events as ('done'|'json'|'bad', value)."""
    text = body.decode("utf-8", "replace").replace("\r\n", "\n")
    blocks = text.split("\n\n")
    tail = blocks.pop()  # after the last blank line: must be empty for a complete stream
    events = []
    for block in blocks:
        data = [ln[5:].lstrip() if ln.startswith("data:") else None for ln in block.split("\n")
                if ln and not ln.startswith(":")]
        data = [d for d in data if d is not None]
        if not data:
            continue
        d = "\n".join(data)
        if d == "[DONE]":
            events.append(("done", None))
            continue
        try:
            events.append(("json", json.loads(d)))
        except ValueError:
            events.append(("bad", d[:200]))
    return events, tail.strip()


def classify(req, resp, n_tokens=5):
    """-> (outcome, detail, extra). outcome: ok | error | cut | violation."""
    h = resp.headers
    extra = {"status": resp.status, "model_used": h.get("x-model-used"), "upstream": h.get("x-sidecar-upstream"),
             "fallback": h.get("x-sidecar-fallback", "").lower() == "true", "request_id": h.get("x-request-id")}
    ctype = h.get("content-type", "").lower()
    if resp.status == 200:
        if not extra["model_used"] or not extra["upstream"]:
            return "violation", "200 without X-Model-Used/X-Sidecar-Upstream", extra
        if req["stream"]:
            if not ctype.startswith("text/event-stream"):
                return "violation", "stream answered with content-type %r" % ctype, extra
            events, tail = parse_sse(resp.body)
            if tail:
                return "violation", "stream ends with an unterminated event %r" % tail[:120], extra
            bad = [v for k, v in events if k == "bad"]
            if bad:
                return "violation", "stream has a non-JSON data line %r" % bad[0], extra
            if not events or events[-1][0] != "done":
                return "violation", "stream does not end with data: [DONE] (%d events)" % len(events), extra
            if sum(1 for k, _ in events if k == "done") != 1:
                return "violation", "stream has more than one [DONE]", extra
            errs = [i for i, (k, v) in enumerate(events) if k == "json" and "error" in v]
            content_chunks = [v for k, v in events if k == "json" and "error" not in v and v.get("choices")
                              and (v["choices"][0].get("delta") or {}).get("content")]
            extra["content_chunks"] = len(content_chunks)
            if errs:
                i = errs[0]
                ev = events[i][1]
                if not well_formed_error(ev):
                    return "violation", "malformed stream error event %r" % ev, extra
                if i != len(events) - 2:
                    return "violation", "stream error event not followed directly by [DONE]", extra
                extra["error_code"] = ev["error"].get("code")
                return "cut", "stream error event after %d content chunks: %s" % (
                    len(content_chunks), ev["error"].get("code")), extra
            text = "".join(c["choices"][0]["delta"]["content"] for c in content_chunks)
            want = "".join("tok%d " % i for i in range(n_tokens))
            if text != want:
                return "violation", "stream content %r != %r (duplicated or lost chunks)" % (text[:80], want), extra
            usage_chunks = [v for k, v in events if k == "json" and v.get("usage") and not v.get("choices")]
            extra["usage_chunk"] = bool(usage_chunks)
            return "ok", "", extra
        try:
            obj = json.loads(resp.body)
        except ValueError:
            return "violation", "200 with a non-JSON body %r" % resp.body[:120], extra
        try:
            content = obj["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            return "violation", "200 without choices[0].message.content: %r" % resp.body[:160], extra
        if obj.get("object") != "chat.completion" or not isinstance(obj.get("usage"), dict):
            return "violation", "200 body is not a chat.completion with usage", extra
        want = " ".join("tok%d" % i for i in range(n_tokens))
        if content != want:
            return "violation", "content %r != %r" % (content[:80], want), extra
        return "ok", "", extra
    # non-200: a well-formed OpenAI error with a contract status
    try:
        obj = json.loads(resp.body)
    except ValueError:
        return "violation", "status %d with a non-JSON body %r" % (resp.status, resp.body[:160]), extra
    if not well_formed_error(obj):
        return "violation", "status %d with a body that is not an OpenAI error: %r" % (
            resp.status, resp.body[:160]), extra
    extra["error_code"] = obj["error"].get("code")
    extra["error_type"] = obj["error"].get("type")
    if resp.status not in OK_STATUSES_FOR_ERRORS:
        return "violation", "unexpected status %d (%s)" % (resp.status, extra["error_code"]), extra
    return "error", "%d %s" % (resp.status, extra["error_code"]), extra


# --------------------------------------------------------------------------------------------
# the load
# --------------------------------------------------------------------------------------------
def build_request(i, rng, a, slow_share=0.0):
    cloud = rng.random() < a.cloud_share
    stream = rng.random() < a.stream_share
    include_usage = stream and rng.random() < 0.5
    slow = stream and rng.random() < slow_share
    rid = "chaos-%d" % i
    if cloud:
        text = LONG_PROMPT + "\n(ref %s)" % rid
    else:
        text = SHORT_PROMPTS[i % len(SHORT_PROMPTS)] + " (ref %s)" % rid
    body = {"model": "auto", "messages": [{"role": "user", "content": text}], "max_tokens": 64}
    if stream:
        body["stream"] = True
        if include_usage:
            body["stream_options"] = {"include_usage": True}
    if slow:
        body["chaos"] = {"chunk_delay_ms": a.slow_chunk_ms, "chunks": 5}
    return {"i": i, "rid": rid, "tier": "cloud" if cloud else "local", "stream": stream,
            "include_usage": include_usage, "slow": slow,
            "body": json.dumps(body, separators=(",", ":")).encode()}


async def do_request(conn, req, a):
    headers = [("Content-Type", "application/json"), ("X-Request-Id", req["rid"]),
               ("Accept", "text/event-stream" if req["stream"] else "application/json")]
    t0 = time.monotonic()
    rec = {"i": req["i"], "rid": req["rid"], "tier": req["tier"], "stream": req["stream"], "slow": req["slow"],
           "t_start": t0, "stale_retry": False}
    for attempt in (1, 2):
        reused = conn.used > 0
        try:
            resp = await asyncio.wait_for(conn.request("POST", "/v1/chat/completions", headers, req["body"]),
                                          a.client_timeout_ms / 1000.0)
        except asyncio.TimeoutError:
            conn.close()
            rec.update(outcome="violation", detail="client timeout after %d ms (hang)" % a.client_timeout_ms,
                       kind="hang")
            break
        except HTTPFailure as f:
            # A keep-alive connection closed by the server between requests (zero bytes back) is
            # the ordinary idle-close race: resend once on a fresh connection and count it.
            if attempt == 1 and reused and f.kind == "eof_before_response" and f.got_bytes == 0:
                rec["stale_retry"] = True
                continue
            rec.update(outcome="violation", kind=f.kind,
                       detail="%s: %s (after %d response bytes)" % (f.kind, f.detail, f.got_bytes))
            if f.partial:
                rec["partial_tail"] = f.partial[-300:].decode("utf-8", "replace")
            break
        outcome, detail, extra = classify(req, resp)
        rec.update(extra)
        rec.update(outcome=outcome, detail=detail, kind=outcome)
        if outcome == "violation":
            rec["body_tail"] = resp.body[-300:].decode("utf-8", "replace")
        if resp.t_head is not None:
            rec["ttfb_ms"] = round((resp.t_head - t0) * 1000, 1)
        if extra.get("request_id") not in (None, req["rid"]):
            rec["anomaly"] = "X-Request-Id %r != sent %r" % (extra.get("request_id"), req["rid"])
        if outcome in ("ok", "cut") and extra["status"] == 200:
            want = "small-local" if req["tier"] == "local" else "big-cloud"
            used = extra.get("model_used")
            if extra["fallback"] != (used != want):
                rec["anomaly"] = "X-Sidecar-Fallback=%s but X-Model-Used=%s for tier model %s" % (
                    extra["fallback"], used, want)
        break
    t1 = time.monotonic()
    rec["t_end"] = t1
    rec["latency_ms"] = round((t1 - t0) * 1000, 1)
    if rec["outcome"] != "violation" and rec["latency_ms"] > a.request_ms + 1000:
        rec["outcome_before_deadline_check"] = rec["outcome"]
        rec["outcome"] = "violation"
        rec["kind"] = "over_deadline"
        rec["detail"] = "took %.0f ms > request_ms + 1 s (%s)" % (rec["latency_ms"], rec.get("detail", ""))
    return rec


class ReadyPoller:
    def __init__(self, port, interval):
        self.conn = Conn("127.0.0.1", port)
        self.interval = interval
        self.samples = 0
        self.errors = 0
        self.last = {}
        self.transitions = []  # [t, upstream, from, to]
        self.history = []  # [t, {upstream: state}] on every change
        self.stop = False

    async def run(self):
        while not self.stop:
            t = time.monotonic()
            try:
                resp = await asyncio.wait_for(self.conn.request("GET", "/readyz"), 2)
                ups = json.loads(resp.body).get("upstreams", {})
                states = {k: v.get("breaker") for k, v in ups.items()}
                self.samples += 1
                for k, v in states.items():
                    if self.last.get(k) != v:
                        self.transitions.append([t, k, self.last.get(k), v])
                if states != self.last:
                    self.history.append([t, states])
                self.last = states
            except (HTTPFailure, asyncio.TimeoutError, ValueError):
                self.errors += 1
                self.conn.close()
            await asyncio.sleep(self.interval)


async def http_json(port, method, path, body=None):
    c = Conn("127.0.0.1", port)
    try:
        resp = await asyncio.wait_for(c.request(method, path, [("Content-Type", "application/json")],
                                                json.dumps(body).encode() if body is not None else b""), 30)
        return json.loads(resp.body) if resp.headers.get("content-type", "").startswith("application/json") \
            else resp.body.decode()
    finally:
        c.close()


async def wait_ready(port, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            r = await http_json(port, "GET", "/readyz")
            if isinstance(r, dict) and r.get("status") == "ready":
                return r
        except (HTTPFailure, asyncio.TimeoutError, ValueError):
            pass
        await asyncio.sleep(0.1)
    raise SystemExit("sidecar /readyz not ready after %ds" % timeout)


def pct(values, p):
    if not values:
        return None
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(p / 100.0 * (len(s) - 1)))))
    return s[k]


def parse_phases(text):
    out = []
    for item in text.split(","):
        mode, _, secs = item.strip().partition(":")
        out.append((mode, float(secs)))
    return out


# --------------------------------------------------------------------------------------------
# analysis
# --------------------------------------------------------------------------------------------
def phase_of(t, phase_times):
    name = None
    for idx, (mode, start, end) in enumerate(phase_times):
        if t >= start:
            name = "%d:%s" % (idx + 1, mode)
    return name or "pre"


def fake_index(stats):
    by = {}
    for t, mode, fault, stream, rid, model in stats.get("requests", []):
        by.setdefault(rid, []).append("%s/%s" % (mode, fault))
    return by


def breaker_analysis(cloud_stats, poller, phase_times, a):
    """The error500 phase: requests reaching cloud after the breaker first opened, per cooldown."""
    res = {"ok": False}
    err = [p for p in phase_times if p[0] == "error500"]
    fin = [p for p in phase_times if p[0] == "healthy"]
    if not err:
        res["reason"] = "no error500 phase"
        return res
    _, e_start, e_end = err[0]
    reqs = sorted(r[0] for r in cloud_stats["requests"] if e_start <= r[0] < e_end)
    # the breaker's state when the phase began, else the first readyz sample in it showing open
    samples = [(t, s.get("cloud")) for t, s in poller.history]
    state_at_start = None
    for t, s in samples:
        if t <= e_start:
            state_at_start = s
    t_open = None
    if state_at_start == "open":
        t_open = e_start
    else:
        for t, s in samples:
            if e_start < t < e_end and s == "open":
                t_open = t
                break
    res["error500_phase_s"] = round(e_end - e_start, 3)
    res["cloud_requests_in_error500"] = len(reqs)
    res["readyz_states_in_error500"] = sorted({s for t, s in samples if e_start <= t < e_end} |
                                             ({state_at_start} if state_at_start else set()))
    if t_open is None:
        res["reason"] = "readyz never showed the cloud breaker open during error500"
        return res
    cooldown = a.cooldown_ms / 1000.0
    before = [t for t in reqs if t <= t_open + a.ready_poll_ms / 1000.0]
    after = [t for t in reqs if t > t_open + a.ready_poll_ms / 1000.0]
    res["opened_at_s_into_phase"] = round(t_open - e_start, 3)
    res["requests_before_open_seen"] = len(before)
    res["requests_after_open"] = len(after)
    # fixed windows of one cooldown from the moment it was seen open
    windows = []
    w_start = t_open
    while w_start < e_end:
        windows.append(sum(1 for t in after if w_start <= t < w_start + cooldown))
        w_start += cooldown
    res["requests_per_cooldown_window"] = windows
    # sliding: no two requests closer than the cooldown (minus 5% for timer slack) while open
    slack = 0.95 * cooldown
    max_in_window = 0
    j = 0
    for i in range(len(after)):
        while after[i] - after[j] >= slack:
            j += 1
        max_in_window = max(max_in_window, i - j + 1)
    res["max_requests_in_any_cooldown_window"] = max_in_window
    res["gaps_between_probes_s"] = [round(after[k + 1] - after[k], 3) for k in range(len(after) - 1)][:20]
    window_ok = max_in_window <= a.half_open_probes and all(w <= a.half_open_probes for w in windows)
    res["windows_ok"] = window_ok
    # the final healthy phase: cloud gets traffic again and the breaker closes
    last = fin[-1] if fin and fin[-1][1] > e_start else None
    if last:
        _, f_start, f_end = last
        res["cloud_requests_in_final_healthy"] = sum(1 for r in cloud_stats["requests"] if r[0] >= f_start)
        closed_again = [t for t, s in samples if t >= f_start and s == "closed"]
        res["breaker_closed_again_s_into_final"] = round(closed_again[0] - f_start, 3) if closed_again else None
    else:
        res["cloud_requests_in_final_healthy"] = 0
        res["breaker_closed_again_s_into_final"] = None
    res["final_readyz_cloud"] = poller.last.get("cloud")
    res["ok"] = bool(window_ok and res["cloud_requests_in_final_healthy"] > 0
                     and res["breaker_closed_again_s_into_final"] is not None)
    if not res["ok"]:
        res["reason"] = ("more than half_open_probes requests per cooldown window" if not window_ok
                         else "cloud got no traffic / breaker did not close in the final healthy phase")
    return res


def metric_lines(text):
    keep = ("llm_sidecar_retries_total", "llm_sidecar_fallbacks_total", "llm_sidecar_breaker_transitions_total",
            "llm_sidecar_upstream_failures_total")
    out = {}
    for line in text.splitlines():
        if line.startswith(keep):
            k, _, v = line.rpartition(" ")
            try:
                out[k] = float(v)
            except ValueError:
                pass
    return out


def summarize_records(records, a):
    n = len(records)
    by_outcome = {}
    by_status = {}
    by_code = {}
    for r in records:
        by_outcome[r["outcome"]] = by_outcome.get(r["outcome"], 0) + 1
        key = str(r.get("status", r.get("kind")))
        if r["outcome"] == "cut":
            key = "200+error-event"
        by_status[key] = by_status.get(key, 0) + 1
        if r.get("error_code"):
            by_code[str(r["error_code"])] = by_code.get(str(r["error_code"]), 0) + 1
    ok = by_outcome.get("ok", 0)
    cuts = by_outcome.get("cut", 0)
    lat = [r["latency_ms"] for r in records]
    return {
        "requests": n, "ok": ok, "errors": by_outcome.get("error", 0), "cuts_after_first_byte": cuts,
        "violations": by_outcome.get("violation", 0),
        "success_rate": ok / n if n else 0.0,
        "success_rate_excluding_cuts": ok / (n - cuts) if n - cuts > 0 else 0.0,
        "by_status": dict(sorted(by_status.items())), "by_error_code": dict(sorted(by_code.items())),
        "latency_ms": {"p50": pct(lat, 50), "p99": pct(lat, 99), "max": max(lat) if lat else None},
        "fallbacks": sum(1 for r in records if r.get("fallback")),
        "streams": sum(1 for r in records if r["stream"]),
        "stale_keepalive_resends": sum(1 for r in records if r.get("stale_retry")),
        "cut_with_no_content_chunk": sum(1 for r in records if r["outcome"] == "cut" and
                                         not r.get("content_chunks")),
        "anomalies": sum(1 for r in records if r.get("anomaly")),
    }


def table(rows, headers):
    w = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h)) for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w[i]) if i == 0 else str(c).rjust(w[i])
                                          for i, c in enumerate(cells)) + " |"
    out = [line(headers), "|" + "|".join("-" * (x + 2) for x in w) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out)


def fmt_rate(x):
    return "%.3f%%" % (100 * x)


# --------------------------------------------------------------------------------------------
# runs
# --------------------------------------------------------------------------------------------
async def run_load(port, a, t0, rate, total, stop_at, slow_share, records, inflight, stop_issue):
    state = {"next": 0}
    rng = random.Random(a.seed)
    reqs = [build_request(i, rng, a, slow_share) for i in range(total)]

    async def worker(w):
        conn = Conn("127.0.0.1", port)
        try:
            while True:
                i = state["next"]
                if i >= total or stop_issue.is_set() or time.monotonic() >= stop_at:
                    break
                state["next"] = i + 1
                due = t0 + i / rate
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                if stop_issue.is_set():
                    break
                req = reqs[i]
                inflight[req["rid"]] = time.monotonic()
                rec = await do_request(conn, req, a)
                inflight.pop(req["rid"], None)
                rec["worker"] = w
                records.append(rec)
        except BaseException:
            conn.close()
            raise
        # idle keep-alive connections stay open, like a real client pool; the caller closes them
        return conn

    conns = await asyncio.gather(*(worker(w) for w in range(a.concurrency)))
    return conns


async def chaos_main(a, children, rundir):
    phases = parse_phases(a.phases)
    _, local_port, local_ctl = start_fake(children, "local", "healthy", a.seed + 1, rundir)
    _, cloud_port, cloud_ctl = start_fake(children, "cloud", phases[0][0], a.seed + 2, rundir)
    config = os.path.join(rundir, "sidecar.conf")
    write_config(config, local_port, cloud_port, a)
    sidecar, port = start_sidecar(children, a.sidecar, config, rundir)
    ready0 = await wait_ready(port)
    print("sidecar pid %d on 127.0.0.1:%d, local :%d, cloud :%d; run files in %s" % (
        sidecar.pid, port, local_port, cloud_port, os.path.relpath(rundir, REPO)), flush=True)

    planned = sum(s for _, s in phases)
    rate = a.requests / planned
    poller = ReadyPoller(port, a.ready_poll_ms / 1000.0)
    poll_task = asyncio.ensure_future(poller.run())
    records, inflight = [], {}
    stop_issue = asyncio.Event()
    phase_times = []  # [mode, start, end]

    async def controller():
        for idx, (mode, secs) in enumerate(phases):
            r = await http_json(cloud_ctl, "POST", "/_mode", {"mode": mode})
            if phase_times:
                phase_times[-1][2] = r["t"]
            phase_times.append([mode, r["t"], float("inf")])
            print("  [%6.1fs] cloud -> %s (%d requests done)" % (time.monotonic() - t0, mode, len(records)),
                  flush=True)
            if idx < len(phases) - 1:
                await asyncio.sleep(secs)

    t0 = time.monotonic()
    ctl_task = asyncio.ensure_future(controller())
    await run_load(port, a, t0, rate, a.requests, t0 + a.max_seconds, 0.0, records, inflight, stop_issue)
    await ctl_task
    t_load_end = time.monotonic()
    phase_times[-1][2] = t_load_end
    await asyncio.sleep(0.3)
    poller.stop = True
    await poll_task
    metrics_text = await http_json(port, "GET", "/metrics")
    cloud_stats = await http_json(cloud_ctl, "GET", "/_stats")
    local_stats = await http_json(local_ctl, "GET", "/_stats")

    # stop the sidecar the way systemd does and record how it exits (idle: nothing in flight)
    sidecar.send_signal(signal.SIGTERM)
    t_sig = time.monotonic()
    try:
        rc = sidecar.wait(timeout=a.request_ms / 1000.0 + 5)
    except subprocess.TimeoutExpired:
        rc = None
    exit_after_s = round(time.monotonic() - t_sig, 3)

    # ---- analysis ----
    records.sort(key=lambda r: r["i"])
    summ = summarize_records(records, a)
    faults_by_rid = {}
    for name, st in (("local", local_stats), ("cloud", cloud_stats)):
        for rid, fs in fake_index(st).items():
            faults_by_rid.setdefault(rid, []).extend("%s:%s" % (name, f) for f in fs)
    per_phase = {}
    for r in records:
        ph = phase_of(r["t_start"], phase_times)
        d = per_phase.setdefault(ph, {"requests": 0, "ok": 0, "error": 0, "cut": 0, "violation": 0,
                                      "fallback": 0, "lat": []})
        d["requests"] += 1
        d[r["outcome"]] += 1
        d["fallback"] += 1 if r.get("fallback") else 0
        d["lat"].append(r["latency_ms"])
    for d in per_phase.values():
        lat = d.pop("lat")
        d["p50_ms"] = pct(lat, 50)
        d["p99_ms"] = pct(lat, 99)
    breaker = breaker_analysis(cloud_stats, poller, phase_times, a)
    violations = [r for r in records if r["outcome"] == "violation"]
    non_ok = [r for r in records if r["outcome"] in ("error", "violation")]
    cut_causes = {}
    for r in records:
        if r["outcome"] == "cut":
            fs = faults_by_rid.get(r["rid"], [])
            key = "%s -> %s (%s content chunks)" % (fs[-1] if fs else "no fault recorded",
                                                    r.get("error_code"),
                                                    "0" if not r.get("content_chunks") else ">0")
            cut_causes[key] = cut_causes.get(key, 0) + 1
    examples = []
    for r in (violations + [x for x in non_ok if x["outcome"] == "error"])[:a.examples]:
        examples.append({k: r.get(k) for k in ("rid", "tier", "stream", "outcome", "kind", "detail", "status",
                                               "error_code", "latency_ms", "model_used", "upstream", "fallback",
                                               "body_tail", "partial_tail")} |
                        {"phase": phase_of(r["t_start"], phase_times),
                         "upstream_faults_for_this_request": faults_by_rid.get(r["rid"], [])})
    anomalies = [{"rid": r["rid"], "anomaly": r["anomaly"]} for r in records if r.get("anomaly")][:a.examples]
    metrics = metric_lines(metrics_text if isinstance(metrics_text, str) else "")

    criteria = {
        "zero_violations": summ["violations"] == 0,
        "min_requests": summ["requests"] >= a.min_requests,
        "success_rate_excluding_cuts": summ["success_rate_excluding_cuts"] >= a.min_success,
        "breaker": breaker["ok"],
    }
    passed = all(criteria.values())
    elapsed = t_load_end - t0

    # ---- print ----
    print()
    print("llm-sidecar chaos run: %d clients, %.0f s of load (planned %.0f s, %.0f req/s), phases %s" % (
        a.concurrency, elapsed, planned, rate, a.phases))
    rows = [
        ["requests", summ["requests"]],
        ["ok", summ["ok"]],
        ["OpenAI errors (429/502/503/504)", summ["errors"]],
        ["stream cut after first byte (error event + [DONE])", summ["cuts_after_first_byte"]],
        ["  of which before any content chunk", summ["cut_with_no_content_chunk"]],
        ["VIOLATIONS", summ["violations"]],
        ["success rate", fmt_rate(summ["success_rate"])],
        ["success rate excluding after-first-byte cuts", fmt_rate(summ["success_rate_excluding_cuts"])],
        ["latency p50 / p99 / max ms", "%s / %s / %s" % (summ["latency_ms"]["p50"], summ["latency_ms"]["p99"],
                                                         summ["latency_ms"]["max"])],
        ["X-Sidecar-Fallback: true", summ["fallbacks"]],
        ["streams", summ["streams"]],
        ["stale keep-alive resends", summ["stale_keepalive_resends"]],
        ["header anomalies", summ["anomalies"]],
        ["status counts", " ".join("%s:%d" % kv for kv in summ["by_status"].items())],
        ["error codes", " ".join("%s:%d" % kv for kv in summ["by_error_code"].items()) or "-"],
        ["breaker transitions seen on /readyz", len(poller.transitions)],
        ["sidecar exit after final SIGTERM (idle)", "rc=%s in %ss" % (rc, exit_after_s)],
    ]
    print(table(rows, ["metric", "value"]))
    print()
    prow = []
    for ph in sorted(per_phase, key=lambda s: int(s.split(":")[0]) if s[0].isdigit() else 0):
        d = per_phase[ph]
        prow.append([ph, d["requests"], d["ok"], d["error"], d["cut"], d["violation"], d["fallback"],
                     d["p50_ms"], d["p99_ms"]])
    print(table(prow, ["cloud phase", "requests", "ok", "error", "cut", "VIOL", "fallback", "p50 ms", "p99 ms"]))
    print()
    print("cloud fake received: " + ", ".join("%s %d" % kv for kv in sorted(cloud_stats["counts"].items())))
    print("local fake received: " + ", ".join("%s %d" % kv for kv in sorted(local_stats["counts"].items())))
    if cut_causes:
        print("stream cuts by upstream fault: " + "; ".join("%s: %d" % kv for kv in sorted(cut_causes.items())))
    print("breaker (error500 phase): seen open %ss into the phase; cloud requests before/after: %s/%s; "
          "per %d ms window after open: %s; max in any window: %s; final healthy: cloud got %s requests, "
          "closed again %ss in; readyz at end: %s -> %s" % (
              breaker.get("opened_at_s_into_phase"), breaker.get("requests_before_open_seen"),
              breaker.get("requests_after_open"), a.cooldown_ms, breaker.get("requests_per_cooldown_window"),
              breaker.get("max_requests_in_any_cooldown_window"), breaker.get("cloud_requests_in_final_healthy"),
              breaker.get("breaker_closed_again_s_into_final"), breaker.get("final_readyz_cloud"),
              "OK" if breaker["ok"] else "FAIL: " + breaker.get("reason", "")))
    trans = ["%.1fs %s:%s->%s" % (t - t0, u, f, to) for t, u, f, to in poller.transitions]
    print("breaker transitions (readyz, every %d ms): %s%s" % (a.ready_poll_ms, ", ".join(trans[:40]),
                                                            " ... (%d)" % len(trans) if len(trans) > 40 else ""))
    print("metrics: " + ", ".join("%s=%g" % kv for kv in sorted(metrics.items())))
    if examples:
        print()
        print("first non-ok requests (violations first):")
        for e in examples:
            print("  " + json.dumps(e))
    if anomalies:
        print("header anomalies: " + json.dumps(anomalies))
    print()
    print("criteria: " + ", ".join("%s=%s" % (k, "PASS" if v else "FAIL") for k, v in criteria.items()))
    print("RESULT: %s" % ("PASS" if passed else "FAIL"))

    result = {
        "schema": "llm-sidecar-chaos/1", "mode": "chaos", "passed": passed, "criteria": criteria,
        "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "settings": {k: v for k, v in vars(a).items() if k not in ("sidecar",)},
        "sidecar_binary": a.sidecar, "load_seconds": round(elapsed, 3), "planned_rate_per_s": round(rate, 1),
        "summary": summ, "per_phase": per_phase,
        "phases": [[m, round(s - t0, 3), round(e - t0, 3)] for m, s, e in phase_times],
        "breaker": breaker,
        "readyz_transitions": [[round(t - t0, 3), u, f, to] for t, u, f, to in poller.transitions],
        "readyz_samples": poller.samples, "readyz_errors": poller.errors,
        "metrics": metrics, "cloud_fake_counts": cloud_stats["counts"], "local_fake_counts": local_stats["counts"],
        "stream_cut_causes": cut_causes, "examples": examples, "anomalies": anomalies,
        "final_sigterm": {"exit_code": rc, "exit_after_s": exit_after_s},
        "run_files": os.path.relpath(rundir, REPO),
    }
    with open(os.path.join(rundir, "cloud_stats.json"), "w") as f:
        json.dump(cloud_stats, f)
    with open(os.path.join(rundir, "records.jsonl"), "w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    return result


async def sigterm_main(a, children, rundir):
    _, local_port, local_ctl = start_fake(children, "local", "healthy", a.seed + 1, rundir)
    _, cloud_port, cloud_ctl = start_fake(children, "cloud", a.sigterm_cloud_mode, a.seed + 2, rundir)
    config = os.path.join(rundir, "sidecar.conf")
    write_config(config, local_port, cloud_port, a)
    sidecar, port = start_sidecar(children, a.sidecar, config, rundir)
    await wait_ready(port)
    print("sidecar pid %d on 127.0.0.1:%d, cloud mode %s; run files in %s" % (
        sidecar.pid, port, a.sigterm_cloud_mode, os.path.relpath(rundir, REPO)), flush=True)
    records, inflight = [], {}
    stop_issue = asyncio.Event()
    total = int(a.sigterm_rate * (a.sigterm_after + 30))
    t0 = time.monotonic()
    load = asyncio.ensure_future(run_load(port, a, t0, a.sigterm_rate, total, t0 + a.max_seconds,
                                          a.slow_share, records, inflight, stop_issue))
    await asyncio.sleep(a.sigterm_after)
    # SIGTERM, and from this instant no new load requests are issued
    stop_issue.set()
    t_sig = time.monotonic()
    sidecar.send_signal(getattr(signal, "SIG" + a.signal))
    inflight_at_sig = dict(inflight)
    print("  [%5.1fs] SIG%s sent with %d requests in flight (%d done)" % (t_sig - t0,
        a.signal, len(inflight_at_sig), len(records)), flush=True)

    # new connections after SIGTERM: each must be refused or answered well
    probes = []

    async def prober():
        n = 0
        while True:
            n += 1
            c = Conn("127.0.0.1", port)
            req = build_request(10_000_000 + n, random.Random(n), argparse.Namespace(
                cloud_share=0.0, stream_share=0.0, slow_chunk_ms=a.slow_chunk_ms), 0.0)
            tp = time.monotonic()
            try:
                resp = await asyncio.wait_for(c.request("POST", "/v1/chat/completions",
                                                        [("Content-Type", "application/json"),
                                                         ("Connection", "close"), ("X-Request-Id", req["rid"])],
                                                        req["body"]), a.client_timeout_ms / 1000.0)
                outcome, detail, extra = classify(req, resp)
                probes.append({"t": round(tp - t_sig, 3), "result": "answered", "outcome": outcome,
                               "status": resp.status, "detail": detail})
            except HTTPFailure as f:
                probes.append({"t": round(tp - t_sig, 3), "result": "refused" if f.kind == "refused" else f.kind,
                               "outcome": "ok" if f.kind == "refused" else "violation", "detail": f.detail})
            except asyncio.TimeoutError:
                probes.append({"t": round(tp - t_sig, 3), "result": "hang", "outcome": "violation", "detail": ""})
            finally:
                c.close()
            if sidecar.poll() is not None and probes[-1]["result"] == "refused":
                break
            await asyncio.sleep(a.probe_interval_ms / 1000.0)

    probe_task = asyncio.ensure_future(prober())
    drain_limit = a.request_ms / 1000.0 + 2.0
    rc = None
    exited_at = None
    while time.monotonic() - t_sig < drain_limit:
        rc = sidecar.poll()
        if rc is not None:
            exited_at = time.monotonic()
            break
        await asyncio.sleep(0.02)
    inflight_done_at = None
    conns = None
    try:
        conns = await asyncio.wait_for(asyncio.shield(load), a.client_timeout_ms / 1000.0 + 2)
    except asyncio.TimeoutError:
        pass
    done_inflight = [r for r in records if r["rid"] in inflight_at_sig]
    if done_inflight:
        inflight_done_at = max(r["t_end"] for r in done_inflight)
    diagnosis = None
    if rc is None:
        # still running after its drain time: do idle client keep-alive connections hold it?
        for c in conns or []:
            c.close()
        t_close = time.monotonic()
        while time.monotonic() - t_close < 5:
            rc = sidecar.poll()
            if rc is not None:
                exited_at = time.monotonic()
                diagnosis = ("did not exit within %.0f s of SIGTERM; exited %.2f s after the clients closed their "
                             "idle keep-alive connections" % (drain_limit, exited_at - t_close))
                break
            await asyncio.sleep(0.05)
        if rc is None:
            diagnosis = "still running %.0f s after SIGTERM (even after clients closed their connections)" % (
                time.monotonic() - t_sig)
    else:
        for c in conns or []:
            c.close()
    try:
        await asyncio.wait_for(probe_task, 3)
    except asyncio.TimeoutError:
        probe_task.cancel()

    records.sort(key=lambda r: r["i"])
    cloud_stats = await http_json(cloud_ctl, "GET", "/_stats")
    local_stats = await http_json(local_ctl, "GET", "/_stats")
    faults_by_rid = {}
    for name, st in (("local", local_stats), ("cloud", cloud_stats)):
        for rid, fs in fake_index(st).items():
            faults_by_rid.setdefault(rid, []).extend("%s:%s" % (name, f) for f in fs)
    injected_cut = ("mixed/cut", "mixed/slow")
    inflight_recs = [r for r in records if r["rid"] in inflight_at_sig]
    missing = sorted(set(inflight_at_sig) - {r["rid"] for r in inflight_recs})
    out_counts = {}
    drain_failures = []
    for r in inflight_recs:
        fs = faults_by_rid.get(r["rid"], [])
        key = r["outcome"]
        if r["outcome"] == "cut" and any(f.endswith(injected_cut) for f in fs):
            key = "cut (by an injected upstream fault)"
        elif r["outcome"] == "cut":
            key = "CUT WITHOUT AN UPSTREAM FAULT"
        out_counts[key] = out_counts.get(key, 0) + 1
        if r["outcome"] == "violation" or key == "CUT WITHOUT AN UPSTREAM FAULT":
            drain_failures.append({k: r.get(k) for k in ("rid", "tier", "stream", "slow", "outcome", "kind",
                                                         "detail", "status", "latency_ms", "content_chunks",
                                                         "partial_tail", "body_tail")}
                                  | {"started_s_before_sigterm": round(t_sig - r["t_start"], 3),
                                     "ended_s_after_sigterm": round(r["t_end"] - t_sig, 3),
                                     "upstream_faults": fs})
    streams_inflight = [r for r in inflight_recs if r["stream"]]
    slow_inflight = [r for r in inflight_recs if r["slow"]]
    slow_ok = sum(1 for r in slow_inflight if r["outcome"] == "ok")
    probe_counts = {}
    for p in probes:
        k = p["result"] if p["result"] != "answered" else "answered %s %s" % (p["status"], p["outcome"])
        probe_counts[k] = probe_counts.get(k, 0) + 1
    bad_probes = [p for p in probes if p["outcome"] == "violation"]
    before = [r for r in records if r["t_end"] <= t_sig]
    before_viol = [r for r in before if r["outcome"] == "violation"]
    exit_s = round(exited_at - t_sig, 3) if exited_at else None
    criteria = {
        "inflight_all_completed": not missing and all(r["outcome"] != "violation" for r in inflight_recs),
        "no_stream_cut_by_shutdown": out_counts.get("CUT WITHOUT AN UPSTREAM FAULT", 0) == 0,
        "new_connections_refused_or_answered": not bad_probes,
        "exit_code_0": rc == 0,
        "exited_within_drain_time": exited_at is not None and exit_s <= drain_limit and diagnosis is None,
        "no_violations_before_sigterm": not before_viol,
    }
    passed = all(criteria.values())
    print()
    print("llm-sidecar SIG%s drain run: %d clients, %.0f req/s, %.0f%% slow streams (5 chunks %d ms apart), "
          "cloud %s, SIG%s at %.1f s" % (a.signal, a.concurrency, a.sigterm_rate, 100 * a.slow_share,
                                        a.slow_chunk_ms, a.sigterm_cloud_mode, a.signal, t_sig - t0))
    rows = [
        ["requests completed before SIGTERM", len(before)],
        ["in flight at SIGTERM", len(inflight_at_sig)],
        ["  of which streams / slow streams", "%d / %d" % (len(streams_inflight), len(slow_inflight))],
        ["  outcomes", " ".join("%s:%d" % kv for kv in sorted(out_counts.items())) or "-"],
        ["  slow streams completed with [DONE]", "%d / %d" % (slow_ok, len(slow_inflight))],
        ["  never finished", len(missing)],
        ["last in-flight request finished (s after SIGTERM)",
         round(inflight_done_at - t_sig, 3) if inflight_done_at else "-"],
        ["sidecar exit code", rc],
        ["sidecar exited (s after SIGTERM)", exit_s if exit_s is not None else "not within %.0f s" % drain_limit],
        ["new-connection probes after SIGTERM", " ".join("%s:%d" % kv for kv in sorted(probe_counts.items()))],
        ["violations before SIGTERM", len(before_viol)],
    ]
    print(table(rows, ["metric", "value"]))
    if diagnosis:
        print("DIAGNOSIS: " + diagnosis)
    if drain_failures:
        print("in-flight requests the shutdown broke:")
        for d in drain_failures[:a.examples]:
            print("  " + json.dumps(d))
    if bad_probes:
        print("bad probes: " + json.dumps(bad_probes[:a.examples]))
    answered = [p for p in probes if p["result"] == "answered"]
    if answered:
        print("probes answered after SIGTERM (first %d): %s" % (min(5, len(answered)), json.dumps(answered[:5])))
    print()
    print("criteria: " + ", ".join("%s=%s" % (k, "PASS" if v else "FAIL") for k, v in criteria.items()))
    print("RESULT: %s" % ("PASS" if passed else "FAIL"))
    with open(os.path.join(rundir, "records.jsonl"), "w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    return {
        "schema": "llm-sidecar-chaos/1", "mode": "sigterm", "signal": a.signal, "passed": passed, "criteria": criteria,
        "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "settings": {k: v for k, v in vars(a).items() if k not in ("sidecar",)},
        "sigterm_at_s": round(t_sig - t0, 3), "inflight_at_sigterm": len(inflight_at_sig),
        "inflight_streams": len(streams_inflight), "inflight_slow_streams": len(slow_inflight),
        "inflight_outcomes": out_counts, "inflight_never_finished": missing,
        "last_inflight_finished_s": round(inflight_done_at - t_sig, 3) if inflight_done_at else None,
        "exit_code": rc, "exit_after_s": exit_s, "diagnosis": diagnosis,
        "probes": probe_counts, "bad_probes": bad_probes[:a.examples], "drain_failures": drain_failures,
        "completed_before_sigterm": len(before), "violations_before_sigterm": len(before_viol),
        "summary_all_requests": summarize_records(records, a) if records else None,
        "run_files": os.path.relpath(rundir, REPO),
    }


async def matrix_main(a, children, rundir):
    """Each fault alone on cloud, cloud-tier requests one at a time (JSON and stream)."""
    _, local_port, local_ctl = start_fake(children, "local", "healthy", a.seed + 1, rundir)
    _, cloud_port, cloud_ctl = start_fake(children, "cloud", "healthy", a.seed + 2, rundir)
    config = os.path.join(rundir, "sidecar.conf")
    write_config(config, local_port, cloud_port, a)
    sidecar, port = start_sidecar(children, a.sidecar, config, rundir, a.sidecar_log_level)
    await wait_ready(port)
    fa = argparse.Namespace(cloud_share=1.0, stream_share=0.0, slow_chunk_ms=a.slow_chunk_ms)
    rows, out = [], []
    n = 0
    for fault in a.matrix_faults.split(","):
        await http_json(cloud_ctl, "POST", "/_mode", {"mode": "healthy" if fault == "ok" else "fault:" + fault})
        for stream in (False, True):
            for _ in range(a.matrix_repeats):
                n += 1
                fa.stream_share = 1.0 if stream else 0.0
                req = build_request(20_000_000 + n, random.Random(n), fa)
                conn = Conn("127.0.0.1", port)
                rec = await do_request(conn, req, a)
                conn.close()
                cs = await http_json(cloud_ctl, "GET", "/_stats")
                ls = await http_json(local_ctl, "GET", "/_stats")
                cloud_n = sum(1 for r in cs["requests"] if r[4] == req["rid"])
                local_n = sum(1 for r in ls["requests"] if r[4] == req["rid"])
                rec.update(fault=fault, cloud_attempts=cloud_n, local_attempts=local_n)
                out.append(rec)
                rows.append([fault, "stream" if stream else "json", cloud_n, local_n, rec["outcome"],
                             rec.get("status", rec.get("kind")), rec.get("model_used") or "-",
                             "yes" if rec.get("fallback") else "-", rec.get("error_code") or "-",
                             rec.get("content_chunks", "-") if stream else "-", rec["latency_ms"]])
    print()
    print("fault matrix: cloud answers every attempt with the fault, local healthy; cloud-tier prompts, "
          "max_attempts %d, breaker off" % a.max_attempts)
    print(table(rows, ["cloud fault", "kind", "cloud tries", "local tries", "outcome", "status", "X-Model-Used",
                       "fallback", "error code", "chunks", "ms"]))
    viol = [r for r in out if r["outcome"] == "violation"]
    for r in viol:
        print("  VIOLATION %s: %s" % (r["rid"], r.get("detail")))
    passed = not viol
    print("RESULT: %s" % ("PASS" if passed else "FAIL"))
    return {"schema": "llm-sidecar-chaos/1", "mode": "matrix", "passed": passed,
            "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "rows": [dict(zip(["fault", "kind", "cloud_attempts", "local_attempts", "outcome", "status",
                               "model_used", "fallback", "error_code", "content_chunks", "latency_ms"], r))
                     for r in rows],
            "run_files": os.path.relpath(rundir, REPO)}


def main():
    p = argparse.ArgumentParser(description="Chaos test for llm-sidecar (see README.md).")
    p.add_argument("--sidecar", default=os.path.join(REPO, ".build", "release", "llm-sidecar"))
    p.add_argument("--requests", type=int, default=12000, help="requests to send (default 12000)")
    p.add_argument("--min-requests", type=int, default=10000)
    p.add_argument("--min-success", type=float, default=0.999, help="success rate excluding cuts (0.999)")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--phases", default="healthy:10,mixed:25,error500:12,down:10,healthy:15",
                   help="cloud schedule MODE:SECONDS,...; requests are paced evenly over the total")
    p.add_argument("--max-seconds", type=float, default=150, help="stop issuing requests after this long")
    p.add_argument("--cloud-share", type=float, default=0.5, help="share of long (cloud-tier) prompts")
    p.add_argument("--stream-share", type=float, default=0.3)
    p.add_argument("--ready-poll-ms", type=int, default=100)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--examples", type=int, default=20, help="non-ok requests to print")
    p.add_argument("--connect-ms", dest="connect_ms", type=int, default=500)
    p.add_argument("--first-byte-ms", dest="first_byte_ms", type=int, default=1500)
    p.add_argument("--idle-ms", dest="idle_ms", type=int, default=1500)
    p.add_argument("--request-ms", dest="request_ms", type=int, default=10000)
    p.add_argument("--max-attempts", dest="max_attempts", type=int, default=3)
    p.add_argument("--consecutive-failures", dest="consecutive_failures", type=int, default=5)
    p.add_argument("--cooldown-ms", dest="cooldown_ms", type=int, default=2000)
    p.add_argument("--half-open-probes", dest="half_open_probes", type=int, default=1)
    p.add_argument("--failure-rate", dest="failure_rate", type=float, default=0.5)
    p.add_argument("--minimum-requests", dest="minimum_requests", type=int, default=20)
    p.add_argument("--matrix", action="store_true",
                   help="one fault at a time on cloud (breaker effectively off): attempts and client outcome")
    p.add_argument("--matrix-repeats", type=int, default=2)
    p.add_argument("--matrix-faults", default="ok,500,502,503,429,close,hang,slow,cut")
    p.add_argument("--sidecar-log-level", default="info", help="--matrix: the sidecar's --log-level")
    p.add_argument("--sigterm", action="store_true", help="run the SIGTERM drain test instead")
    p.add_argument("--sigterm-after", type=float, default=8.0, help="seconds of load before SIGTERM")
    p.add_argument("--sigterm-rate", type=float, default=120.0, help="requests per second in --sigterm")
    p.add_argument("--sigterm-cloud-mode", default="mixed", choices=("healthy", "mixed"))
    p.add_argument("--slow-share", type=float, default=0.3, help="--sigterm: share of streams that are slow")
    p.add_argument("--slow-chunk-ms", type=int, default=500, help="--sigterm: gap between slow stream chunks")
    p.add_argument("--signal", default="TERM", choices=("TERM", "INT", "KILL"),
                   help="--sigterm: the signal to send (KILL shows what a failed drain looks like)")
    p.add_argument("--probe-interval-ms", type=int, default=100)
    p.add_argument("--out", default="", help="JSON result path (default Benchmarks/results/chaos-DATE.json)")
    a = p.parse_args()
    a.client_timeout_ms = a.request_ms + 5000
    if not os.path.exists(a.sidecar):
        raise SystemExit("no sidecar binary at %s (swift build -c release --product llm-sidecar)" % a.sidecar)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    kind = "chaos-sigterm" if a.sigterm else ("chaos-matrix" if a.matrix else "chaos")
    if a.matrix:
        a.consecutive_failures, a.minimum_requests = 10000, 1000000
    results_dir = os.path.join(REPO, "Benchmarks", "results")
    rundir = os.path.join(results_dir, "%s-%s-files" % (kind, stamp))
    os.makedirs(rundir, exist_ok=True)
    out = a.out or os.path.join(results_dir, "%s-%s.json" % (kind, stamp))
    children = Children()

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    result = None
    try:
        main_fn = sigterm_main if a.sigterm else (matrix_main if a.matrix else chaos_main)
        result = asyncio.run(main_fn(a, children, rundir))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
    finally:
        children.stop_all()
    if result is None:
        return 1
    with open(out, "w") as f:
        json.dump(result, f, indent=2, default=str)
        f.write("\n")
    keys = ("mode", "passed", "criteria", "summary", "breaker", "inflight_at_sigterm", "inflight_outcomes",
            "exit_code", "exit_after_s", "probes", "diagnosis")
    print(json.dumps({k: result[k] for k in keys if k in result}, default=str))
    print("JSON: %s" % os.path.relpath(out, REPO))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
