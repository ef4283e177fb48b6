#!/usr/bin/env python3
"""Soak test of `upres serve`: mixed load for --minutes, a sample every --interval seconds.

Two server processes run side by side, because the engine is a per-process choice
(`--engine model` or `--engine fast-lanczos`):

* `model`: the real model (esrgan-slim) on small images (32-128 px, x2 and x4);
* `fast`:  the fast engine with emulated lognormal latency (the hosted-service emulation).

Both get the same mixed load: v1 calls, v2 submits that are polled (status, result and the
legacy poll URL in turn) to a terminal state and whose outputs are fetched, fire-and-forget v2
submits, fault rules (5xx on v1/submit/status/output, FAILED jobs, delays on polls) and
header-injected faults (`x-upres-inject`), v1 callers that hang up, a rate-limited key, and
bad requests (4xx expected). A short --ttl makes jobs expire all the time; after the TTL each
job is checked to be gone.

Every interval it records, per server: RSS (VmRSS), open descriptors (/proc/PID/fd), threads,
spooled output files, /metrics job counters and queue gauges, client counters (requests by
class, jobs accepted/completed/failed/expired, in flight) and client latency percentiles per
route. Files in --out: samples.csv, latency.csv, summary.json, soak.png, the server logs.

Pass (exit 0) when, for every server: RSS and descriptors are flat after warm-up, every
tracked v2 job was seen COMPLETED or FAILED before it expired and was gone after its TTL, the
server's v2 job counters account for every accepted submit, there was no 5xx the server did
not label as injected (`x-upres-fault`) and no connection error, and the process is alive at
the end. See benches/soak/README.md for the thresholds and why.

The load is the standard library (http.client and threads); Pillow crops the inputs from the
test photos when it is installed (else synthetic PNGs) and matplotlib draws the plot.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import collections
import csv
import datetime
import heapq
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SLUG = "bria-increase-resolution"
API_KEY = "soak-key"
FREE_KEY = "soak-free"  # rate limited: 30 rpm, burst 2
ADMIN_KEY = "soak-admin"
ROUTES = ("v1", "submit", "status", "result", "output", "bad", "job")
POLL_PATHS = ("/v2/requests/{}/status", "/v2/requests/{}", "/v1/requests/{}")

# Fault rules, the same on both servers (see README "Load testing"). Only 5xx statuses, so a 4xx
# is always the server's own answer; `fail` makes admitted jobs end FAILED; delays on polls.
FAULT_RULES = [
    {"name": "v1-502", "route": "v1", "probability": 0.03, "status": 502},
    {"name": "submit-503", "route": "submit", "probability": 0.02, "status": 503},
    {"name": "submit-fail", "route": "submit", "probability": 0.05, "fail": "GPU out of memory"},
    {"name": "status-504", "route": "status", "probability": 0.03, "status": 504},
    {"name": "result-delay", "route": "result", "probability": 0.05, "delay": 0.3},
    {"name": "output-500", "route": "output", "probability": 0.02, "status": 500},
]

# Per server: load threads and think time (seconds between a thread's requests), poll interval,
# image sizes and the server's own flags.
PROFILES = {
    "model": {
        "v1": 1, "v2": 1, "bad": 1, "pollers": 2, "think": (0.2, 0.9), "poll": 0.3,
        "sizes": (32, 32, 48, 48, 64, 64, 96, 128),
        "flags": ["--model", "esrgan-slim", "--workers", "1", "--queue-depth", "16"],
    },
    "fast": {
        "v1": 2, "v2": 3, "bad": 1, "pollers": 2, "think": (0.1, 0.5), "poll": 0.5,
        "sizes": (32, 48, 64, 96, 128),
        "flags": ["--model", "esrgan-slim", "--engine", "fast-lanczos", "--latency", "lognormal",
                  "--latency-median", "0.5", "--latency-sigma", "0.5", "--latency-max", "5",
                  "--capacity", "8", "--queue-depth", "64"],
    },
}


# ----------------------------------------------------------------------------------- inputs

def synthetic_png(size: int, alpha: bool, seed: int) -> bytes:
    """A gradient-and-noise PNG from the standard library."""
    rng = random.Random(seed)
    channels = 4 if alpha else 3
    raw = bytearray()
    for y in range(size):
        raw.append(0)
        for x in range(size):
            raw += bytes((x * 255 // size, y * 255 // size, rng.randrange(256)))
            if alpha:
                raw.append((x + y) * 255 // (2 * size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 6 if alpha else 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(bytes(raw))) + chunk(b"IEND", b""))


def make_inputs(sizes) -> dict[int, list[str]]:
    """Per size, a few base64 images: photo crops (PNG, one JPEG, one RGBA) when Pillow and the
    test photos are there, else synthetic PNGs."""
    photos = sorted((ROOT / ".cache" / "testdata").glob("*.png"))
    out: dict[int, list[str]] = {}
    try:
        import io

        from PIL import Image
    except ImportError:
        Image = None
    for size in sorted(set(sizes)):
        images = []
        if Image is not None and photos:
            for i, photo in enumerate(photos[:3]):
                with Image.open(photo) as im:
                    im = im.convert("RGB")
                    x, y = (im.width // 3 + 17 * i) % (im.width - size), (im.height // 3) % (im.height - size)
                    crop = im.crop((x, y, x + size, y + size))
                buf = io.BytesIO()
                if i == 1:
                    crop.save(buf, "JPEG", quality=90)
                elif i == 2:
                    crop.putalpha(Image.linear_gradient("L").resize((size, size)))
                    crop.save(buf, "PNG")
                else:
                    crop.save(buf, "PNG")
                images.append(base64.b64encode(buf.getvalue()).decode())
        else:
            images = [base64.b64encode(synthetic_png(size, alpha, size + alpha)).decode()
                      for alpha in (False, True)]
        out[size] = images
    return out


UNDECODABLE = base64.b64encode(b"this is not an image, " * 8).decode()


# ----------------------------------------------------------------------------------- server

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, name: str, binary: Path, out: Path, ttl: float, seed: int, leak: bool):
        self.name = name
        self.out = out
        self.spool = out / f"spool-{name}"
        self.log_path = out / f"server-{name}.log"
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.exit_code = None
        self.shutdown_seconds = None
        self.baseline: dict = {}
        self.alive_at_end = False
        faults = out / "faults.json"
        keys = out / "keys.toml"
        server_ttl = 86400 if leak else ttl
        memory = 4 << 30 if leak else 8 << 20  # small budget: most outputs spool to disk
        self.args = [str(binary), "serve", "--host", "127.0.0.1",
                     "--result-ttl", str(int(server_ttl)),
                     "--output-memory-bytes", str(memory), "--spool-dir", str(self.spool),
                     "--keys-file", str(keys), "--faults-file", str(faults),
                     "--allow-fault-headers", "--chaos-seed", str(seed),
                     "--admin-key", ADMIN_KEY, "--log-level", "warn",
                     *PROFILES[name]["flags"]]

    def start(self):
        for _ in range(5):
            self.port = free_port()
            log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(self.args + ["--port", str(self.port)], cwd=ROOT,
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            log.close()
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    status, _, _ = http_get(self.port, "/health", timeout=2)
                    if status == 200:
                        # Counters before the load: /health's 503s while the model loads.
                        self.baseline = scrape(self.port)
                        return
                except OSError:
                    pass
                time.sleep(0.2)
            if self.proc.poll() is None:
                self.proc.kill()
                raise SystemExit(f"{self.name}: not ready in 180 s, see {self.log_path}")
        raise SystemExit(f"{self.name}: could not start, see {self.log_path}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def proc_status(self) -> dict[str, int]:
        fields = {}
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"):
                    fields[key] = int(value.split()[0])
        return fields

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def spooled(self) -> int:
        try:
            return sum(1 for _ in self.spool.iterdir())
        except FileNotFoundError:
            return 0

    def stop(self, timeout: float = 40):
        if not self.alive():
            self.exit_code = self.proc.returncode if self.proc else None
            return
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.exit_code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.exit_code = self.proc.wait()
        self.shutdown_seconds = round(time.monotonic() - started, 2)


def http_get(port: int, path: str, timeout: float = 10, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


METRIC_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def scrape(port: int) -> dict:
    """The counters and gauges the soak follows, from GET /metrics and GET /health."""
    _, _, body = http_get(port, "/metrics")
    m = collections.Counter()
    for line in body.decode().splitlines():
        match = METRIC_LINE.match(line)
        if not match or line.startswith("#"):
            continue
        name, labels, value = match.group(1), dict(LABEL.findall(match.group(2) or "")), float(match.group(3))
        if name == "upres_jobs_total":
            m[f"jobs_{labels['api']}_{labels['outcome']}"] += value
        elif name == "upres_http_requests_total":
            m[f"http_{labels['status'][0]}xx"] += value
            if labels["status"].startswith("5"):
                m[f"http {labels['method']} {labels['route']} {labels['status']}"] += value
        elif name == "upres_emulation_events_total" and labels.get("kind") == "injected-status":
            if labels.get("status", "").startswith("5"):
                m["injected_5xx"] += value
                m[f"injected {labels['route']} {labels['status']}"] += value
        elif name in ("upres_queue_waiting", "upres_jobs_running"):
            m[name.removeprefix("upres_")] = value
    status, _, body = http_get(port, "/health")
    if status == 200:
        m["outputs_in_memory_bytes"] = json.loads(body).get("outputs_in_memory_bytes", 0)
    return dict(m)


# ----------------------------------------------------------------------------------- client

class Stats:
    """Client-side counters and latencies of one server (thread-safe)."""

    COUNTERS = ("requests", "ok", "expected_4xx", "rate_limited", "queue_full", "injected_5xx",
                "other_5xx", "unexpected", "conn_errors", "abandoned", "reconnects",
                "v1_ok", "accepted", "accepted_untracked", "completed", "failed_injected",
                "failed_genuine", "outputs", "output_bytes", "expiry_checked",
                "expiry_violations", "vanished", "missed_terminal")

    def __init__(self):
        self.lock = threading.Lock()
        self.c = collections.Counter()
        self.window = collections.defaultdict(list)
        self.all = collections.defaultdict(list)
        self.problems: list[str] = []

    def add(self, **counts):
        with self.lock:
            self.c.update(counts)

    def latency(self, route: str, seconds: float):
        with self.lock:
            self.window[route].append(seconds)
            self.all[route].append(seconds)

    def problem(self, text: str):
        with self.lock:
            if len(self.problems) < 50:
                self.problems.append(f"{time.strftime('%H:%M:%S')} {text}")

    def take_window(self):
        with self.lock:
            window, self.window = self.window, collections.defaultdict(list)
            return dict(self.c), window


def percentile(values, q: float):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q / 100 * len(ordered) + 0.5)) - 1))]


class Job:
    __slots__ = ("id", "sent", "accepted", "expect_fail", "terminal", "output", "polls", "check")

    def __init__(self, id_, sent, accepted, expect_fail):
        self.id, self.sent, self.accepted, self.expect_fail = id_, sent, accepted, expect_fail
        self.terminal = None  # "COMPLETED" / "FAILED" once seen
        self.output = None
        self.polls = 0
        self.check = False  # an expiry check is scheduled


class Load:
    """The load on one server: submitters, pollers and bad requests; its Stats."""

    def __init__(self, server: Server, ttl: float, inputs, stop: threading.Event, seed: int):
        self.server, self.ttl, self.inputs, self.stop = server, ttl, inputs, stop
        self.profile = PROFILES[server.name]
        self.stats = Stats()
        self.rng = random.Random(seed)
        self.jobs: dict[str, Job] = {}
        self.heap: list[tuple[float, int, str, str]] = []  # (when, n, kind, id)
        self.heap_lock = threading.Lock()
        self.counter = 0
        self.active = 0  # entries popped and being worked on
        self.submitting = threading.Event()
        self.submitting.set()
        self.threads: list[threading.Thread] = []
        self.accepted_at: collections.deque[float] = collections.deque()

    # --- plumbing
    def schedule(self, when: float, kind: str, job_id: str):
        with self.heap_lock:
            self.counter += 1
            heapq.heappush(self.heap, (when, self.counter, kind, job_id))

    def pending(self) -> int:
        with self.heap_lock:
            return len(self.heap) + self.active

    def in_flight(self) -> int:
        with self.heap_lock:
            return sum(1 for j in self.jobs.values() if j.terminal is None)

    def request(self, method, path, body=None, headers=None, conn=None, timeout=90.0):
        """(status, headers, body, seconds); raises OSError / HTTPException on a broken exchange.
        POSTs use a fresh connection; GETs may pass a kept-alive one."""
        h = {"x-api-key": API_KEY}
        if body is not None:
            h["content-type"] = "application/json"
        h.update(headers or {})
        own = conn is None
        c = conn or http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=timeout)
        try:
            start = time.monotonic()
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data, time.monotonic() - start
        except (OSError, http.client.HTTPException):
            c.close()
            raise
        finally:
            if own:
                c.close()

    def get(self, conn_box: list, path: str, headers=None):
        """GET on the thread's kept-alive connection; one retry on a stale connection."""
        for attempt in (0, 1):
            if conn_box[0] is None:
                conn_box[0] = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=90)
            try:
                return self.request("GET", path, headers=headers, conn=conn_box[0])
            except (OSError, http.client.HTTPException):
                conn_box[0] = None
                if attempt:
                    raise
                self.stats.add(reconnects=1)

    def count(self, route: str, status: int, headers: dict, body: bytes, seconds: float,
              expect: tuple[int, ...]) -> str:
        """Classifies an answer; returns its class."""
        s = self.stats
        s.add(requests=1)
        s.latency(route, seconds)
        injected = "x-upres-fault" in headers
        if status >= 500:
            if injected:
                s.add(injected_5xx=1)
                return "injected"
            s.add(other_5xx=1)
            s.problem(f"{route}: {status} not injected: {body[:200]!r}")
            return "5xx"
        if status == 429 and 429 not in expect:
            if b"Rate Limited" in body:
                s.add(rate_limited=1)
            else:
                s.add(queue_full=1)
            return "429"
        if status in expect:
            s.add(**({"ok": 1} if status < 300 else {"expected_4xx": 1}))
            return "ok"
        s.add(unexpected=1)
        s.problem(f"{route}: {status} (expected {expect}): {body[:200]!r}")
        return "unexpected"

    def broken(self, route: str, err: Exception):
        self.stats.add(requests=1, conn_errors=1)
        self.stats.problem(f"{route}: connection error {err!r}")

    def body(self, image: str | None = None, **extra) -> str:
        size = self.rng.choice(self.profile["sizes"])
        fields = {"image": image or self.rng.choice(self.inputs[size]),
                  "desired_increase": self.rng.choice((2, 4)) if size <= 64 else 2}
        if self.rng.random() < 0.3:
            fields["preserve_alpha"] = False
        fields.update(extra)
        return json.dumps(fields)

    def think(self):
        self.stop.wait(self.rng.uniform(*self.profile["think"]))

    # --- v1
    def v1_loop(self):
        rng = random.Random(self.rng.random())
        while not self.stop.is_set():
            roll = rng.random()
            headers = {}
            if roll < 0.03:
                headers["x-upres-inject"] = "502"
            elif roll < 0.05:
                self.v1_hang_up()
                self.think()
                continue
            image = UNDECODABLE if roll > 0.98 else None
            try:
                status, h, data, secs = self.request("POST", f"/v1/{SLUG}", self.body(image), headers)
            except (OSError, http.client.HTTPException) as err:
                self.broken("v1", err)
            else:
                expect = (400,) if image else (200,)
                if self.count("v1", status, h, data, secs, expect) == "ok" and status == 200:
                    if not data.startswith(b"\x89PNG"):
                        self.stats.add(unexpected=1)
                        self.stats.problem("v1: 200 without a PNG")
                    self.stats.add(v1_ok=1)
            self.think()

    def v1_hang_up(self):
        """A v1 caller that sends its request and hangs up before the answer."""
        try:
            with socket.create_connection(("127.0.0.1", self.server.port), timeout=5) as s:
                body = self.body().encode()
                s.sendall((f"POST /v1/{SLUG} HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {API_KEY}\r\n"
                           f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n").encode()
                          + body)
                time.sleep(0.02)
            self.stats.add(abandoned=1)
        except OSError as err:
            self.broken("v1", err)

    # --- v2
    def v2_loop(self):
        rng = random.Random(self.rng.random())
        while not self.stop.is_set():
            roll = rng.random()
            headers = {}
            if roll < 0.03:
                headers["x-upres-inject"] = "fail=injected by header"
            image = UNDECODABLE if 0.03 <= roll < 0.06 else None
            untracked = roll > 0.95  # fire and forget: only the server's counters see its end
            sent = time.monotonic()
            try:
                status, h, data, secs = self.request("POST", f"/v2/{SLUG}", self.body(image), headers)
            except (OSError, http.client.HTTPException) as err:
                self.broken("submit", err)
            else:
                if self.count("submit", status, h, data, secs, (200,)) == "ok":
                    job_id = json.loads(data)["request_id"]
                    with self.heap_lock:
                        self.accepted_at.append(time.monotonic())
                    if untracked:
                        self.stats.add(accepted=1, accepted_untracked=1)
                    else:
                        job = Job(job_id, sent, time.monotonic(), bool(image))
                        with self.heap_lock:
                            self.jobs[job_id] = job
                        self.stats.add(accepted=1)
                        self.schedule(time.monotonic() + self.profile["poll"], "poll", job_id)
            self.think()

    def poll_loop(self):
        conn = [None]
        rng = random.Random(self.rng.random())
        while True:
            with self.heap_lock:
                due = self.heap[0] if self.heap else None
                if due and due[0] <= time.monotonic():
                    heapq.heappop(self.heap)
                    self.active += 1
                else:
                    due = None
            if due is None:
                if self.stop.is_set() and not self.submitting.is_set() and self.pending() == 0:
                    break
                time.sleep(0.02)
                continue
            _, _, kind, job_id = due
            job = self.jobs[job_id]
            try:
                if kind == "poll":
                    self.poll(conn, job, rng)
                else:
                    self.check_expired(conn, job)
            except (OSError, http.client.HTTPException) as err:
                self.broken(kind, err)
                self.schedule(time.monotonic() + self.profile["poll"], kind, job_id)
            except Exception as err:  # a bug here must not stop the poller silently
                self.stats.add(unexpected=1)
                self.stats.problem(f"{kind} {job_id}: {err!r}")
            finally:
                with self.heap_lock:
                    self.active -= 1
        if conn[0] is not None:
            conn[0].close()

    def poll(self, conn, job: Job, rng):
        path = POLL_PATHS[job.polls % 3].format(job.id)
        job.polls += 1
        headers = {"x-upres-inject": "delay=0.2"} if rng.random() < 0.01 else None
        status, h, data, secs = self.get(conn, path, headers)
        route = "status" if path.endswith("/status") else "result"
        now = time.monotonic()
        if status == 404:
            self.stats.add(requests=1)
            self.stats.latency(route, secs)
            if now < job.sent + self.ttl:
                self.stats.add(vanished=1)
                self.stats.problem(f"job {job.id}: 404 {now - job.sent:.1f} s after submit, before its TTL")
            else:
                self.stats.add(missed_terminal=1)
                self.stats.problem(f"job {job.id}: expired before it was seen terminal")
            self.finish(job, None)
            return
        verdict = self.count(route, status, h, data, secs, (200, 422))
        if verdict != "ok":
            self.schedule(now + self.profile["poll"], "poll", job.id)
            return
        state = json.loads(data)
        if status == 422 or state.get("status") == "FAILED":
            genuine = "x-upres-fault" not in h
            self.stats.add(**({"failed_genuine": 1} if genuine else {"failed_injected": 1}))
            if genuine and not job.expect_fail:
                self.stats.add(unexpected=1)
                self.stats.problem(f"job {job.id}: FAILED without a fault: {data[:200]!r}")
            self.finish(job, "FAILED")
        elif state.get("status") == "COMPLETED":
            if job.expect_fail:
                self.stats.add(unexpected=1)
                self.stats.problem(f"job {job.id}: an undecodable image COMPLETED")
            if "output" not in state:  # the status route has no output URL: ask the result route
                status, h, data, secs = self.get(conn, f"/v2/requests/{job.id}")
                if self.count("result", status, h, data, secs, (200,)) != "ok":
                    self.schedule(now + self.profile["poll"], "poll", job.id)
                    return
                state = json.loads(data)
            self.stats.add(completed=1)
            job.output = "/" + state["output"].split("/", 3)[3]
            self.fetch_output(conn, job)
            self.finish(job, "COMPLETED")
        else:
            self.schedule(now + self.profile["poll"], "poll", job.id)

    def fetch_output(self, conn, job: Job):
        for _ in range(5):  # an injected 500 on the output route: try again
            status, h, data, secs = self.get(conn, job.output)
            if self.count("output", status, h, data, secs, (200,)) == "ok":
                if not data.startswith(b"\x89PNG"):
                    self.stats.add(unexpected=1)
                    self.stats.problem(f"job {job.id}: output is not a PNG")
                self.stats.add(outputs=1, output_bytes=len(data))
                return

    def finish(self, job: Job, terminal: str | None):
        job.terminal = terminal or "LOST"
        if terminal:
            self.stats.latency("job", time.monotonic() - job.sent)
            # Gone after its TTL: checked 2 s after the latest moment the server can have
            # recorded the submission (when its answer arrived).
            self.schedule(job.accepted + self.ttl + 2.0, "expired", job.id)
            job.check = True
        else:
            with self.heap_lock:
                self.jobs.pop(job.id, None)

    def check_expired(self, conn, job: Job):
        paths = [f"/v2/requests/{job.id}/status"] + ([job.output] if job.output else [])
        for path in paths:
            status, h, data, secs = self.get(conn, path)
            self.stats.add(requests=1)
            if status == 404:
                continue
            if status >= 500 and "x-upres-fault" in h:  # injected: look again
                self.stats.add(injected_5xx=1)
                self.schedule(time.monotonic() + 0.5, "expired", job.id)
                return
            self.stats.add(expiry_violations=1)
            self.stats.problem(f"job {job.id}: {path} answered {status} {time.monotonic() - job.accepted:.1f} s after submit (TTL {self.ttl} s)")
            break
        self.stats.add(expiry_checked=1)
        with self.heap_lock:
            self.jobs.pop(job.id, None)

    # --- bad requests, the rate-limited key, health
    def bad_loop(self):
        rng = random.Random(self.rng.random())
        port = self.server.port
        cases = [
            ("POST", f"/v1/{SLUG}", "{}", {}, (400,)),
            ("POST", f"/v2/{SLUG}", '{"image": ', {}, (400,)),
            ("POST", f"/v2/{SLUG}", self.body(), {"content-type": "text/plain"}, (406,)),
            ("POST", f"/v1/{SLUG}", self.body(), {"x-api-key": "wrong"}, (401,)),
            ("POST", "/v1/some-other-model", self.body(), {}, (404,)),
            ("POST", f"/v2/{SLUG}", json.dumps({"image": "not base64 !!!"}), {}, (400,)),
            ("POST", f"/v1/{SLUG}", self.body(desired_increase=3), {}, (400,)),
            ("GET", f"/v2/requests/{'0' * 8}-0000-4000-8000-{'0' * 12}/status", None, {}, (404,)),
            ("GET", "/v2/requests/not-a-uuid", None, {}, (404,)),
            ("GET", f"/outputs/{'1' * 8}-1111-4111-8111-{'1' * 12}.png", None, {}, (404,)),
            ("GET", f"/v1/{SLUG}", None, {}, (405,)),
            ("GET", "/no/such/route", None, {}, (404,)),
            ("POST", f"/v1/{SLUG}", self.body(image=self.inputs[min(self.inputs)][0]),
             {"x-api-key": FREE_KEY}, (200,)),
            ("GET", "/v1/get-user-credits", None, {}, (200,)),
            ("GET", "/health", None, {}, (200,)),
            ("GET", "/models", None, {}, (200,)),
        ]
        while not self.stop.is_set():
            method, path, body, headers, expect = rng.choice(cases)
            try:
                status, h, data, secs = self.request(method, path, body, headers)
            except (OSError, http.client.HTTPException) as err:
                self.broken("bad", err)
            else:
                if self.count("bad", status, h, data, secs, expect) == "ok" and status == 200 \
                        and method == "POST":
                    self.stats.add(v1_ok=1)  # the rate-limited key's call went through
            self.think()

    def fd_leak_loop(self, interval: float):
        """--simulate-fd-leak: a client that opens two connections per interval and never
        closes them (the server keeps idle connections open)."""
        held = []
        while not self.stop.wait(interval):
            for _ in range(2):
                held.append(socket.create_connection(("127.0.0.1", self.server.port)))
        for s in held:
            s.close()

    def guard(self, loop):
        """Runs a load loop; a bug in the client is recorded (and fails the run), not hidden."""
        while True:
            try:
                return loop()
            except Exception as err:  # noqa: BLE001
                self.stats.add(unexpected=1)
                self.stats.problem(f"client error in {getattr(loop, '__name__', 'loop')}: {err!r}")
                if self.stop.is_set():
                    return

    def start(self, fd_leak: float | None):
        p = self.profile
        plan = ([self.v1_loop] * p["v1"] + [self.v2_loop] * p["v2"] + [self.bad_loop] * p["bad"]
                + [self.poll_loop] * p["pollers"])
        if fd_leak:
            plan.append(lambda: self.fd_leak_loop(fd_leak))
        for target in plan:
            t = threading.Thread(target=self.guard, args=(target,), daemon=True)
            t.start()
            self.threads.append(t)


# ----------------------------------------------------------------------------------- verdict

def slope(ts, ys):
    n = len(ts)
    mt, my = sum(ts) / n, sum(ys) / n
    var = sum((t - mt) ** 2 for t in ts)
    return sum((t - mt) * (y - my) for t, y in zip(ts, ys)) / var if var else 0.0


def judge(args, samples, loads, servers, load_end, finals) -> tuple[bool, dict]:
    warmup = min(max(args.warmup_fraction * load_end, 1.5 * args.ttl), 0.5 * load_end)
    checks = {}
    for name, load in loads.items():
        rows = [r for r in samples if r["server"] == name and r["t"] <= load_end + 1e-6]
        warm = [r for r in rows if r["t"] < warmup]
        post = [r for r in rows if r["t"] >= warmup]
        c = {}
        if len(post) < 3 or not warm:
            c["samples"] = {"pass": False, "why": f"{len(post)} samples after a {warmup:.0f} s warm-up; run longer"}
        else:
            ts = [r["t"] for r in post]
            rss = [r["rss_kib"] / 1024 for r in post]
            median = sorted(rss)[len(rss) // 2]
            growth = slope(ts, rss) * (ts[-1] - ts[0])
            growth_pct = 100 * growth / median
            band = max(rss) - min(rss)
            band_limit = max(args.rss_band_pct / 100 * median, args.rss_band_mib)
            c["rss_trend"] = {
                "pass": growth_pct < args.rss_growth_pct,
                "why": f"least-squares trend after warm-up {growth:+.1f} MiB over {ts[-1] - ts[0]:.0f} s = "
                       f"{growth_pct:+.2f}% of the median {median:.1f} MiB (limit {args.rss_growth_pct}%)"}
            c["rss_band"] = {
                "pass": band <= band_limit,
                "why": f"max - min after warm-up {band:.1f} MiB (limit {band_limit:.1f} MiB)"}
            fd_warm, fd_post = max(r["fds"] for r in warm), max(r["fds"] for r in post)
            c["fds"] = {"pass": fd_post <= fd_warm + args.fd_slack,
                        "why": f"max after warm-up {fd_post}, max during warm-up {fd_warm}, slack {args.fd_slack}"}
        s = load.stats.c
        left = load.in_flight()
        c["jobs_terminal"] = {
            "pass": s["missed_terminal"] == 0 and s["vanished"] == 0 and left == 0,
            "why": f"{s['accepted'] - s['accepted_untracked']} tracked: {s['completed']} COMPLETED, "
                   f"{s['failed_injected'] + s['failed_genuine']} FAILED, {s['missed_terminal']} expired first, "
                   f"{s['vanished']} vanished before their TTL, {left} still in flight"}
        c["expiry"] = {"pass": s["expiry_violations"] == 0 and s["expiry_checked"] > 0,
                       "why": f"{s['expiry_checked']} jobs checked gone after their TTL, "
                              f"{s['expiry_violations']} still there"}
        final = finals.get(name, {})
        finished = sum(final.get(f"jobs_v2_{o}", 0) for o in ("completed", "failed", "expired"))
        c["server_job_count"] = {
            "pass": finished == s["accepted"],
            "why": f"server v2 jobs finished {finished:.0f} (completed {final.get('jobs_v2_completed', 0):.0f}, "
                   f"failed {final.get('jobs_v2_failed', 0):.0f}, expired while queued "
                   f"{final.get('jobs_v2_expired', 0):.0f}) vs {s['accepted']} accepted "
                   f"({s['accepted_untracked']} never polled)"}
        v1_done = final.get("jobs_v1_completed", 0)
        c["v1_count"] = {
            "pass": s["v1_ok"] <= v1_done <= s["v1_ok"] + s["abandoned"],
            "why": f"server v1 completed {v1_done:.0f}; client saw {s['v1_ok']} PNGs (+{s['abandoned']} hung up)"}
        base = servers[name].baseline
        server_5xx = final.get("http_5xx", 0) - base.get("http_5xx", 0)
        injected = final.get("injected_5xx", 0) - base.get("injected_5xx", 0)
        c["no_unlabelled_5xx"] = {
            "pass": s["other_5xx"] == 0 and server_5xx == injected,
            "why": f"client: {s['injected_5xx']} injected 5xx, {s['other_5xx']} not injected; "
                   f"server (since ready): {server_5xx:.0f} 5xx answered, {injected:.0f} injected"}
        c["no_broken_exchanges"] = {
            "pass": s["conn_errors"] == 0 and s["unexpected"] == 0,
            "why": f"{s['conn_errors']} connection errors, {s['unexpected']} answers against the contract"}
        c["alive"] = {"pass": servers[name].alive_at_end,
                      "why": f"alive at the end: {servers[name].alive_at_end}; SIGTERM exit code "
                             f"{servers[name].exit_code} after {servers[name].shutdown_seconds} s"}
        checks[name] = c
    ok = all(v["pass"] for c in checks.values() for v in c.values())
    return ok, {"warmup_seconds": warmup, "checks": checks}


# ----------------------------------------------------------------------------------- plot

def plot(samples, latency_rows, load_end, warmup, path: Path, title: str):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (benches/soak/run.sh installs it)", file=sys.stderr)
        return False
    names = sorted({r["server"] for r in samples})
    fig, axes = plt.subplots(3 + len(names), 1, figsize=(11, 3.0 * (3 + len(names))), sharex=True)
    colors = {"model": "tab:blue", "fast": "tab:orange"}

    def series(name, key, rows=samples):
        pts = [(r["t"] / 60, r[key]) for r in rows if r["server"] == name and r.get(key) not in (None, "")]
        return [p[0] for p in pts], [p[1] for p in pts]

    ax = axes[0]
    for n in names:
        x, y = series(n, "rss_kib")
        ax.plot(x, [v / 1024 for v in y], color=colors.get(n), label=f"{n} RSS")
    ax.set_ylabel("RSS (MiB)")
    ax.set_ylim(bottom=0)
    ax.legend(loc="lower right")
    ax = axes[1]
    for n in names:
        x, y = series(n, "fds")
        ax.plot(x, y, color=colors.get(n), label=f"{n} open fds")
        x, y = series(n, "threads")
        ax.plot(x, y, color=colors.get(n), linestyle=":", label=f"{n} threads")
    ax.set_ylabel("count")
    ax.set_ylim(bottom=0)
    ax.legend(loc="lower right", ncol=2)
    for i, n in enumerate(names):
        ax = axes[2 + i]
        for route, color in (("v1", "tab:blue"), ("submit", "tab:green"), ("result", "tab:purple"),
                             ("output", "tab:brown"), ("job", "tab:red")):
            rows = [r for r in latency_rows if r["server"] == n and r["route"] == route and r["n"]]
            if not rows:
                continue
            x = [r["t"] / 60 for r in rows]
            ax.plot(x, [r["p50_ms"] for r in rows], color=color, label=f"{route} p50")
            ax.plot(x, [r["p99_ms"] for r in rows], color=color, linestyle="--", label="p99", alpha=0.7)
        ax.set_yscale("log")
        ax.set_ylabel(f"{n}: latency (ms)")
        ax.legend(loc="upper left", ncol=5, fontsize=7)
    ax = axes[-1]
    for n in names:
        x, y = series(n, "accepted")
        ax.plot(x, y, color=colors.get(n), label=f"{n} v2 accepted")
        x, y = series(n, "expiry_checked")
        ax.plot(x, y, color=colors.get(n), linestyle="--", label=f"{n} checked expired")
    ax.set_ylabel("v2 jobs (cumulative)")
    ax.legend(loc="upper left", fontsize=8)
    ax2 = ax.twinx()
    for n in names:
        x, y = series(n, "live_jobs")
        ax2.plot(x, y, color=colors.get(n), linestyle=":", label=f"{n} jobs on record (client est.)")
        x, y = series(n, "spooled")
        ax2.plot(x, y, color=colors.get(n), linestyle="-.", alpha=0.6, label=f"{n} spooled files")
    ax2.set_ylabel("now")
    ax2.set_ylim(bottom=0)
    ax2.legend(loc="lower right", fontsize=8)
    for ax in axes:
        ax.axvspan(0, warmup / 60, color="0.9", zorder=0)
        ax.axvline(load_end / 60, color="0.5", linewidth=0.8)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("minutes (grey: warm-up; line: load stops, drain)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return True


# ----------------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30, help="length of the load")
    ap.add_argument("--interval", type=float, default=10, help="seconds between samples")
    ap.add_argument("--ttl", type=float, default=60, help="the servers' --result-ttl (seconds)")
    ap.add_argument("--out", type=Path, help="output folder (default .cache/soak/<date>)")
    ap.add_argument("--binary", type=Path, default=ROOT / "target/release/upres")
    ap.add_argument("--servers", default="model,fast", help="which servers: model, fast or both")
    ap.add_argument("--seed", type=int, default=42, help="client and chaos seed")
    ap.add_argument("--warmup-fraction", type=float, default=0.2,
                    help="warm-up: this part of the run, at least 1.5 TTL (at most half the run)")
    ap.add_argument("--rss-growth-pct", type=float, default=5.0,
                    help="largest RSS trend after warm-up, in %% of the median, over the run")
    ap.add_argument("--rss-band-pct", type=float, default=10.0,
                    help="largest RSS max - min after warm-up, in %% of the median ...")
    ap.add_argument("--rss-band-mib", type=float, default=16.0, help="... or this many MiB if more")
    ap.add_argument("--fd-slack", type=int, default=8,
                    help="descriptors allowed after warm-up above the warm-up maximum")
    ap.add_argument("--plot", type=Path, help="also write the PNG here (e.g. docs/src/images/soak.png)")
    ap.add_argument("--bless", action="store_true", help="same as --plot docs/src/images/soak.png")
    ap.add_argument("--simulate-leak", action="store_true",
                    help="(to see the checks fail) servers keep jobs a day and outputs in memory: "
                         "the store grows and nothing expires")
    ap.add_argument("--simulate-fd-leak", action="store_true",
                    help="(to see the checks fail) a client opens 2 idle connections per interval and keeps them")
    args = ap.parse_args()
    if args.bless and not args.plot:
        args.plot = ROOT / "docs" / "src" / "images" / "soak.png"

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = (args.out or ROOT / ".cache" / "soak" / stamp).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if not args.binary.exists():
        raise SystemExit(f"{args.binary} missing: cargo build --release -p upres-cli")
    (out / "faults.json").write_text(json.dumps({"rules": FAULT_RULES}, indent=1))
    (out / "keys.toml").write_text(
        f'[[keys]]\nkey = "{API_KEY}"\nname = "soak"\n\n'
        f'[[keys]]\nkey = "{FREE_KEY}"\nname = "soak-free"\nrpm = 30\nburst = 2\n')

    names = [n.strip() for n in args.servers.split(",") if n.strip()]
    servers = {n: Server(n, args.binary.resolve(), out, args.ttl, args.seed, args.simulate_leak) for n in names}
    atexit.register(lambda: [s.proc.kill() for s in servers.values() if s.alive()])
    for s in servers.values():
        shutil.rmtree(s.spool, ignore_errors=True)
        s.start()
        print(f"{s.name}: pid {s.pid} on 127.0.0.1:{s.port}", flush=True)
    inputs = make_inputs(sorted({x for n in names for x in PROFILES[n]["sizes"]}))

    stop = threading.Event()
    loads = {n: Load(servers[n], args.ttl, inputs, stop, args.seed + i) for i, n in enumerate(names)}
    sample_fields = ["t", "phase", "server", "rss_kib", "hwm_kib", "rss_anon_kib", "fds", "threads",
                     "spooled", "outputs_in_memory_bytes", "queue_waiting", "jobs_running",
                     "jobs_v1_completed", "jobs_v1_failed", "jobs_v2_completed", "jobs_v2_failed",
                     "http_2xx", "http_4xx", "http_5xx", "injected_5xx_server", "live_jobs",
                     *Stats.COUNTERS, "in_flight"]
    lat_fields = ["t", "server", "route", "n", "p50_ms", "p95_ms", "p99_ms", "max_ms"]
    samples, latency_rows = [], []
    samples_f = open(out / "samples.csv", "w", newline="")
    lat_f = open(out / "latency.csv", "w", newline="")
    sw, lw = csv.DictWriter(samples_f, sample_fields), csv.DictWriter(lat_f, lat_fields)
    sw.writeheader()
    lw.writeheader()
    finals: dict[str, dict] = {}

    t0 = time.monotonic()
    load_seconds = args.minutes * 60

    def sample(phase: str):
        t = round(time.monotonic() - t0, 1)
        for n, load in loads.items():
            s = servers[n]
            row = {"t": t, "phase": phase, "server": n}
            try:
                st = s.proc_status()
                row.update(rss_kib=st["VmRSS"], hwm_kib=st["VmHWM"], rss_anon_kib=st.get("RssAnon"),
                           threads=st["Threads"], fds=s.fds())
                m = scrape(s.port)
                finals[n] = m
            except (OSError, ValueError, KeyError) as err:
                load.stats.problem(f"sampling failed: {err!r}")
                m = {}
            row.update(spooled=s.spooled(), outputs_in_memory_bytes=m.get("outputs_in_memory_bytes"),
                       queue_waiting=m.get("queue_waiting"), jobs_running=m.get("jobs_running"),
                       jobs_v1_completed=m.get("jobs_v1_completed", 0), jobs_v1_failed=m.get("jobs_v1_failed", 0),
                       jobs_v2_completed=m.get("jobs_v2_completed", 0), jobs_v2_failed=m.get("jobs_v2_failed", 0),
                       http_2xx=m.get("http_2xx", 0), http_4xx=m.get("http_4xx", 0), http_5xx=m.get("http_5xx", 0),
                       injected_5xx_server=m.get("injected_5xx", 0))
            counters, window = load.stats.take_window()
            row.update({k: counters.get(k, 0) for k in Stats.COUNTERS})
            row["in_flight"] = load.in_flight()
            # Jobs the server should hold now: accepted within the last TTL.
            with load.heap_lock:
                q, now = load.accepted_at, time.monotonic()
                while q and q[0] <= now - args.ttl:
                    q.popleft()
                row["live_jobs"] = len(q)
            samples.append(row)
            sw.writerow(row)
            for route in ROUTES:
                v = window.get(route, [])
                lr = {"t": t, "server": n, "route": route, "n": len(v)}
                if v:
                    lr.update(p50_ms=round(1000 * percentile(v, 50), 2), p95_ms=round(1000 * percentile(v, 95), 2),
                              p99_ms=round(1000 * percentile(v, 99), 2), max_ms=round(1000 * max(v), 2))
                latency_rows.append(lr)
                lw.writerow(lr)
            lat = {r: percentile(window.get(r, []), 50) for r in ("v1", "job")}
            print(f"[{t:7.1f}s {phase:5}] {n:5} rss {row.get('rss_kib', 0) / 1024:6.1f} MiB  fds {row.get('fds')}  "
                  f"thr {row.get('threads')}  spool {row['spooled']}  req {counters.get('requests', 0)}  "
                  f"acc {counters.get('accepted', 0)}  done {counters.get('completed', 0)}+"
                  f"{counters.get('failed_injected', 0) + counters.get('failed_genuine', 0)}F  "
                  f"flight {row['in_flight']}  exp {counters.get('expiry_checked', 0)}  "
                  f"inj5xx {counters.get('injected_5xx', 0)}  bad5xx {counters.get('other_5xx', 0)}  "
                  f"v1 p50 {1000 * (lat['v1'] or 0):.0f} ms  job p50 {1000 * (lat['job'] or 0):.0f} ms",
                  flush=True)
        samples_f.flush()
        lat_f.flush()

    for load in loads.values():
        load.start(args.interval if args.simulate_fd_leak else None)
    sample("load")
    next_t = args.interval
    interrupted = False
    try:
        while time.monotonic() - t0 < load_seconds:
            time.sleep(max(0.0, min(next_t, load_seconds) - (time.monotonic() - t0)))
            if time.monotonic() - t0 >= next_t - 0.05:
                sample("load")
                next_t += args.interval
            if not all(s.alive() for s in servers.values()):
                print("a server died: stopping", file=sys.stderr)
                break
    except KeyboardInterrupt:
        interrupted = True
    load_end = time.monotonic() - t0
    # Drain: no new requests; pollers see every job to its end and check its expiry.
    stop.set()
    for load in loads.values():
        load.submitting.clear()
    drain_deadline = time.monotonic() + args.ttl + 30
    while any(l.pending() for l in loads.values()) and time.monotonic() < drain_deadline:
        time.sleep(min(args.interval, 1.0))
        if time.monotonic() - t0 >= next_t:
            sample("drain")
            next_t += args.interval
    time.sleep(1.0)
    sample("end")
    for s in servers.values():
        s.alive_at_end = s.alive()
        s.stop()
    samples_f.close()
    lat_f.close()

    ok, verdict = judge(args, [r for r in samples if r["phase"] == "load"], loads, servers, load_end, finals)
    if interrupted:
        ok = False
    summary = {
        "date": stamp, "minutes": args.minutes, "interval": args.interval, "ttl": args.ttl,
        "seed": args.seed, "load_seconds": round(load_end, 1), "pass": ok,
        "simulate_leak": args.simulate_leak, "simulate_fd_leak": args.simulate_fd_leak,
        "thresholds": {"warmup_fraction": args.warmup_fraction, "rss_growth_pct": args.rss_growth_pct,
                       "rss_band_pct": args.rss_band_pct, "rss_band_mib": args.rss_band_mib,
                       "fd_slack": args.fd_slack},
        **verdict, "servers": {},
    }
    for n, load in loads.items():
        rows = [r for r in samples if r["server"] == n and "rss_kib" in r]
        post = [r for r in rows if r["phase"] == "load" and r["t"] >= verdict["warmup_seconds"]]
        lat = {r: {f"p{q}_ms": round(1000 * percentile(v, q), 1) for q in (50, 95, 99)} | {"n": len(v)}
               for r, v in load.stats.all.items() if v}
        summary["servers"][n] = {
            "args": servers[n].args[1:],
            "rss_mib": {"first": round(rows[0]["rss_kib"] / 1024, 1),
                        "after_warmup": round(post[0]["rss_kib"] / 1024, 1) if post else None,
                        "end_of_load": round(post[-1]["rss_kib"] / 1024, 1) if post else None,
                        "after_drain": round(rows[-1]["rss_kib"] / 1024, 1),
                        "min_after_warmup": round(min(r["rss_kib"] for r in post) / 1024, 1) if post else None,
                        "max_after_warmup": round(max(r["rss_kib"] for r in post) / 1024, 1) if post else None,
                        "peak_hwm": round(max(r["hwm_kib"] for r in rows) / 1024, 1)},
            "fds": {"first": rows[0]["fds"], "min": min(r["fds"] for r in rows),
                    "max": max(r["fds"] for r in rows), "after_drain": rows[-1]["fds"]},
            "threads": {"min": min(r["threads"] for r in rows), "max": max(r["threads"] for r in rows)},
            "counters": dict(load.stats.c),
            "server_metrics_at_ready": servers[n].baseline,
            "server_metrics_at_end": finals.get(n, {}),
            "latency_ms": lat,
            "problems": load.stats.problems,
        }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    title = (f"upres soak {stamp}: {args.minutes:g} min, TTL {args.ttl:g} s, sample every {args.interval:g} s "
             f"- {'PASS' if ok else 'FAIL'}")
    for path in [out / "soak.png"] + ([args.plot] if args.plot else []):
        plot(samples, latency_rows, load_end, verdict["warmup_seconds"], Path(path), title)

    print()
    for n, c in verdict["checks"].items():
        for check, v in c.items():
            print(f"{'PASS' if v['pass'] else 'FAIL'}  {n:5} {check:20} {v['why']}")
        for p in loads[n].stats.problems[:10]:
            print(f"      {n}: {p}")
    print(f"\n{'PASS' if ok else 'FAIL'}: {out}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
