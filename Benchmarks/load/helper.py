#!/usr/bin/env python3
"""Helpers for Benchmarks/load/run.sh (standard library only).

  helper.py ports N                       print N distinct free TCP ports on 127.0.0.1
  helper.py report RESDIR OUT.json T,...  print the results table, write the JSON report
"""
import json
import os
import socket
import sys

NOISE_PCT = 5

DESCRIPTIONS = {
    "a": "nginx stub, direct (JSON)",
    "a-sse": "nginx stub, direct (SSE)",
    "b": "nginx proxy_pass -> stub (JSON)",
    "b-sse": "nginx proxy_pass -> stub (SSE)",
    "c": "llm-sidecar -> stub (JSON)",
    "d": "llm-sidecar -> stub (SSE relay)",
    "e": "LiteLLM proxy, 1 worker -> stub (JSON)",
}


def ports(n):
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        print(" ".join(str(s.getsockname()[1]) for s in socks))
    finally:
        for s in socks:
            s.close()


def read_kv(path):
    out = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.rstrip("\n")
                if "=" in line:
                    k, v = line.split("=", 1)
                    out[k] = v
    return out


def num(v, cast=float):
    try:
        return cast(v)
    except (TypeError, ValueError):
        return None


def load_target(resdir, t):
    wrk_path = os.path.join(resdir, t + ".wrkjson")
    if not os.path.exists(wrk_path):
        return None
    with open(wrk_path) as f:
        w = json.load(f)
    extra = read_kv(os.path.join(resdir, t + ".extra"))
    secs = w["duration_us"] / 1e6
    e = w["errors"]
    socket_errors = e["connect"] + e["read"] + e["write"] + e["timeout"]
    r = {
        "target": t,
        "description": DESCRIPTIONS.get(t, t),
        "url": extra.get("url"),
        "stream": w["stream"],
        "duration_s": round(secs, 3),
        "requests": w["requests"],
        "requests_per_s": round(w["requests"] / secs, 1) if secs > 0 else 0.0,
        "transfer_bytes": w["bytes"],
        "latency_ms": {k: round(v / 1000.0, 3) for k, v in w["latency_us"].items()},
        "errors": {
            "total": socket_errors + max(w["non2xx"], e["status"]) + w["bad_bodies"],
            "socket": {k: e[k] for k in ("connect", "read", "write", "timeout")},
            "non_2xx": w["non2xx"],
            "wrk_status_errors": e["status"],
            "bad_bodies": w["bad_bodies"],
        },
        "statuses": w["statuses"],
        "x_model_used": w["models"],
        "x_sidecar_cache": w["cache"],
        "responses_with_x_query_cost": w["with_cost"],
    }
    ticks = num(extra.get("cpu_ticks"), int)
    clk = num(extra.get("clk_tck"), int) or 100
    if ticks is not None:
        r["cpu_process"] = extra.get("cpu_process")
        r["cpu_seconds"] = round(ticks / clk, 2)
        r["cpu_us_per_request"] = round(ticks / clk * 1e6 / w["requests"], 1) if w["requests"] else None
    wall = num(extra.get("wall_us"), int)
    nproc = num(os.environ.get("BENCH_NPROC"), int) or os.cpu_count() or 1
    if wall:
        wt = num(extra.get("wrk_cpu_ticks"), int)
        ot = num(extra.get("other_cpu_ticks"), int)
        if wt is not None:
            r["wrk_cpu_seconds"] = round(wt / clk, 2)
        if ot is not None:
            # Share of all CPUs used by processes other than wrk and the ones under test.
            r["other_cpu_pct"] = round(max(0.0, ot / clk / (wall / 1e6) / nproc * 100.0), 1)
    served = num(extra.get("metric_requests_total"), float)
    if served:
        # New upstream connections and TLS handshakes per 1,000 requests the sidecar answered.
        for key, name in (("upstream_connections_per_1k", "metric_upstream_connections_opened_total"),
                          ("tls_handshakes_per_1k", "metric_upstream_tls_handshakes_total")):
            count = num(extra.get(name), float)
            r[key] = round(count / served * 1000, 2) if count is not None else None
    for k in ("ready_ms", "idle_rss_kb", "peak_rss_kb", "rss_after_kb", "config"):
        if k in extra:
            r[k] = num(extra[k]) if k != "config" else extra[k]
            if k.endswith("_kb") and r[k] is not None:
                r[k] = int(r[k])
    return r


def fmt(v, spec, dash="-"):
    return dash if v is None else format(v, spec)


