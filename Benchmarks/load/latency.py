#!/usr/bin/env python3
"""Latency benchmarks for llm-sidecar (Python standard library only). Run by `run.sh --latency`.

Two tests, each comparing the sidecar with the same upstream reached directly, same client:

  sse   SSE inter-chunk gaps. A fake OpenAI upstream (Benchmarks/chaos/fault_upstream.py, healthy
        mode) streams --chunks content chunks --chunk-ms apart (the request's "chaos" field).
        --streams concurrent streams (starts spread over one chunk period) are read (i) directly
        from the fake and (ii) through a fresh sidecar routed to it, --sse-rounds times each,
        alternating. Every SSE event's arrival time is recorded; the gaps between consecutive
        content events of a stream are the samples (pooled over the rounds). Reported:
        p50/p90/p99/p99.9/max gap for both, and added p99 = via - direct.
  rate  Open-loop fixed rate. --rate requests/s for --duration s (after a --warmup at the same
        rate), scheduled at fixed times whatever the completions; latency is measured from the
        SCHEDULED send time (no coordinated omission). Targets: (a) the nginx stub of run.sh
        directly, (c) a fresh sidecar in front of it. Non-streaming chat completions, a new
        prompt per request, short/long alternating like chat.lua.

The client uses raw asyncio protocols (HTTP/1.1 keep-alive, incremental chunked parsing) on a
select()-based event loop, whose timers have microsecond rather than epoll's millisecond
resolution. Its own CPU and event-loop lag are reported so that a saturated client shows.

Usage (run.sh passes these; standalone use needs a running stub for `rate`):
  latency.py --bin PATH --stub-port P [--tests sse,rate] [--out FILE.json] [--wait-load 0.7]
             [--streams 200 --chunks 40 --chunk-ms 50 --sse-rounds 3]
             [--rate 1000 --duration 10 --warmup 2 --conns 64]
"""
import argparse
import asyncio
import collections
import gc
import json
import os
import platform
import random
import re
import resource
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
FAKE = os.path.join(ROOT, "Benchmarks", "chaos", "fault_upstream.py")
CLK_TCK = os.sysconf("SC_CLK_TCK")
AUTH = "Bearer sk-bench-not-a-real-key"


def log(msg):
    sys.stderr.write("[latency] %s\n" % msg)
    sys.stderr.flush()


# --------------------------------------------------------------------------------------------
# Processes, ports, machine state
# --------------------------------------------------------------------------------------------
class Children:
    """Every process started here; stopped by PID (SIGTERM, then SIGKILL after a grace)."""

    def __init__(self):
        self.procs = []

    def add(self, p):
        self.procs.append(p)
        return p

    def stop(self, p, grace=10.0):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(grace)
            except subprocess.TimeoutExpired:
                log("PID %d did not exit after SIGTERM; sending SIGKILL" % p.pid)
                p.kill()
                p.wait()
        if p in self.procs:
            self.procs.remove(p)

    def stop_all(self):
        for p in list(reversed(self.procs)):
            self.stop(p)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _stat(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()


def proc_cpu_s(pid):
    """CPU seconds (user+sys) of pid and its direct children (an nginx master and its worker)."""
    try:
        rest = _stat(pid)
    except (OSError, IndexError):
        return None
    total = int(rest[11]) + int(rest[12])
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                r = _stat(int(d))
                if int(r[1]) == pid:
                    total += int(r[11]) + int(r[12])
            except (OSError, IndexError, ValueError):
                pass
    return total / CLK_TCK


def self_cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def sys_busy_s():
    with open("/proc/stat") as f:
        parts = f.readline().split()
    return (int(parts[1]) + int(parts[2]) + int(parts[3])) / CLK_TCK


def loadavg1():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def wait_quiet(threshold, interval=20.0, limit=900.0):
    """Waits until the 1-minute load average is below threshold (0 = do not wait)."""
    if not threshold:
        return {"waited_s": 0.0, "loadavg1": loadavg1(), "quiet": None}
    t0 = time.monotonic()
    while True:
        la = loadavg1()
        if la < threshold:
            return {"waited_s": round(time.monotonic() - t0, 1), "loadavg1": la, "quiet": True}
        if time.monotonic() - t0 >= limit:
            log("load average still %.2f after %.0f s; measuring anyway (marked not quiet)" % (la, limit))
            return {"waited_s": round(time.monotonic() - t0, 1), "loadavg1": la, "quiet": False}
        log("waiting for a quiet machine: 1-min load average %.2f >= %.2f (poll every %.0f s)" % (
            la, threshold, interval))
        time.sleep(interval)


def http_get_status(port, path, timeout=2.0):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % path).encode())
            line = s.recv(64).split(b"\r\n", 1)[0].decode("latin-1")
            m = re.match(r"HTTP/\S+ (\d{3})", line)
            return int(m.group(1)) if m else None
    except OSError:
        return None


def start_fake(children, workdir):
    err = open(os.path.join(workdir, "fake-upstream.stderr"), "w")
    p = children.add(subprocess.Popen(
        [sys.executable, FAKE, "--name", "bench", "--mode", "healthy", "--summary"],
        stdout=subprocess.PIPE, stderr=err, text=True))
    line = p.stdout.readline()
    m = re.search(r"port=(\d+) control=(\d+)", line)
    if not m:
        raise SystemExit("fault_upstream.py did not start (first line %r)" % line)
    return p, int(m.group(1))


