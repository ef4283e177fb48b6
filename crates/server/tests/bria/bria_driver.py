"""Bria's official Python client (bria-client==0.3.1) against upres, unchanged but for its
base_url. Exits non-zero on the first difference from what the client expects of Bria's API.

Launched by crates/server/tests/bria.rs in one of two modes (UPRES_MODE):
  engine     a server on the real engine (esrgan-slim), keys bria-key, --moderation-threshold 0
             (so a moderated call is always refused): run(), submit() + poll(), status(), a
             moderation refusal (sync: 422; async: an ERROR job), a bad token (401), an unknown
             id (404), an image of an unsupported type (415); outputs checked for size and alpha.
  emulation  a server on the fast engine in load-testing mode, --capacity 1 --queue-depth 1 and a
             fixed 1.5 s latency; keys: steady (no limits), doomed (a rule fails its Bria jobs),
             free (5 rpm): an injected ERROR job, a 429 with Retry-After when the queue is full,
             with a Segmind v2 job holding the one place (the two APIs share the queue), and
             one rate limit over both APIs' calls.
Environment: UPRES_BASE_URL (http://127.0.0.1:PORT), UPRES_MODE, UPRES_IMAGE (base64 of a PNG
with alpha), UPRES_IMAGE_SIZE (WxH).
"""

import base64
import io
import os
import time

import httpx
from bria_client import BriaSyncClient
from bria_client.toolkit.errors.exception import BriaException
from httpx_retries import Retry
from PIL import Image

ENDPOINT = "image/edit/increase_resolution"
BASE = os.environ["UPRES_BASE_URL"]
IMAGE = os.environ["UPRES_IMAGE"]
WIDTH, HEIGHT = (int(n) for n in os.environ["UPRES_IMAGE_SIZE"].split("x"))
GIF = base64.b64encode(b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,"
                       b"\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;").decode()


def client(token: str) -> BriaSyncClient:
    # No retries: the client's default retries a 429 or 5xx three times, hiding what we test.
    return BriaSyncClient(base_url=BASE, api_token=token, retry=Retry(total=0))


def expect_error(code: int, call) -> BriaException:
    try:
        call()
    except BriaException as err:
        assert err.code == code, f"code {err.code}, expected {code}: {err.message}: {err.details}"
        return err
    raise AssertionError(f"expected BriaException({code}) but the call succeeded")


def check_output(url: str, scale: int) -> None:
    answer = httpx.get(url)
    assert answer.status_code == 200, answer.status_code
    output = Image.open(io.BytesIO(answer.content))
    assert output.size == (WIDTH * scale, HEIGHT * scale), output.size
    assert output.mode == "RGBA", output.mode
    assert output.getpixel((0, 0))[3] == 0 and output.getpixel((output.width - 1, output.height - 1))[3] == 255


def engine_mode() -> None:
    bria = client("bria-key")

    done = bria.run(ENDPOINT, {"image": IMAGE, "desired_increase": 2}, raise_for_status=True)
    assert done.status == "COMPLETED", done
    check_output(done.result.image_url, 2)
    print("run (sync): COMPLETED, 2x, alpha kept")

    # The endpoint as the client also accepts it, with a leading v2/; the scale from the query.
    submitted = bria.submit("v2/" + ENDPOINT, {"image": IMAGE}, params={"desired_increase": 4})
    assert submitted.in_progress and submitted.status_url.endswith(f"/v2/status/{submitted.request_id}"), submitted
    polled = bria.poll(submitted, interval=0.05, timeout=60)
    assert polled.status == "COMPLETED", polled
    check_output(polled.result.image_url, 4)
    assert bria.status(submitted.request_id) == "COMPLETED"
    print("submit + poll: IN_PROGRESS, then COMPLETED, 4x; status() COMPLETED")

    err = expect_error(422, lambda: bria.run(ENDPOINT, {"image": IMAGE, "visual_input_content_moderation": True},
                                             raise_for_status=True))
    assert "moderation" in err.details, err.details
    moderated = bria.submit(ENDPOINT, {"image": IMAGE, "visual_output_content_moderation": True})
    failed = bria.poll(moderated, interval=0.05, raise_for_status=False)
    assert failed.status == "ERROR" and failed.error.code == 422 and "moderation" in failed.error.details, failed
    expect_error(422, lambda: bria.poll(moderated, interval=0.05))
    print("moderation: sync 422, async ERROR (422)")

    expect_error(401, lambda: client("wrong-key").run(ENDPOINT, {"image": IMAGE}, raise_for_status=True))
    expect_error(404, lambda: bria.poll("00000000-0000-0000-0000-000000000000", interval=0.05))
    expect_error(415, lambda: bria.run(ENDPOINT, {"image": GIF}, raise_for_status=True))
    expect_error(400, lambda: bria.run(ENDPOINT, {"image": IMAGE, "desired_increase": 3}, raise_for_status=True))
    err = expect_error(400, lambda: bria.submit(ENDPOINT, {"image": IMAGE}, webhook_url="http://127.0.0.1:9/hook",
                                                 raise_for_status=True))
    assert "webhook_url" in err.details, err.details
    print("errors: 401 bad token, 404 unknown id, 415 GIF, 400 bad scale, 400 webhook_url")


def emulation_mode() -> None:
    steady = client("sk-steady")
    # A Segmind v2 job takes the one place of capacity, another waits in the one queue place...
    segmind = lambda: httpx.post(f"{BASE}/v2/bria-increase-resolution", headers={"x-api-key": "sk-steady"},
                                 json={"image": IMAGE})
    assert segmind().status_code == 200
    waiting = steady.submit(ENDPOINT, {"image": IMAGE}, raise_for_status=True)
    time.sleep(0.2)
    # ... so the next call of either API is refused with 429 and Retry-After.
    err = expect_error(429, lambda: steady.submit(ENDPOINT, {"image": IMAGE}, raise_for_status=True))
    refused = segmind()
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1, refused
    print(f"shared queue: 429 on Bria's route ({err.details}) and on Segmind's")
    assert steady.poll(waiting, interval=0.1, timeout=30).status == "COMPLETED"

    doomed = client("sk-doomed").submit(ENDPOINT, {"image": IMAGE}, raise_for_status=True)
    failed = client("sk-doomed").poll(doomed, interval=0.1, timeout=30, raise_for_status=False)
    assert failed.status == "ERROR" and failed.error.details == "GPU exploded", failed
    print("injected failure: ERROR with its message")

    # One rate limit (free: 5 rpm, burst 5) over both APIs' calls: 3 Segmind and 2 Bria calls
    # pass the limiter (admitted, or refused later by the full queue), the 6th is Rate Limited.
    free = client("sk-free")
    segmind_free = lambda: httpx.post(f"{BASE}/v2/bria-increase-resolution", headers={"x-api-key": "sk-free"},
                                      json={"image": IMAGE})
    for _ in range(3):
        answer = segmind_free()
        assert answer.status_code in (200, 429) and answer.json().get("error") != "Rate Limited", answer.text
    for _ in range(2):
        answer = free.submit(ENDPOINT, {"image": IMAGE})
        assert answer.error is None or answer.error.details != "Rate Limited", answer
    err = expect_error(429, lambda: free.submit(ENDPOINT, {"image": IMAGE}, raise_for_status=True))
    assert err.details == "Rate Limited", err.details
    assert segmind_free().json()["error"] == "Rate Limited"
    print("one rate limit over both APIs: the 6th call is Rate Limited")


if __name__ == "__main__":
    {"engine": engine_mode, "emulation": emulation_mode}[os.environ["UPRES_MODE"]]()
    print("all Bria client checks passed")
