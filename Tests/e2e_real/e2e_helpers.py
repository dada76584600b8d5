"""Helpers shared by the real-upstream suite: environment, a raw HTTP/1.1 client that sees
chunk timing and trailers, the request records behind the summary table, and process control."""
import dataclasses
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal

ENV_KEYS = ("E2E_SIDECAR_URL", "E2E_LOCAL_URL", "E2E_CLOUD_URL", "E2E_RUN_DIR", "E2E_CONFIG", "E2E_SIDECAR_BIN")

LOCAL_MODEL = "smollm-local"
CLOUD_MODEL = "smollm-cloud"
LOCAL_EMBEDDER = "all-MiniLM-L6-v2"
PRICES = {LOCAL_MODEL: (Decimal("0"), Decimal("0")), CLOUD_MODEL: (Decimal("2.50"), Decimal("10.00"))}
LOCAL_UPSTREAM = "llama-local"
CLOUD_UPSTREAM = "llama-cloud"
TIER_OF = {LOCAL_MODEL: "local", CLOUD_MODEL: "cloud", LOCAL_EMBEDDER: "in-process"}

SIMPLE_PROMPT = "What is 2+2?"
HARD_PROMPT = (
    "Design a multi-region architecture for a payments platform and analyze the trade-offs.\n"
    "1. Compare active-active and active-passive replication for the ledger database.\n"
    "2. Explain how you would ensure exactly-once processing of card authorizations.\n"
    "3. Evaluate the security threat model, including key management and PCI scope.\n"
    "4. Propose a migration plan from the current monolith, with failure modes and rollback.\n"
    "The design must handle 20,000 transactions per second and should justify every choice."
)


def env(name, default=None):
    value = os.environ.get(name, default)
    if value is None:
        raise RuntimeError(f"{name} is not set: run scripts/e2e-real.sh")
    return value


def have_env():
    return all(os.environ.get(k) for k in ENV_KEYS)


def run_dir():
    return pathlib.Path(env("E2E_RUN_DIR"))


def expected_cost(model, prompt_tokens, completion_tokens):
    pin, pout = PRICES[model]
    return (Decimal(prompt_tokens) * pin + Decimal(completion_tokens) * pout) / Decimal(1_000_000)


# ---- records for the summary table -------------------------------------------------------------


@dataclasses.dataclass
class Record:
    test: str
    endpoint: str
    streamed: bool
    status: int
    model: str
    upstream: str
    fallback: bool
    cache: str
    cost: Decimal | None  # X-Query-Cost (header or trailer); None when absent
    estimated: bool  # the sidecar marked the cost as an estimate
    content_chunks: int = 0  # streams: chunks that carried text (one token each from llama.cpp)
    sidecar: str = "main"  # "main", or the name of a test's extra sidecar


RECORDS: list[Record] = []
_LOCK = threading.Lock()
CURRENT_TEST = {"name": ""}


def record(headers, endpoint, status=200, streamed=False, trailers=None, content_chunks=0, sidecar="main"):
    """Notes one request that went through the sidecar. `headers` is any case-insensitive mapping
    (httpx.Headers) or a dict with lower-case keys."""
    trailers = trailers or {}

    def get(name):
        if name in trailers:
            return trailers[name]
        value = headers.get(name)
        if value is None and hasattr(headers, "get"):
            value = headers.get(name.title())
        return value

    cost = get("x-query-cost")
    rec = Record(
        test=CURRENT_TEST["name"], endpoint=endpoint, streamed=streamed, status=status,
        model=get("x-model-used") or "-", upstream=get("x-sidecar-upstream") or "-",
        fallback=(get("x-sidecar-fallback") or "").lower() == "true", cache=get("x-sidecar-cache") or "-",
        cost=Decimal(cost) if cost not in (None, "") else None,
        estimated=(get("x-sidecar-cost-estimated") or "").lower() == "true", content_chunks=content_chunks,
        sidecar=sidecar)
    with _LOCK:
        RECORDS.append(rec)
    return rec


# ---- a raw HTTP/1.1 exchange that sees chunk boundaries, their timing and the trailers ---------


@dataclasses.dataclass
class RawResponse:
    status: int
    reason: str
    head: bytes
    headers: dict  # lower-case name -> value (last one wins)
    header_list: list
    body: bytes
    chunks: list  # [(monotonic time, bytes)] for chunked bodies
    trailers: dict
    started: float
    head_at: float
    chunked: bool
    complete: bool = True  # False: the peer closed before the body's end (chunked: no last chunk)

    def json(self):
        return json.loads(self.body)

    def sse_events(self):
        """`data:` payloads, in order, with the arrival time of the chunk that completed each one.
        Accepts LF and CRLF line endings (llama.cpp's sse-starlette sends CRLF)."""
        events, buf = [], b""
        for at, data in self.chunks or [(self.head_at, self.body)]:
            buf += data
            while True:
                m = re.search(rb"\r\n\r\n|\n\n|\r\r", buf)
                if not m:
                    break
                block, buf = buf[: m.start()], buf[m.end():]
                lines = re.split(rb"\r\n|\n|\r", block)
                data_lines = [ln[5:].lstrip(b" ") if ln.startswith(b"data:") else None for ln in lines]
                data_lines = [d for d in data_lines if d is not None]
                if data_lines:
                    events.append((at, b"\n".join(data_lines).decode()))
        return events


