"""Locust load test of the v2 (async) submit-and-poll flow of `upres serve`.

Each simulated user loops: submit a job, poll its status until it ends, fetch the
result, then submit the next one. So `-u N` keeps about N jobs in flight.

    locust -f benches/load/locustfile.py --headless -u 4 -r 4 -t 60s \
        --host http://127.0.0.1:8765 --only-summary

Rows in Locust's statistics:
    POST submit   the POST /v2/bria-increase-resolution itself
    GET  status   every poll of the job's status_url
    GET  result   the final GET of response_url (COMPLETED jobs only)
    JOB  job      one per job: time from submit to COMPLETED/FAILED;
                  a failure when the job FAILED (with its error) or timed out

Settings (environment variables):
    UPRES_API_KEY        sent as x-api-key (not sent when unset)
    UPRES_LOAD_SIZE      side of the square test PNG, in pixels (default 64)
    UPRES_LOAD_SCALE     desired_increase, 2 or 4 (default 2)
    UPRES_LOAD_POLL      seconds between status polls (default 0.5)
    UPRES_LOAD_TIMEOUT   seconds before a job counts as timed out (default 120)
"""

import base64
import os
import struct
import time
import zlib

from locust import HttpUser, constant, task

API_KEY = os.environ.get("UPRES_API_KEY")
SIZE = int(os.environ.get("UPRES_LOAD_SIZE", "64"))
SCALE = int(os.environ.get("UPRES_LOAD_SCALE", "2"))
POLL = float(os.environ.get("UPRES_LOAD_POLL", "0.5"))
TIMEOUT = float(os.environ.get("UPRES_LOAD_TIMEOUT", "120"))


def gradient_png(size):
    """A size x size RGB PNG with a colour gradient, built with zlib + struct only."""

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    step = 255 / max(size - 1, 1)
    rows = bytearray()
    for y in range(size):
        rows.append(0)  # filter type "None" for this scanline
        for x in range(size):
            rows += bytes((round(x * step), round(y * step), 128))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(bytes(rows), 9)) + chunk(b"IEND", b""))


# Built once at start; every submit sends the same image as a data: URI.
IMAGE = "data:image/png;base64," + base64.b64encode(gradient_png(SIZE)).decode()
HEADERS = {"x-api-key": API_KEY} if API_KEY else {}


class JobFailed(Exception):
    """Reported as the failure of a JOB row (message = the job's error)."""


def json_of(resp):
    """The response's JSON object, or {} when the body is not one."""
    try:
        body = resp.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def error_text(resp):
    """`HTTP <code>: <error>` from an error response, so failures group by status."""
    if resp.status_code == 0:  # no HTTP answer at all (refused, reset, ...)
        return f"connection error: {resp.error}"
    detail = json_of(resp).get("error") or (resp.text or "")[:200]
    return f"HTTP {resp.status_code}: {detail}"


class V2User(HttpUser):
    wait_time = constant(0)  # the polling already paces each user

    @task
    def submit_and_poll(self):
        started = time.monotonic()
        body = {"image": IMAGE, "desired_increase": SCALE}
        with self.client.post("/v2/bria-increase-resolution", json=body, headers=HEADERS,
                              name="submit", catch_response=True) as resp:
            job = json_of(resp)
            if resp.status_code != 200 or not job.get("status_url"):  # 400/401/403/406/429/5xx ...
                resp.failure(error_text(resp))
                time.sleep(POLL)  # don't spin on a server that refuses work
                return
            resp.success()

        # Poll the absolute status_url until the job is terminal or too old.
        status = None
        while time.monotonic() - started < TIMEOUT:
            time.sleep(POLL)
            with self.client.get(job["status_url"], headers=HEADERS, name="status",
                                 catch_response=True) as resp:
                state = json_of(resp)
                status = state.get("status")
                # A FAILED job answers 422: the poll itself worked, the JOB row fails.
                if resp.status_code == 200 or status == "FAILED":
                    resp.success()
                else:  # 401/404/5xx: give up on this job
                    resp.failure(error_text(resp))
                    self.report_job(started, JobFailed(f"status poll {error_text(resp)}"))
                    return
            if status in ("COMPLETED", "FAILED"):
                break

        if status == "FAILED":
            self.report_job(started, JobFailed(state.get("error") or "FAILED"))
        elif status != "COMPLETED":
            self.report_job(started, JobFailed(f"timed out after {TIMEOUT:g}s (last: {status})"))
        else:
            self.report_job(started, None)
            with self.client.get(job["response_url"], headers=HEADERS, name="result",
                                 catch_response=True) as resp:
                if resp.status_code == 200 and json_of(resp).get("output"):
                    resp.success()
                else:
                    resp.failure(error_text(resp))

    def report_job(self, started, exception):
        """Add one JOB row entry: submit-to-terminal time, failed if `exception`."""
        self.environment.events.request.fire(
            request_type="JOB", name="job",
            response_time=(time.monotonic() - started) * 1000,
            response_length=0, exception=exception, context={})
