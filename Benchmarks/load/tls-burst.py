#!/usr/bin/env python3
"""What a burst costs in upstream handshakes against a TLS upstream, HTTP/1.1 against HTTP/2.

A local TLS upstream: nginx (a self-signed certificate made here with openssl) in front of the
fake OpenAI upstream of the chaos benchmark, one TLS port speaking HTTP/1.1 only and one that
also offers HTTP/2 (ALPN). For each, a fresh sidecar (release build) is pointed at it with the
certificate as its `ca_file`, `warm_connections = --warm` and `max_connecting = --cap`, and
`http2 = false` or `true`. Then, per mode:

  1. a first burst of --streams SSE streams (all started at once, --chunks chunks --chunk-ms
     apart), which opens what it needs;
  2. --idle seconds with no request (longer than the pool's 60 s idle timeout, so only the warm
     connections are left);
  3. the measured burst: the same again. From the sidecar's /metrics before and after: new
     upstream connections and TLS handshakes, per 1,000 requests; the first content event's
     time after sending, p50/p99.

The bound the issue states: a burst after an idle minute opens at most the warm connections
plus the cap (per event loop: the sidecar has one pool per loop). It is printed with each mode;
an HTTP/1.1 burst of more streams than that must open one connection per stream in flight, so
HTTP/1.1 is expected to pass it only for small bursts.

Usage: tls-burst.py [--bin .build/release/llm-sidecar] [--streams 200] [--idle 65] [--out F.json]
"""
import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import latency  # noqa: E402  (processes, ports, the fake upstream)

NGINX_CONF = """
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_timeout 300s;
    keepalive_requests 1000000;
    http2_idle_timeout 300s;
    http2_max_requests 1000000;
    upstream fake {{ server 127.0.0.1:{fake}; keepalive 256; }}
    ssl_certificate {dir}/cert.pem;
    ssl_certificate_key {dir}/key.pem;
    server {{
        listen 127.0.0.1:{h1} ssl;
        location / {{ proxy_pass http://fake; proxy_http_version 1.1; proxy_set_header Connection "";
                      proxy_buffering off; }}
    }}
    server {{
        listen 127.0.0.1:{h2} ssl http2;
        location / {{ proxy_pass http://fake; proxy_http_version 1.1; proxy_set_header Connection "";
                      proxy_buffering off; }}
    }}
}}
"""


def log(msg):
    sys.stderr.write("[tls-burst] %s\n" % msg)
    sys.stderr.flush()


def metrics(port):
    import urllib.request
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5).read().decode()
    totals = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        for key in ("llm_sidecar_upstream_connections_opened_total", "llm_sidecar_upstream_tls_handshakes_total"):
            if name == key:
                totals[key] = totals.get(key, 0) + float(line.rsplit(" ", 1)[1])
    return totals