def cache_namespace():
    """Each test its own cache namespace: no test is answered from another test's entries (the
    cache tests in test_05_cache.py use namespaces of their own)."""
    return os.environ.get("PYTEST_CURRENT_TEST", "none").split(" ")[0]


def raw_request(url, method="POST", path="/v1/chat/completions", body=None, headers=None, timeout=120,
                close=True):
    """One request over a fresh socket; reads the whole response (chunked or Content-Length),
    noting when each chunk arrived. `body` may be a dict (sent as JSON) or bytes."""
    u = urllib.parse.urlparse(url)
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    body = body or b""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {u.netloc}", "TE: trailers"]
    if method in ("POST", "PUT") or body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    headers = dict(headers or {})
    if not any(k.lower() == "x-sidecar-cache-namespace" for k in headers):
        headers["X-Sidecar-Cache-Namespace"] = cache_namespace()
    for k, v in headers.items():
        lines.append(f"{k}: {v}")
    if close:
        lines.append("Connection: close")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    started = time.monotonic()
    with socket.create_connection((u.hostname, u.port), timeout=timeout) as s:
        s.sendall(request)
        reader = _Reader(s)
        head = reader.until(b"\r\n\r\n")
        head_at = time.monotonic()
        status_line, *header_lines = head[:-4].split(b"\r\n")
        _, status, *reason = status_line.decode().split(" ", 2)
        header_list = []
        for line in header_lines:
            k, _, v = line.decode("latin-1").partition(":")
            header_list.append((k.strip(), v.strip()))
        headers = {k.lower(): v for k, v in header_list}
        chunks, trailers, body_out, complete = [], {}, b"", True
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        try:
            if method == "HEAD" or int(status) in (204, 304):
                pass
            elif chunked:
                while True:
                    size_line = reader.until(b"\r\n")
                    size = int(size_line.split(b";")[0].strip(), 16)
                    if size == 0:
                        while (line := reader.until(b"\r\n")) != b"\r\n":
                            k, _, v = line.decode("latin-1").partition(":")
                            trailers[k.strip().lower()] = v.strip()
                        break
                    data = reader.exactly(size)
                    reader.exactly(2)
                    chunks.append((time.monotonic(), data))
                    body_out += data
            elif "content-length" in headers:
                body_out = reader.exactly(int(headers["content-length"]))
            else:
                body_out = reader.rest()
        except ConnectionError:
            complete = False
    return RawResponse(int(status), reason[0] if reason else "", head, headers, header_list, body_out, chunks,
                       trailers, started, head_at, chunked, complete)


class _Reader:
    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def _more(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError(f"connection closed; {len(self.buf)} bytes pending: {self.buf[:200]!r}")
        self.buf += data

    def until(self, sep):
        while sep not in self.buf:
            self._more()
        i = self.buf.index(sep) + len(sep)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def exactly(self, n):
        while len(self.buf) < n:
            self._more()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def rest(self):
        while True:
            data = self.sock.recv(65536)
            if not data:
                out, self.buf = self.buf, b""
                return out
            self.buf += data


def get_json(url, timeout=5, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.load(r)


def readyz(sidecar_url):
    try:
        return get_json(f"{sidecar_url}/readyz")
    except urllib.error.HTTPError as e:
        return json.load(e)


def breaker_state(sidecar_url, upstream):
    return readyz(sidecar_url)["upstreams"][upstream]["breaker"]


def metric_sum(sidecar_url, name, **labels):
    """Sum of a Prometheus counter's samples whose labels include `labels`."""
    with urllib.request.urlopen(f"{sidecar_url}/metrics", timeout=5) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s+(\S+)", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            total += float(m.group(4))
    return total


# ---- processes started by the tests --------------------------------------------------------------

STARTED: list[subprocess.Popen] = []


def spawn(name, argv, env_extra=None):
    """Starts a process whose pid the script's cleanup also knows (run_dir/pids/NAME.pid)."""
    log = open(run_dir() / f"{name}.log", "ab")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, **(env_extra or {})))
    (run_dir() / "pids" / f"{name}.pid").write_text(str(proc.pid))
    STARTED.append(proc)
    return proc


def stop(proc, timeout=15):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    return proc.returncode


def stop_all_started():
    for proc in reversed(STARTED):
        stop(proc)


def wait_until(predicate, timeout, interval=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except AssertionError:
            raise
        except Exception as e:  # noqa: BLE001 - keep polling, report the last error
            last = e
        time.sleep(interval)
    raise AssertionError(f"{what} not reached after {timeout}s (last: {last!r})")


def http_ok(url, headers=None):
    try:
        req = urllib.request.Request(url, headers=headers or {})
        with urllib.request.urlopen(req, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
