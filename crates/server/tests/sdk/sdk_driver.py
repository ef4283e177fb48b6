"""Drives a running upres server with the official Segmind SDK (segmind==1.3.0), as a user
would, and exits non-zero on the first difference from the hosted service's behaviour.

Launched by crates/server/tests/sdk.rs with:
  UPRES_BASE_URL     http://127.0.0.1:PORT/v1
  UPRES_API_KEY      a key the server accepts
  UPRES_IMAGE_URL    a PNG of UPRES_IMAGE_SIZE ("WxH") on a local image host
  UPRES_MISSING_URL  a URL on that host that answers 404
"""

import os
import struct
import sys
import uuid
from importlib.metadata import version

import httpx
import segmind
from segmind import InferenceFailed, SegmindClient, SegmindError
from segmind.v2 import AsyncJob

SLUG = "bria-increase-resolution"
BASE = os.environ["UPRES_BASE_URL"]
KEY = os.environ["UPRES_API_KEY"]
IMAGE = os.environ["UPRES_IMAGE_URL"]
MISSING = os.environ["UPRES_MISSING_URL"]
W, H = (int(n) for n in os.environ["UPRES_IMAGE_SIZE"].split("x"))


def png_size(data: bytes) -> tuple:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"not a PNG: {data[:16]!r}"
    return struct.unpack(">II", data[16:24])


def output_size(result: dict) -> tuple:
    assert result["status"] == "COMPLETED", result
    assert result["metrics"]["inference_time"] >= 0, result
    # Output URLs need no key, like the hosted service's media URLs.
    response = httpx.get(result["output"], trust_env=False)
    assert response.status_code == 200, response.status_code
    return png_size(response.content)


def expect_error(status: int, call, detail: str = None) -> SegmindError:
    try:
        call()
    except InferenceFailed:
        raise
    except SegmindError as err:
        assert err.status == status, f"status {err.status}, expected {status}: {err.detail}"
        assert err.detail, "the message must be in the 'error' key"
        if detail is not None:
            assert err.detail == detail, err.detail
        return err
    raise AssertionError(f"expected a SegmindError {status}")


def main() -> None:
    assert version("segmind") == "1.3.0", version("segmind")
    client = SegmindClient(api_key=KEY, base_url=BASE)

    # v1, synchronous: the PNG bytes.
    response = client.run_sync(SLUG, image=IMAGE, desired_increase=2)
    assert png_size(response.content) == (2 * W, 2 * H)
    assert "x-remaining-credits" in response.headers
    print("run_sync x2 ok")

    # v2 through run(): submit + wait, default desired_increase 4.
    assert output_size(client.run(SLUG, image=IMAGE)) == (4 * W, 4 * H)
    print("run x4 ok")

    # submit_async + wait.
    job = client.submit_async(SLUG, image=IMAGE, desired_increase=2, preserve_alpha=False)
    assert job.status()["status"] in ("QUEUED", "PROCESSING", "COMPLETED")
    assert output_size(job.wait(timeout=120, interval=0.2)) == (2 * W, 2 * H)
    print("submit_async + wait ok")

    # A job whose image cannot be fetched fails; wait() raises InferenceFailed with the message.
    job = client.submit_async(SLUG, image=MISSING)
    try:
        job.wait(timeout=60, interval=0.2)
        raise AssertionError("wait() should raise InferenceFailed")
    except InferenceFailed as err:
        assert err.detail == "Failed to download image from URL (HTTP 404)", err.detail
        assert err.status_body["status"] == "FAILED"
    print("InferenceFailed ok")

    # Unknown request id: 404 from status(), result() and wait().
    root = BASE.rsplit("/", 1)[0]
    unknown = str(uuid.uuid4())
    ghost = AsyncJob(
        request_id=unknown,
        status_url=f"{root}/v2/requests/{unknown}/status",
        response_url=f"{root}/v2/requests/{unknown}",
        submit_response={},
        _client=client,
    )
    for call in (ghost.status, ghost.result, lambda: ghost.wait(timeout=5, interval=0.1)):
        expect_error(404, call, f"Request {unknown} not found")
    print("404 ok")

    # Wrong key: 401 with the hosted service's message.
    stranger = SegmindClient(api_key="not-the-key", base_url=BASE)
    unauthorized = "Unauthorized. API key is invalid or may have expired"
    expect_error(401, lambda: stranger.run_sync(SLUG, image=IMAGE), unauthorized)
    expect_error(401, lambda: stranger.submit_async(SLUG, image=IMAGE), unauthorized)
    print("401 ok")

    # desired_increase=3: 400 naming the field, on v1 and v2.
    invalid = "invalid 'desired_increase': must be 2 or 4, got 3"
    expect_error(400, lambda: client.run_sync(SLUG, image=IMAGE, desired_increase=3), invalid)
    expect_error(400, lambda: client.submit_async(SLUG, image=IMAGE, desired_increase=3), invalid)
    print("400 ok")

    # The module-level functions, redirected through segmind._default_client.
    segmind._default_client = client
    assert png_size(segmind.run_sync(SLUG, image=IMAGE, desired_increase=2).content) == (2 * W, 2 * H)
    assert output_size(segmind.run(SLUG, image=IMAGE, desired_increase=2)) == (2 * W, 2 * H)
    print("module-level ok")


if __name__ == "__main__":
    try:
        main()
    except Exception as err:  # report and fail the Rust test
        import traceback

        traceback.print_exc()
        print(f"SDK driver failed: {err!r}", file=sys.stderr)
        sys.exit(1)
    print("all SDK checks passed")