# The same sidecar config run.sh uses.
SIDECAR_CONFIG_TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sidecar.conf.in")


WARM_CONNECTIONS = 0  # --warm: warm_connections for each upstream of the sidecar under test


def sidecar_config(port, base):
    with open(SIDECAR_CONFIG_TEMPLATE) as f:
        text = f.read().replace("@PORT@", str(port)).replace("@BASE@", base)
    if WARM_CONNECTIONS:
        text = text.replace('api_key_env = ""', 'api_key_env = ""\nwarm_connections = %d' % WARM_CONNECTIONS)
    return text


def start_sidecar(children, binary, workdir, name, base, ready_timeout=30.0):
    port = free_port()
    cfg = os.path.join(workdir, "sidecar-%s.toml" % name)
    with open(cfg, "w") as f:
        f.write(sidecar_config(port, base))
    out = open(os.path.join(workdir, "sidecar-%s.log" % name), "w")
    p = children.add(subprocess.Popen([binary, "serve", "--config", cfg, "--listen", "127.0.0.1:%d" % port],
                                      stdout=out, stderr=subprocess.STDOUT))
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise SystemExit("llm-sidecar exited at start (%s); see %s" % (p.returncode, out.name))
        if http_get_status(port, "/readyz") == 200:
            log("sidecar %s: PID %d on 127.0.0.1:%d -> %s" % (name, p.pid, port, base))
            return p, port
        time.sleep(0.02)
    raise SystemExit("llm-sidecar did not answer /readyz within %.0f s; see %s" % (ready_timeout, out.name))


# --------------------------------------------------------------------------------------------
# HTTP/1.1 client pieces
# --------------------------------------------------------------------------------------------
HEAD, BODY_CL, CHUNK_SIZE, CHUNK_DATA, CHUNK_CRLF, TRAILERS, BODY_EOF, DONE = range(8)


class Response:
    """Incremental HTTP/1.1 response parser. feed() returns True once the response is complete.
    Body pieces are kept with the arrival time of the read that delivered them."""

    __slots__ = ("buf", "state", "status", "headers", "remaining", "pieces", "trailers", "t_head")

    def __init__(self):
        self.buf = bytearray()
        self.state = HEAD
        self.status = None
        self.headers = {}
        self.remaining = 0
        self.pieces = []  # [(t, bytes)]
        self.trailers = {}
        self.t_head = None

    def feed(self, data, t):
        buf = self.buf
        buf += data
        while True:
            st = self.state
            if st == HEAD:
                i = buf.find(b"\r\n\r\n")
                if i < 0:
                    return False
                lines = bytes(buf[:i]).decode("latin-1").split("\r\n")
                del buf[:i + 4]
                m = re.match(r"HTTP/\S+ (\d{3})", lines[0])
                self.status = int(m.group(1)) if m else 0
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    self.headers[k.strip().lower()] = v.strip()
                self.t_head = t
                if "chunked" in self.headers.get("transfer-encoding", "").lower():
                    self.state = CHUNK_SIZE
                elif "content-length" in self.headers:
                    self.remaining = int(self.headers["content-length"])
                    self.state = BODY_CL
                    if self.remaining == 0:
                        self.state = DONE
                        return True
                else:
                    self.state = BODY_EOF
            elif st == BODY_CL or st == CHUNK_DATA:
                if not buf:
                    return False
                n = min(len(buf), self.remaining)
                self.pieces.append((t, bytes(buf[:n])))
                del buf[:n]
                self.remaining -= n
                if self.remaining:
                    return False
                if st == BODY_CL:
                    self.state = DONE
                    return True
                self.state = CHUNK_CRLF
            elif st == CHUNK_CRLF:
                if len(buf) < 2:
                    return False
                del buf[:2]
                self.state = CHUNK_SIZE
            elif st == CHUNK_SIZE:
                i = buf.find(b"\r\n")
                if i < 0:
                    return False
                size = int(bytes(buf[:i]).split(b";")[0].strip() or b"0", 16)
                del buf[:i + 2]
                if size == 0:
                    self.state = TRAILERS
                else:
                    self.remaining = size
                    self.state = CHUNK_DATA
            elif st == TRAILERS:
                i = buf.find(b"\r\n")
                if i < 0:
                    return False
                line = bytes(buf[:i]).decode("latin-1")
                del buf[:i + 2]
                if not line:
                    self.state = DONE
                    return True
                k, _, v = line.partition(":")
                self.trailers[k.strip().lower()] = v.strip()
            elif st == BODY_EOF:
                if buf:
                    self.pieces.append((t, bytes(buf)))
                    del buf[:]
                return False
            else:
                return True

    def body(self):
        return b"".join(p for _t, p in self.pieces)


def build_request(port, body, extra_headers=""):
    return ("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
            "Authorization: %s\r\nContent-Length: %d\r\n%s\r\n" % (port, AUTH, len(body), extra_headers)
            ).encode("latin-1") + body


