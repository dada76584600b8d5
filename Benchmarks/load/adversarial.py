#!/usr/bin/env python3
"""Request bodies built to be slow: how long the sidecar takes to answer each (standard library only).

Each body is a few MB of valid JSON (under the default 16 MB limit) shaped to hit a superlinear
path if one exists: many members in one object in reverse order (sorting), escaped keys, many
messages, content parts, repeated keys, long strings of escapes, deep nesting. Every one should
take a fraction of a second: the time grows with the body, not with its square. The upstream is
Tests/sdk/fake_upstream.py; the sidecar runs on the load benchmarks' config (cache on).

Usage: Benchmarks/load/adversarial.py [--bin .build/release/llm-sidecar] [--only SUBSTRING]
"""
import argparse
import http.client
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
USER = '"messages":[{"role":"user","content":"hi"}]'


def bodies(n=200_000):
    yield "200k members, reverse order", "{%s,%s}" % (USER, ",".join('"k%07d":%d' % (n - i, i) for i in range(n)))
    yield "200k escaped keys, reverse order", "{%s,%s}" % (
        USER, ",".join('"k\\u0030%07d":%d' % (n - i, i) for i in range(n)))
    yield "200k members in one message", '{"messages":[{"role":"user","content":"hi",%s}]}' % ",".join(
        '"k%07d":1' % (n - i) for i in range(n))
    yield "100k messages", '{"messages":[%s]}' % ",".join(
        '{"role":"user","content":"m%d"}' % i for i in range(n // 2))
    yield "100k content parts", '{"messages":[{"role":"user","content":[%s]}]}' % ",".join(
        '{"type":"text","text":"p%d"}' % i for i in range(n // 2))
    yield "100k repeated keys", "{%s,%s}" % (USER, ",".join('"x":%d' % i for i in range(n // 2)))
    yield "2 MB of string escapes", '{"messages":[{"role":"user","content":"%s"}]}' % ("\\n\\u00e9" * (n + n // 4))
    yield "300k-word prompt", '{"messages":[{"role":"user","content":"%s"}]}' % " ".join(
        "w%d" % i for i in range(n + n // 2))
    yield "1M numbers with exponents", "{%s,\"x\":[%s]}" % (USER, ",".join("1.5e3" for _ in range(n * 5)))
    yield "10k-deep nesting", "{%s,\"x\":%s}" % (USER, "[" * 10_000 + "]" * 10_000)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", default=os.path.join(ROOT, ".build/release/llm-sidecar"))
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    work = tempfile.mkdtemp()
    port_file = os.path.join(work, "upstream.port")
    upstream = subprocess.Popen([sys.executable, os.path.join(ROOT, "Tests/sdk/fake_upstream.py"), port_file])
    sidecar = None
    try:
        for _ in range(100):
            if os.path.exists(port_file) and open(port_file).read().strip():
                break
            time.sleep(0.05)
        upstream_port = int(open(port_file).read())
        port = int(subprocess.check_output([sys.executable, os.path.join(HERE, "helper.py"), "ports", "1"]))
        config = open(os.path.join(HERE, "sidecar.conf.in")).read()
        config = config.replace("@PORT@", str(port)).replace("@BASE@", "http://127.0.0.1:%d/v1" % upstream_port)
        with open(os.path.join(work, "sidecar.conf"), "w") as out:
            out.write(config)
        log = open(os.path.join(work, "sidecar.log"), "w")
        sidecar = subprocess.Popen([args.bin, "serve", "--config", os.path.join(work, "sidecar.conf")],
                                   stdout=log, stderr=subprocess.STDOUT)
        for _ in range(100):
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection.request("GET", "/readyz")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        print("%-34s %10s %7s %9s" % ("body", "bytes", "status", "seconds"))
        for name, text in bodies():
            if args.only not in name:
                continue
            body = ('{"model":"gpt-4o",' + text[1:]).encode()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
            start = time.monotonic()
            try:
                connection.request("POST", "/v1/chat/completions", body=body,
                                   headers={"content-type": "application/json", "authorization": "Bearer x"})
                response = connection.getresponse()
                response.read()
                status = str(response.status)
            except OSError as error:
                status = type(error).__name__
            print("%-34s %10d %7s %9.3f" % (name, len(body), status, time.monotonic() - start), flush=True)
    finally:
        for process in (sidecar, upstream):
            if process is not None:
                process.terminate()
                process.wait()


if __name__ == "__main__":
    main()
