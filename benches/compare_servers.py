#!/usr/bin/env python3
"""v1 and v2 latency of two `upres serve` binaries, interleaved, as ratios (B / A).

For a change to the server (a refactor, a new layer): build the binary before and after, then

    python3 benches/compare_servers.py BEFORE_BINARY AFTER_BINARY [--rounds 5] [--calls 200]

Each round starts both servers in turn (same flags, a free port on 127.0.0.1, the fast engine
unless --model is given, so the figures are the server's own cost, not the model's) and measures
on each, over real HTTP from this process (stdlib only):

- v1: `--calls` sequential calls with a 64x64 PNG inline, x2 (p50, p90 of the call);
- v2: `--calls` sequential submits, each polled on its status_url every 2 ms until COMPLETED,
  then its output fetched (p50, p90 of submit to output);
- v1 with 8 concurrent clients: calls per second over `--calls` x 4 calls.

It prints every round and then, per measure, the median over the rounds of the per-round ratio
B / A (below 1: B is faster). Needs ONNX Runtime and the models of scripts/setup.sh only for
--model (the fast engine runs without them).
"""

import argparse
import base64
import concurrent.futures
import http.client
import json
import socket
import statistics
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def png(width, height):
    """An RGB PNG of a gradient, made with zlib alone."""
    raw = b"".join(
        b"\0" + b"".join(bytes(((x * 4) % 256, (y * 4) % 256, ((x + y) * 2) % 256)) for x in range(width))
        for y in range(height)
    )

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary, flags):
        self.port = free_port()
        self.process = subprocess.Popen(
            [binary, "serve", "--port", str(self.port), "--log-level", "warn", *flags],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                status, _ = self.request("GET", "/health")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise SystemExit(f"{binary} did not become healthy")

    def connect(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def request(self, method, path, body=None, connection=None):
        own = connection is None
        connection = connection or self.connect()
        headers = {"content-type": "application/json"} if body is not None else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        if own:
            connection.close()
        return response.status, data

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def measure(server, body, calls):
    connection = server.connect()
    for _ in range(10):  # warm-up
        server.request("POST", "/v1/bria-increase-resolution", body, connection)
    v1 = []
    for _ in range(calls):
        start = time.perf_counter()
        status, _ = server.request("POST", "/v1/bria-increase-resolution", body, connection)
        v1.append(time.perf_counter() - start)
        assert status == 200, status
    v2 = []
    for _ in range(calls):
        start = time.perf_counter()
        status, data = server.request("POST", "/v2/bria-increase-resolution", body, connection)
        assert status == 200, (status, data)
        job = json.loads(data)
        status_path = "/" + job["status_url"].split("/", 3)[3]
        while True:
            status, data = server.request("GET", status_path, None, connection)
            if json.loads(data)["status"] == "COMPLETED":
                break
            time.sleep(0.002)
        status, data = server.request("GET", "/" + job["response_url"].split("/", 3)[3], None, connection)
        output = json.loads(data)["output"]
        status, _ = server.request("GET", "/" + output.split("/", 3)[3], None, connection)
        assert status == 200
        v2.append(time.perf_counter() - start)
    connection.close()

    def client(n):
        c = server.connect()
        for _ in range(n):
            status, _ = server.request("POST", "/v1/bria-increase-resolution", body, c)
            assert status == 200, status
        c.close()

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(client, [calls * 4 // 8] * 8))
    rate = (calls * 4 // 8 * 8) / (time.perf_counter() - start)
    return {
        "v1 p50 ms": percentile(v1, 50) * 1e3,
        "v1 p90 ms": percentile(v1, 90) * 1e3,
        "v2 p50 ms": percentile(v2, 50) * 1e3,
        "v2 p90 ms": percentile(v2, 90) * 1e3,
        "v1 x8 calls/s": rate,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("a", help="the baseline binary (before)")
    ap.add_argument("b", help="the binary to compare (after)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--model", help="run a real model instead of the fast engine")
    args = ap.parse_args()
    flags = ["--queue-depth", "64", "--ort-library", str(ROOT / ".cache/onnxruntime/libonnxruntime.so.1.31.1"),
             "--models-dir", str(ROOT / ".cache/models")]
    flags += ["--model", args.model] if args.model else ["--engine", "fast-lanczos"]
    body = json.dumps({"image": base64.b64encode(png(64, 64)).decode(), "desired_increase": 2}).encode()
    ratios = {}
    for round_ in range(args.rounds):
        results = {}
        for name, binary in (("a", args.a), ("b", args.b)) if round_ % 2 == 0 else (("b", args.b), ("a", args.a)):
            server = Server(binary, flags)
            try:
                results[name] = measure(server, body, args.calls)
            finally:
                server.stop()
        for key in results["a"]:
            ratios.setdefault(key, []).append(results["b"][key] / results["a"][key])
        print(f"round {round_ + 1}: " + "; ".join(
            f"{key} {results['a'][key]:.2f} -> {results['b'][key]:.2f}" for key in results["a"]), flush=True)
    print("median ratio B / A over the rounds:")
    for key, values in ratios.items():
        print(f"  {key}: {statistics.median(values):.3f} (range {min(values):.3f}-{max(values):.3f})")


if __name__ == "__main__":
    sys.exit(main())