SHORT_PROMPTS = [
    "What is %d plus %d?",
    "Say hello to user number %d in one word, id %d.",
    "What is the capital of France? Ticket %d-%d.",
    "Translate good morning into Spanish. Ref %d/%d.",
    "Give me a synonym for happy, request %d.%d.",
]
LONG_PROMPT = (
    "Ticket %d-%d. You are a senior distributed-systems engineer reviewing a design. "
    "Analyze step by step, then prove or refute each claim with a rigorous argument. "
    "The system is a multi-region, event-sourced payment ledger: writes go through a Raft "
    "group per shard, reads are served from follower replicas with bounded staleness, and a "
    "saga coordinator compensates failed cross-shard transfers. Claims: (1) with 5 replicas "
    "per shard and quorum writes, the ledger stays linearizable during a single-region outage; "
    "(2) follower reads with a 200 ms staleness bound can never show a negative balance; "
    "(3) idempotency keys stored for 24 hours make client retries exactly-once. "
    "For each claim, compare the trade-offs of at least two alternative designs, estimate the "
    "latency and cost impact in a table, and identify the failure modes (clock skew, network "
    "partitions, split brain, duplicate delivery). Then write a Python function that, given a "
    "list of (shard, term, index, amount) log entries, detects conflicting commits and derives "
    "the minimal set of compensating transactions, with its asymptotic complexity, unit tests "
    "and a short explanation of the invariants it relies on. Finally, summarize the risks for "
    "an executive audience in three bullet points and recommend a migration plan with milestones.")


def chat_body(tag, i, stream=False, chaos=None):
    """Like chat.lua: a new prompt per request, every second one long."""
    if i % 2 == 0:
        prompt = LONG_PROMPT % (tag, i)
    else:
        prompt = SHORT_PROMPTS[i % len(SHORT_PROMPTS)] % (tag, i)
    body = {"model": "gpt-4o", "messages": [{"role": "system", "content": "You are a helpful assistant."},
                                            {"role": "user", "content": prompt}]}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    else:
        body["temperature"] = 0.2
    if chaos:
        body["chaos"] = chaos
    return json.dumps(body, separators=(",", ":")).encode()


def pct(sorted_vals, p):
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def dist_ms(values_s):
    v = sorted(values_s)
    if not v:
        return {"n": 0}
    r = {"n": len(v), "min": v[0], "mean": sum(v) / len(v)}
    for p in (50, 90, 99, 99.9):
        r["p%s" % ("%g" % p).replace(".", "")] = pct(v, p)
    r["max"] = v[-1]
    return {k: (round(x * 1000.0, 3) if k != "n" else x) for k, x in r.items()}


class LagProbe:
    """Measures the client's own event-loop lag: a timer every `period` s and how late it fires."""

    def __init__(self, period=0.005):
        self.period = period
        self.lags = []
        self.task = None

    async def run(self):
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.period
            await asyncio.sleep(self.period)
            self.lags.append(max(0.0, loop.time() - due))

    def start(self):
        self.task = asyncio.ensure_future(self.run())

    async def stop(self):
        self.task.cancel()
        try:
            await self.task
        except asyncio.CancelledError:
            pass
        return dist_ms(self.lags)


class NoGC:
    """The client's cyclic garbage collector off during a measurement (a gen-2 pass over the
    recorded samples would stall the event loop for milliseconds); refcounting still frees."""

    def __enter__(self):
        gc.collect()
        gc.freeze()
        gc.disable()

    def __exit__(self, *exc):
        gc.enable()
        gc.unfreeze()
        return False


def new_loop():
    # select() takes a timeval (microseconds); epoll rounds timer waits up to whole milliseconds.
    return asyncio.SelectorEventLoop(selectors.SelectSelector())


# --------------------------------------------------------------------------------------------
# SSE gap test
# --------------------------------------------------------------------------------------------
class StreamProto(asyncio.Protocol):
    def __init__(self, done):
        self.resp = Response()
        self.done = done
        self.transport = None
        self.t_sent = None
        self.error = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        t = time.perf_counter()
        try:
            if self.resp.feed(data, t) and not self.done.done():
                self.done.set_result(True)
        except Exception as e:  # malformed response
            self.error = "parse: %r" % e
            if not self.done.done():
                self.done.set_result(False)

    def connection_lost(self, exc):
        if not self.done.done():
            if self.resp.state == BODY_EOF:
                self.done.set_result(True)
            else:
                self.error = "connection lost (%s)" % (exc or "EOF")
                self.done.set_result(False)


def sse_events(resp):
    """[(arrival t, event bytes)] from the body pieces: an event's time is that of the read that
    delivered its terminating blank line."""
    events = []
    pending = b""
    for t, piece in resp.pieces:
        pending += piece.replace(b"\r\n", b"\n")
        while True:
            i = pending.find(b"\n\n")
            if i < 0:
                break
            events.append((t, pending[:i]))
            pending = pending[i + 2:]
    return events


def classify_event(ev):
    data = b"\n".join(line[5:].lstrip() for line in ev.split(b"\n") if line.startswith(b"data:"))
    if not data:
        return "other"
    if data.strip() == b"[DONE]":
        return "done"
    try:
        obj = json.loads(data)
    except ValueError:
        return "bad"
    for ch in obj.get("choices") or []:
        if (ch.get("delta") or {}).get("content"):
            return "content"
    return "other"


async def one_stream(port, body, start_delay, timeout):
    await asyncio.sleep(start_delay)
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    try:
        transport, proto = await loop.create_connection(lambda: StreamProto(done), "127.0.0.1", port)
    except OSError as e:
        return {"error": "connect: %s" % e}
    proto.t_sent = time.perf_counter()
    transport.write(build_request(port, body))
    try:
        ok = await asyncio.wait_for(done, timeout)
    except asyncio.TimeoutError:
        ok = False
        proto.error = "timeout after %.0f s" % timeout
    transport.close()
    resp = proto.resp
    return {"ok": ok, "error": proto.error, "status": resp.status, "t_sent": proto.t_sent,
            "t_head": resp.t_head, "resp": resp}