def report(resdir, out_path, targets):
    meta = read_kv(os.path.join(resdir, "meta"))
    results = [r for r in (load_target(resdir, t) for t in targets) if r]
    by = {r["target"]: r for r in results}
    base_b = by.get("b", {}).get("requests_per_s")
    base_bs = by.get("b-sse", {}).get("requests_per_s")
    for r in results:
        rps = r["requests_per_s"]
        r["ratio_vs_b"] = round(rps / base_b, 3) if base_b else None
        r["ratio_vs_b_sse"] = round(rps / base_bs, 3) if (base_bs and r["stream"]) else None

    cols = ["target", "what", "req/s", "p50 ms", "p99 ms", "errors", "vs b", "vs b-sse",
            "CPU us/req", "idle RSS MB", "peak RSS MB", "ready ms", "other CPU %", "conns/1k req"]
    rows = []
    for r in results:
        rows.append([
            r["target"], r["description"], fmt(r["requests_per_s"], ",.0f"),
            fmt(r["latency_ms"]["p50"], ".2f"), fmt(r["latency_ms"]["p99"], ".2f"),
            str(r["errors"]["total"]), fmt(r["ratio_vs_b"], ".3f"), fmt(r["ratio_vs_b_sse"], ".3f"),
            fmt(r.get("cpu_us_per_request"), ".1f"),
            fmt(r["idle_rss_kb"] / 1024 if r.get("idle_rss_kb") is not None else None, ".1f"),
            fmt(r["peak_rss_kb"] / 1024 if r.get("peak_rss_kb") is not None else None, ".1f"),
            fmt(r.get("ready_ms"), ".0f"), fmt(r.get("other_cpu_pct"), ".1f"),
            fmt(r.get("upstream_connections_per_1k"), ".2f"),
        ])
    widths = [max(len(c), *(len(row[i]) for row in rows)) if rows else len(c) for i, c in enumerate(cols)]
    left = {0, 1}

    def line(cells):
        return "| " + " | ".join(c.ljust(widths[i]) if i in left else c.rjust(widths[i])
                                 for i, c in enumerate(cells)) + " |"

    print()
    print("wrk -t%s -c%s -d%s --latency (after a %s warm-up), loopback, %s CPU(s)" % (
        meta.get("threads"), meta.get("connections"), meta.get("duration"),
        meta.get("warmup"), meta.get("nproc")))
    print(line(cols))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(line(row))
    notes = []
    for r in results:
        if r["target"] in ("c", "d"):
            n = r["requests"] or 1
            models = ", ".join("%s %.1f%%" % (m, 100.0 * c / n) for m, c in sorted(r["x_model_used"].items())) or "none"
            cache = ", ".join("%s %.1f%%" % (m, 100.0 * c / n) for m, c in sorted(r["x_sidecar_cache"].items())) or "none"
            notes.append("%s: X-Model-Used: %s | X-Sidecar-Cache: %s | X-Query-Cost on %.1f%% | RSS after load %.1f MB" % (
                r["target"], models, cache, 100.0 * r["responses_with_x_query_cost"] / n,
                (r.get("rss_after_kb") or 0) / 1024))
        err = r["errors"]
        if err["total"]:
            notes.append("%s: errors: socket %s, non-2xx %d %s, 2xx without expected body %d" % (
                r["target"], err["socket"], err["non_2xx"],
                {k: v for k, v in r["statuses"].items() if not k.startswith("2")}, err["bad_bodies"]))
    noisy = [r["target"] for r in results if (r.get("other_cpu_pct") or 0) > NOISE_PCT]
    if noisy:
        notes.append("WARNING: other processes used more than %d%% of the CPUs during %s; "
                     "those rows are not comparable, rerun on a quiet machine." % (NOISE_PCT, ", ".join(noisy)))
    if notes:
        print()
        for n in notes:
            print(n)
    print()
    print("errors = socket errors + non-2xx + 2xx bodies missing the expected marker;"
          " vs b = req/s / req/s of b;\nCPU = the process under test (a: stub, b: proxy nginx, c/d: sidecar, e: LiteLLM);"
          " other CPU = share of all CPUs used by anything but wrk and the processes started here;\n"
          "conns/1k req = new upstream connections per 1,000 requests the sidecar answered (its /metrics;"
          " TLS handshakes per 1,000 are in the JSON).")

    doc = {
        "schema": "llm-sidecar-load/1",
        "meta": meta,
        "results": results,
    }
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "w") as f:
        json.dump(doc, f, indent=2, sort_keys=False)
        f.write("\n")
    print("JSON: %s" % out_path)


def main(argv):
    if len(argv) >= 3 and argv[1] == "ports":
        ports(int(argv[2]))
    elif len(argv) >= 5 and argv[1] == "report":
        report(argv[2], argv[3], [t for t in argv[4].split(",") if t])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