async def one_stream(port, index, chunks, chunk_ms):
    body = json.dumps({
        "model": "gpt-4o", "stream": True,
        "messages": [{"role": "user", "content": "burst %d %f" % (index, time.time())}],
        "chaos": {"chunks": chunks, "chunk_delay_ms": chunk_ms},
    }).encode()
    head = ("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Authorization: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % (latency.AUTH, len(body)))
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    t0 = time.perf_counter()
    writer.write(head.encode() + body)
    await writer.drain()
    first = None
    data = bytearray()
    while True:
        piece = await reader.read(65536)
        if not piece:
            break
        data += piece
        if first is None and b'"content"' in data:
            first = time.perf_counter() - t0
    writer.close()
    ok = data.startswith(b"HTTP/1.1 200") and b"[DONE]" in data
    return ok, first


async def burst(port, streams, chunks, chunk_ms):
    results = await asyncio.gather(*(one_stream(port, i, chunks, chunk_ms) for i in range(streams)))
    firsts = sorted(f * 1000 for ok, f in results if ok and f is not None)
    return sum(1 for ok, _ in results if ok), firsts


def percentile(values, p):
    if not values:
        return None
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def sidecar_config(port, base, ca_file, warm, cap, http2):
    with open(latency.SIDECAR_CONFIG_TEMPLATE) as f:
        text = f.read().replace("@PORT@", str(port)).replace("@BASE@", base)
    extra = 'api_key_env = ""\nca_file = "%s"\nwarm_connections = %d\nmax_connecting = %d\nhttp2 = %s' % (
        ca_file, warm, cap, "true" if http2 else "false")
    return text.replace('api_key_env = ""', extra)


def run_mode(args, children, workdir, name, tls_port, http2):
    port = latency.free_port()
    cfg = os.path.join(workdir, "sidecar-%s.toml" % name)
    with open(cfg, "w") as f:
        f.write(sidecar_config(port, "https://localhost:%d/v1" % tls_port, os.path.join(workdir, "cert.pem"),
                               args.warm, args.cap, http2))
    out = open(os.path.join(workdir, "sidecar-%s.log" % name), "w")
    proc = children.add(subprocess.Popen([args.bin, "serve", "--config", cfg], stdout=out, stderr=subprocess.STDOUT))
    deadline = time.monotonic() + 30
    while latency.http_get_status(port, "/readyz") != 200:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("sidecar %s did not start; see %s" % (name, out.name))
        time.sleep(0.05)
    time.sleep(2)  # the warm connections open
    at_start = metrics(port)
    ok1, _ = asyncio.run(burst(port, args.streams, args.chunks, args.chunk_ms))
    log("%s: first burst %d/%d ok; idle %d s" % (name, ok1, args.streams, args.idle))
    time.sleep(args.idle)
    before = metrics(port)
    ok, firsts = asyncio.run(burst(port, args.streams, args.chunks, args.chunk_ms))
    after = metrics(port)
    children.stop(proc)
    conn_key, tls_key = "llm_sidecar_upstream_connections_opened_total", "llm_sidecar_upstream_tls_handshakes_total"
    new_conns = after.get(conn_key, 0) - before.get(conn_key, 0)
    new_tls = after.get(tls_key, 0) - before.get(tls_key, 0)
    total_tls = after.get(tls_key, 0) - at_start.get(tls_key, 0)
    bound = (args.warm + args.cap) * args.loops
    result = {
        "mode": name, "streams": args.streams, "ok": ok, "first_burst_ok": ok1,
        "warm_at_start": at_start.get(tls_key, 0),
        "burst_new_connections": new_conns, "burst_tls_handshakes": new_tls,
        "burst_tls_handshakes_per_1k": round(new_tls * 1000 / max(1, args.streams), 1),
        "run_tls_handshakes_per_1k": round(total_tls * 1000 / max(1, 2 * args.streams), 1),
        "bound_warm_plus_cap": bound, "within_bound": new_conns <= bound,
        "first_content_ms_p50": percentile(firsts, 50), "first_content_ms_p99": percentile(firsts, 99),
    }
    log("%s: %s" % (name, json.dumps(result)))
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", default=os.path.join(latency.ROOT, ".build", "release", "llm-sidecar"))
    p.add_argument("--streams", type=int, default=200)
    p.add_argument("--chunks", type=int, default=10)
    p.add_argument("--chunk-ms", type=float, default=50.0)
    p.add_argument("--idle", type=float, default=65.0, help="seconds between the bursts (pool idle timeout: 60)")
    p.add_argument("--warm", type=int, default=2, help="warm_connections")
    p.add_argument("--cap", type=int, default=8, help="max_connecting")
    p.add_argument("--loops", type=int, default=os.cpu_count() or 1, help="the sidecar's event loops")
    p.add_argument("--modes", default="http1,http2")
    p.add_argument("--out", default="")
    args = p.parse_args()
    if not os.access(args.bin, os.X_OK):
        raise SystemExit("no sidecar binary at %s (swift build -c release)" % args.bin)
    children = latency.Children()
    workdir = tempfile.mkdtemp(prefix="tls-burst-")
    results = []
    try:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", os.path.join(workdir, "key.pem"), "-out",
                        os.path.join(workdir, "cert.pem"), "-days", "1", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       check=True, capture_output=True)
        _, fake_port = latency.start_fake(children, workdir)
        h1, h2 = latency.free_port(), latency.free_port()
        conf = os.path.join(workdir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(dir=workdir, fake=fake_port, h1=h1, h2=h2))
        nginx = children.add(subprocess.Popen(["nginx", "-c", conf, "-g", "daemon off;"],
                                              stderr=open(os.path.join(workdir, "nginx.stderr"), "w")))
        time.sleep(0.5)
        if nginx.poll() is not None:
            raise SystemExit("nginx did not start; see %s" % workdir)
        for mode in args.modes.split(","):
            results.append(run_mode(args, children, workdir, mode, h1 if mode == "http1" else h2, mode == "http2"))
    finally:
        children.stop_all()
    print("mode    streams ok   new conns  TLS handshakes/1k (burst, whole run)  bound  first content p50/p99 ms")
    for r in results:
        print("%-7s %7d %4d %10d %12.1f %12.1f %14d%s  %6.1f / %6.1f" % (
            r["mode"], r["streams"], r["ok"], r["burst_new_connections"], r["burst_tls_handshakes_per_1k"],
            r["run_tls_handshakes_per_1k"], r["bound_warm_plus_cap"], "" if r["within_bound"] else " (over)",
            r["first_content_ms_p50"] or -1, r["first_content_ms_p99"] or -1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"args": vars(args), "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