async def sse_round(port, n, chunks, chunk_ms, stagger_ms, tag, timeout):
    chaos = {"chunk_delay_ms": chunk_ms, "chunks": chunks}
    bodies = [chat_body(tag, i, stream=True, chaos=chaos) for i in range(n)]
    rng = random.Random(1234)
    delays = [rng.uniform(0, stagger_ms / 1000.0) for _ in range(n)]
    return await asyncio.gather(*(one_stream(port, bodies[i], delays[i], timeout) for i in range(n)))


def analyze_streams(results, chunks):
    gaps, first_event, errors, n_ok, wrong_count = [], [], collections.Counter(), 0, 0
    per_stream_max = []
    for r in results:
        if not r.get("ok") or not r.get("status") or r["status"] // 100 != 2:
            errors[r.get("error") or "HTTP %s" % r.get("status")] += 1
            continue
        evs = sse_events(r["resp"])
        kinds = [classify_event(e) for _t, e in evs]
        times = [t for (t, _e), k in zip(evs, kinds) if k == "content"]
        if "done" not in kinds:
            errors["no data: [DONE]"] += 1
            continue
        if len(times) != chunks:
            wrong_count += 1
        n_ok += 1
        if times:
            first_event.append(times[0] - r["t_sent"])
        g = [b - a for a, b in zip(times, times[1:])]
        gaps.extend(g)
        if g:
            per_stream_max.append(max(g))
    return {"streams_ok": n_ok, "streams_failed": sum(errors.values()), "errors": dict(errors),
            "streams_with_wrong_content_count": wrong_count,
            "gap_ms": dist_ms(gaps), "first_content_event_ms": dist_ms(first_event),
            "per_stream_max_gap_ms": dist_ms(per_stream_max)}


async def measure_sse(port, a, tag, pids):
    """One measured round (after a warm-up round); raw results plus CPU accounting."""
    # Warm-up: open the same number of streams once, short and fast (fills connection pools).
    await sse_round(port, a.streams, 3, 5, a.chunk_ms, tag + 1000, 30)
    await asyncio.sleep(0.5)
    probe = LagProbe()
    probe.start()
    c0, w0, s0 = self_cpu_s(), time.perf_counter(), sys_busy_s()
    p0 = {k: proc_cpu_s(pid) for k, pid in pids.items()}
    timeout = a.chunks * a.chunk_ms / 1000.0 * 4 + 30
    with NoGC():
        results = await sse_round(port, a.streams, a.chunks, a.chunk_ms, a.chunk_ms if a.stagger else 0, tag,
                                  timeout)
    c1, w1, s1 = self_cpu_s(), time.perf_counter(), sys_busy_s()
    p1 = {k: proc_cpu_s(pid) for k, pid in pids.items()}
    await probe.stop()
    return {"results": results, "wall": w1 - w0, "client_cpu": c1 - c0, "sys_busy": s1 - s0,
            "proc_cpu": {k: (p1[k] - p0[k] if p0[k] is not None and p1[k] is not None else None) for k in pids},
            "lags": probe.lags}


def merge_sse(rounds, a):
    """Pools the gaps of every round of one side (direct or via); CPU as shares of the summed wall."""
    results = [r for rd in rounds for r in rd["results"]]
    out = analyze_streams(results, a.chunks)
    wall = sum(rd["wall"] for rd in rounds)
    cpu = sum(rd["client_cpu"] for rd in rounds)
    out["rounds"] = len(rounds)
    out["streams_total"] = len(results)
    out["wall_s"] = round(wall, 3)
    out["client_cpu_pct"] = round(100.0 * cpu / wall, 1)
    out["client_loop_lag_ms"] = dist_ms([x for rd in rounds for x in rd["lags"]])
    out["per_round_gap_p99_ms"] = [analyze_streams(rd["results"], a.chunks)["gap_ms"].get("p99") for rd in rounds]
    procs = rounds[0]["proc_cpu"].keys()
    pc = {k: sum(rd["proc_cpu"][k] or 0.0 for rd in rounds) for k in procs}
    out["process_cpu_pct"] = {k: round(100.0 * pc[k] / wall, 1) for k in procs}
    known = cpu + sum(pc.values())
    busy = sum(rd["sys_busy"] for rd in rounds)
    out["other_cpu_pct"] = round(max(0.0, 100.0 * (busy - known) / wall / (os.cpu_count() or 1)), 1)
    return out


# --------------------------------------------------------------------------------------------
# Open-loop fixed-rate test
# --------------------------------------------------------------------------------------------
class Conn(asyncio.Protocol):
    def __init__(self, client):
        self.client = client
        self.transport = None
        self.resp = None
        self.idx = -1
        self.alive = True

    def connection_made(self, transport):
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, idx, data):
        self.idx = idx
        self.resp = Response()
        self.client.sent[idx] = time.perf_counter()
        self.transport.write(data)

    def data_received(self, data):
        t = time.perf_counter()
        if self.idx < 0:
            return
        try:
            complete = self.resp.feed(data, t)
        except Exception:
            self.client.finish(self, self.idx, t, 0, False, "parse error")
            return
        if complete:
            r = self.resp
            self.client.finish(self, self.idx, t, r.status, b'"choices"' in r.body(), None)

    def connection_lost(self, exc):
        self.alive = False
        if self.idx >= 0:
            self.client.finish(self, self.idx, time.perf_counter(), 0, False, "connection lost")
        self.client.lost(self)


class OpenLoopClient:
    def __init__(self, port, requests, max_conns):
        self.port = port
        self.requests = requests  # list of request bytes
        self.max_conns = max_conns
        self.idle = []
        self.conns = set()
        self.backlog = collections.deque()
        self.opening = 0
        self.base = 0
        self.reset(0)

    def reset(self, n):
        self.n = n
        self.sched = [0.0] * n
        self.sent = [0.0] * n
        self.done_t = [0.0] * n
        self.status = [0] * n
        self.ok = [False] * n
        self.err = [None] * n
        self.completed = 0
        self.queued = 0
        self.max_backlog = 0
        self.opened_during_run = 0
        self.all_done = None

    async def open(self, count):
        loop = asyncio.get_running_loop()
        for _ in range(count):
            _t, c = await loop.create_connection(lambda: Conn(self), "127.0.0.1", self.port)
            self.conns.add(c)
            self.idle.append(c)

    async def grow(self):
        self.opening += 1
        try:
            loop = asyncio.get_running_loop()
            _t, c = await loop.create_connection(lambda: Conn(self), "127.0.0.1", self.port)
            self.conns.add(c)
            self.opened_during_run += 1
            self.release(c)
        except OSError:
            pass
        finally:
            self.opening -= 1

    def release(self, c):
        if self.backlog:
            i = self.backlog.popleft()
            c.send(i, self.req(i))
        else:
            self.idle.append(c)

    def finish(self, c, idx, t, status, ok, err):
        c.idx = -1
        self.done_t[idx] = t
        self.status[idx] = status
        self.ok[idx] = ok and 200 <= status < 300
        self.err[idx] = err
        self.completed += 1
        if c.alive:
            self.release(c)
        if self.completed == self.n and self.all_done and not self.all_done.done():
            self.all_done.set_result(True)

    def lost(self, c):
        self.conns.discard(c)
        if c in self.idle:
            self.idle.remove(c)

    async def run(self, rate, duration, offset):
        """Sends rate*duration requests at fixed times; request i uses body offset+i."""
        loop = asyncio.get_running_loop()
        n = int(round(rate * duration))
        self.reset(n)
        self.all_done = loop.create_future()
        period = 1.0 / rate
        t0 = time.perf_counter() + 0.02
        self.base = offset
        i = 0
        while i < n:
            now = time.perf_counter()
            due = t0 + i * period
            if due > now:
                await asyncio.sleep(due - now)
                continue
            while i < n and t0 + i * period <= now:
                self.sched[i] = t0 + i * period
                self.dispatch(i)
                i += 1
        try:
            await asyncio.wait_for(self.all_done, 10.0)
        except asyncio.TimeoutError:
            pass
        return t0

    def req(self, i):
        # request i of this run uses the prepared body base+i (a new prompt for every request)
        return self.requests[(self.base + i) % len(self.requests)]

    def dispatch(self, i):
        if self.idle:
            self.idle.pop().send(i, self.req(i))
            return
        # No idle connection: the request waits (still timed from its scheduled time) and a new
        # connection is opened, up to max_conns.
        self.queued += 1
        self.backlog.append(i)
        self.max_backlog = max(self.max_backlog, len(self.backlog))
        if len(self.conns) + self.opening < self.max_conns:
            asyncio.ensure_future(self.grow())

    def close(self):
        for c in list(self.conns):
            if c.transport:
                c.transport.close()


async def measure_rate(port, a, tag, pids):
    total = int(round(a.rate * (a.duration + a.warmup)))
    reqs = [build_request(port, chat_body(tag, i)) for i in range(total)]
    client = OpenLoopClient(port, reqs, a.max_conns)
    await client.open(a.conns)
    if a.warmup > 0:
        await client.run(a.rate, a.warmup, 0)
    await asyncio.sleep(0.3)
    probe = LagProbe()
    probe.start()
    c0, w0, s0 = self_cpu_s(), time.perf_counter(), sys_busy_s()
    p0 = {k: proc_cpu_s(pid) for k, pid in pids.items()}
    with NoGC():
        await client.run(a.rate, a.duration, int(round(a.rate * a.warmup)))
    c1, w1, s1 = self_cpu_s(), time.perf_counter(), sys_busy_s()
    p1 = {k: proc_cpu_s(pid) for k, pid in pids.items()}
    lag = await probe.stop()
    client.close()
    n = client.n
    done = [i for i in range(n) if client.done_t[i] > 0]
    lat = [client.done_t[i] - client.sched[i] for i in done]
    svc = [client.done_t[i] - client.sent[i] for i in done if client.sent[i] > 0]
    send_lag = [client.sent[i] - client.sched[i] for i in range(n) if client.sent[i] > 0]
    statuses = collections.Counter(str(s) for s in client.status)
    errors = collections.Counter(e for e in client.err if e)
    not_ok = sum(1 for i in range(n) if not client.ok[i])
    wall = w1 - w0
    out = {
        "requests": n, "completed": len(done), "ok": n - not_ok, "errors_total": not_ok,
        "statuses": dict(statuses), "errors": dict(errors),
        "latency_ms": dist_ms(lat),
        "service_time_ms": dist_ms(svc),
        "send_lag_ms": dist_ms(send_lag),
        "sent_late_over_1ms": sum(1 for x in send_lag if x > 0.001),
        "queued_no_idle_connection": client.queued, "max_backlog": client.max_backlog,
        "connections_initial": a.conns, "connections_opened_during_run": client.opened_during_run,
        "fell_behind": bool(client.queued or any(x > 0.001 for x in send_lag)),
        "achieved_rate_per_s": round(len(done) / (max(client.done_t) - min(client.sched)), 1) if done else 0,
        "wall_s": round(wall, 3),
        "client_cpu_pct": round(100.0 * (c1 - c0) / wall, 1),
        "client_loop_lag_ms": lag,
    }
    out["process_cpu_pct"] = {k: (round(100.0 * (p1[k] - p0[k]) / wall, 1) if p0[k] is not None and p1[k] is not None
                                  else None) for k in pids}
    out["process_cpu_us_per_request"] = {
        k: (round((p1[k] - p0[k]) * 1e6 / n, 1) if p0[k] is not None and p1[k] is not None else None) for k in pids}
    known = (c1 - c0) + sum((p1[k] - p0[k]) for k in pids if p0[k] is not None and p1[k] is not None)
    out["other_cpu_pct"] = round(max(0.0, 100.0 * ((s1 - s0) - known) / wall / (os.cpu_count() or 1)), 1)
    return out


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------
def f(v, spec=".2f"):
    return "-" if v is None else format(v, spec)


def table(cols, rows, left=(0,)):
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(cols)]

    def line(cells):
        return "| " + " | ".join(c.ljust(widths[i]) if i in left else c.rjust(widths[i])
                                 for i, c in enumerate(cells)) + " |"
    out = [line(cols), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out)


def print_sse(res, a):
    rows = []
    for key, label in (("direct", "direct (fake upstream)"), ("via_sidecar", "via llm-sidecar")):
        r = res.get(key)
        if not r:
            continue
        g = r["gap_ms"]
        lag = r["client_loop_lag_ms"]
        pc = r["process_cpu_pct"]
        rows.append([label, "%d/%d" % (r["streams_ok"], r["streams_total"]), str(g.get("n", 0)), f(g.get("p50")),
                     f(g.get("p90")), f(g.get("p99")), f(g.get("p999")), f(g.get("max")),
                     f(r["first_content_event_ms"].get("p99")),
                     f(r["client_cpu_pct"], ".1f"), "%s / %s" % (f(lag.get("p99")), f(lag.get("max"))),
                     f(pc.get("fake_upstream"), ".1f"), f(pc.get("sidecar"), ".1f"), f(r["other_cpu_pct"], ".1f")])
    print()
    print("SSE inter-chunk gaps: %d concurrent streams x %d chunks, %g ms apart at the upstream "
          "(fault_upstream.py), starts spread over %s ms, %d rounds per side (alternating, pooled)" % (
              a.streams, a.chunks, a.chunk_ms, f(a.chunk_ms if a.stagger else 0, "g"), a.sse_rounds))
    print(table(["run", "streams ok", "gaps", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms",
                 "1st event p99 ms", "client CPU %", "client lag p99/max ms", "upstream CPU %",
                 "sidecar CPU %", "other CPU %"], rows))
    s = res.get("summary", {})
    if "added_p99_gap_ms" in s:
        print("added p99 gap (via - direct): %+.2f ms (target <= %.1f ms): %s; added max gap %+.2f ms" % (
            s["added_p99_gap_ms"], a.target_ms, "PASS" if s["added_p99_gap_ms"] <= a.target_ms else "FAIL",
            s["added_max_gap_ms"]))
        print("p99 gap per round, direct: %s; via: %s" % (
            ", ".join(f(x) for x in res["direct"]["per_round_gap_p99_ms"]),
            ", ".join(f(x) for x in res["via_sidecar"]["per_round_gap_p99_ms"])))
    for w in s.get("warnings", []):
        print("WARNING: " + w)


def print_rate(res, a):
    rows = []
    for key, label in (("a", "a: nginx stub, direct"), ("c", "c: llm-sidecar -> stub")):
        r = res.get(key)
        if not r:
            continue
        L, S, SL = r["latency_ms"], r["service_time_ms"], r["send_lag_ms"]
        cpu = r["process_cpu_us_per_request"]
        rows.append([label, str(r["requests"]), str(r["errors_total"]), f(L.get("p50")), f(L.get("p90")),
                     f(L.get("p99")), f(L.get("p999")), f(L.get("max")), f(S.get("p99")),
                     f(SL.get("max")), "%d/%d" % (r["queued_no_idle_connection"], r["sent_late_over_1ms"]),
                     f(r["client_cpu_pct"], ".1f"), f(cpu.get("target"), ".1f"), f(r["other_cpu_pct"], ".1f")])
    print()
    print("Open-loop fixed rate: %g req/s for %g s (after %g s warm-up), latency from the scheduled send time, "
          "%d keep-alive connections (up to %d)" % (a.rate, a.duration, a.warmup, a.conns, a.max_conns))
    print(table(["target", "requests", "errors", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms",
                 "service p99 ms", "send lag max ms", "queued/late", "client CPU %", "target CPU us/req",
                 "other CPU %"], rows))
    s = res.get("summary", {})
    if "added_p99_ms" in s:
        print("added p99 (c - a): %+.3f ms (target <= %.1f ms): %s; added p50 %+.3f ms, added max %+.2f ms" % (
            s["added_p99_ms"], a.target_ms, "PASS" if s["added_p99_ms"] <= a.target_ms else "FAIL",
            s["added_p50_ms"], s["added_max_ms"]))
    for w in s.get("warnings", []):
        print("WARNING: " + w)


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------
async def run_sse(a, children, workdir):
    res = {"config": {"streams": a.streams, "chunks": a.chunks, "chunk_delay_ms": a.chunk_ms,
                      "stagger_ms": a.chunk_ms if a.stagger else 0}}
    res["config"]["rounds"] = a.sse_rounds
    fake, fport = start_fake(children, workdir)
    log("fake upstream: PID %d on 127.0.0.1:%d" % (fake.pid, fport))
    sc, sport = start_sidecar(children, a.bin, workdir, "sse", "http://127.0.0.1:%d/v1" % fport)
    direct, via, res["quiet"] = [], [], []
    for rnd in range(a.sse_rounds):
        # Direct and via alternate, so that slow drifts of the machine hit both sides alike.
        res["quiet"].append(wait_quiet(a.wait_load))
        log("SSE round %d/%d direct: %d streams x %d chunks x %g ms" % (rnd + 1, a.sse_rounds, a.streams,
                                                                        a.chunks, a.chunk_ms))
        direct.append(await measure_sse(fport, a, 10 * rnd + 1, {"fake_upstream": fake.pid}))
        log("SSE round %d/%d via sidecar" % (rnd + 1, a.sse_rounds))
        via.append(await measure_sse(sport, a, 10 * rnd + 2, {"fake_upstream": fake.pid, "sidecar": sc.pid}))
    res["direct"] = merge_sse(direct, a)
    res["via_sidecar"] = merge_sse(via, a)
    if sc.poll() is not None:
        res["via_sidecar"]["sidecar_died"] = True
    children.stop(sc)
    children.stop(fake)
    d, v = res["direct"]["gap_ms"], res["via_sidecar"]["gap_ms"]
    warnings = []
    s = {}
    if d.get("n") and v.get("n"):
        s["added_p50_gap_ms"] = round(v["p50"] - d["p50"], 3)
        s["added_p99_gap_ms"] = round(v["p99"] - d["p99"], 3)
        s["added_max_gap_ms"] = round(v["max"] - d["max"], 3)
        s["target_ms"] = a.target_ms
        s["pass"] = s["added_p99_gap_ms"] <= a.target_ms
        if d["p99"] > a.chunk_ms + 5:
            warnings.append("direct p99 gap %.2f ms is far from the %g ms the upstream aims at: the baseline "
                            "(fake upstream or client) is noisy" % (d["p99"], a.chunk_ms))
    for key in ("direct", "via_sidecar"):
        r = res[key]
        if r["streams_failed"]:
            warnings.append("%s: %d streams failed: %s" % (key, r["streams_failed"], r["errors"]))
        if r["streams_with_wrong_content_count"]:
            warnings.append("%s: %d streams did not carry %d content events" % (
                key, r["streams_with_wrong_content_count"], a.chunks))
        if r["client_cpu_pct"] > 60 or (r["client_loop_lag_ms"].get("p99") or 0) > 5.0:
            warnings.append("%s: the client may be a bottleneck (CPU %.0f%%, loop lag p99 %s ms)" % (
                key, r["client_cpu_pct"], r["client_loop_lag_ms"].get("p99")))
        if r["other_cpu_pct"] > 5:
            warnings.append("%s: other processes used %.1f%% of the CPUs" % (key, r["other_cpu_pct"]))
    s["warnings"] = warnings
    res["summary"] = s
    return res


async def run_rate(a, children, workdir):
    res = {"config": {"rate_per_s": a.rate, "duration_s": a.duration, "warmup_s": a.warmup,
                      "connections": a.conns, "max_connections": a.max_conns}}
    stub_pid = a.stub_pid
    res["a_quiet"] = wait_quiet(a.wait_load)
    log("rate a: %g req/s x %g s -> nginx stub :%d" % (a.rate, a.duration, a.stub_port))
    res["a"] = await measure_rate(a.stub_port, a, 1, {"target": stub_pid} if stub_pid else {})
    sc, sport = start_sidecar(children, a.bin, workdir, "rate", "http://127.0.0.1:%d/v1" % a.stub_port)
    res["c_quiet"] = wait_quiet(a.wait_load)
    log("rate c: %g req/s x %g s -> llm-sidecar :%d -> stub" % (a.rate, a.duration, sport))
    pids = {"target": sc.pid}
    if stub_pid:
        pids["stub"] = stub_pid
    res["c"] = await measure_rate(sport, a, 2, pids)
    if sc.poll() is not None:
        res["c"]["sidecar_died"] = True
    children.stop(sc)
    s, warnings = {}, []
    la, lc = res["a"]["latency_ms"], res["c"]["latency_ms"]
    if la.get("n") and lc.get("n"):
        s["added_p50_ms"] = round(lc["p50"] - la["p50"], 3)
        s["added_p99_ms"] = round(lc["p99"] - la["p99"], 3)
        s["added_max_ms"] = round(lc["max"] - la["max"], 3)
        s["added_service_p99_ms"] = round(res["c"]["service_time_ms"]["p99"] - res["a"]["service_time_ms"]["p99"], 3)
        s["target_ms"] = a.target_ms
        s["pass"] = s["added_p99_ms"] <= a.target_ms
    for key in ("a", "c"):
        r = res[key]
        if r["errors_total"]:
            warnings.append("%s: %d requests failed: statuses %s, errors %s" % (key, r["errors_total"], r["statuses"],
                                                                             r["errors"]))
        if r["fell_behind"]:
            warnings.append("%s: the client fell behind schedule: %d requests found no idle connection "
                            "(max backlog %d, %d connections opened), %d sent more than 1 ms late "
                            "(max %.2f ms); latencies still count from the scheduled time" % (
                                key, r["queued_no_idle_connection"], r["max_backlog"],
                                r["connections_opened_during_run"], r["sent_late_over_1ms"],
                                r["send_lag_ms"].get("max") or 0))
        if r["other_cpu_pct"] > 5:
            warnings.append("%s: other processes used %.1f%% of the CPUs" % (key, r["other_cpu_pct"]))
    s["warnings"] = warnings
    res["summary"] = s
    return res


def main():
    p = argparse.ArgumentParser(description="llm-sidecar latency benchmarks (see the module docstring)")
    p.add_argument("--bin", default=os.path.join(ROOT, ".build", "release", "llm-sidecar"))
    p.add_argument("--tests", default="sse,rate", help="comma list: sse, rate")
    p.add_argument("--stub-port", type=int, default=0, help="nginx stub of run.sh (needed by rate)")
    p.add_argument("--stub-pid", type=int, default=0, help="its master PID (CPU accounting only)")
    p.add_argument("--streams", type=int, default=200)
    p.add_argument("--chunks", type=int, default=40)
    p.add_argument("--chunk-ms", type=float, default=50.0)
    p.add_argument("--sse-rounds", type=int, default=3,
                   help="measured rounds per side, direct and via alternating; gaps are pooled")
    p.add_argument("--no-stagger", dest="stagger", action="store_false",
                   help="start all streams at once (default: spread over one chunk period)")
    p.add_argument("--rate", type=float, default=1000.0)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--conns", type=int, default=64, help="keep-alive connections opened before the run")
    p.add_argument("--max-conns", type=int, default=1000)
    p.add_argument("--target-ms", type=float, default=1.0, help="added p99 budget (issue: 1 ms)")
    p.add_argument("--wait-load", type=float, default=0.0,
                   help="before each measurement wait until the 1-min load average is below this (0: no wait)")
    p.add_argument("--warm", type=int, default=0,
                   help="warm_connections for each upstream of the sidecar (idle connections per event loop)")
    p.add_argument("--out", default="")
    p.add_argument("--workdir", default="")
    a = p.parse_args()
    global WARM_CONNECTIONS
    WARM_CONNECTIONS = a.warm
    tests = [t.strip() for t in a.tests.split(",") if t.strip()]
    for t in tests:
        if t not in ("sse", "rate"):
            p.error("unknown test %r" % t)
    if not os.access(a.bin, os.X_OK):
        raise SystemExit("sidecar binary %s is missing (swift build -c release)" % a.bin)
    if "rate" in tests and not a.stub_port:
        p.error("the rate test needs --stub-port (run it through run.sh --latency)")
    workdir = a.workdir or tempfile.mkdtemp(prefix="llm-sidecar-latency.")
    os.makedirs(workdir, exist_ok=True)
    children = Children()

    def on_signal(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    doc = {"schema": "llm-sidecar-latency/1", "meta": {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "nproc": os.cpu_count(),
        "kernel": platform.release(), "python": platform.python_version(), "sidecar_bin": a.bin,
        "sidecar_bin_mtime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(os.path.getmtime(a.bin))),
        "loadavg_at_start": open("/proc/loadavg").read().split()[:3], "wait_load": a.wait_load,
        "workdir": workdir}}
    loop = new_loop()
    asyncio.set_event_loop(loop)
    rc = 0
    try:
        if "sse" in tests:
            doc["sse"] = loop.run_until_complete(run_sse(a, children, workdir))
        if "rate" in tests:
            doc["rate"] = loop.run_until_complete(run_rate(a, children, workdir))
    except KeyboardInterrupt:
        log("interrupted")
        rc = 130
    finally:
        children.stop_all()
        loop.close()
    doc["meta"]["loadavg_at_end"] = open("/proc/loadavg").read().split()[:3]
    if rc:
        return rc
    if "sse" in doc:
        print_sse(doc["sse"], a)
    if "rate" in doc:
        print_rate(doc["rate"], a)
    out = a.out or os.path.join(ROOT, "Benchmarks", "results", "latency-%s.json" % time.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as fh:
        json.dump(doc, fh, indent=2)
        fh.write("\n")
    print()
    print("gaps = time between consecutive content events of a stream at the client; added = via - direct "
          "(c - a); latency = from the scheduled send time to the last byte; service = from the actual send;\n"
          "queued/late = requests that found no idle connection / were sent > 1 ms after their scheduled time; "
          "other CPU = share of all CPUs used by anything but the client and the processes under test.")
    print("JSON: %s" % out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
