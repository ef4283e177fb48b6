"""The official Segmind SDK (segmind==1.3.0) against upres in load-testing mode: it must raise
exactly what it raises against the hosted service under load. Exits non-zero on the first
difference.

Launched by crates/server/tests/sdk.rs, with a server whose keys file and fault rules are:
  free      plan "free" (5 rpm, burst 5)          -> the 6th call is SegmindError(429)
  broke     credits 0                             -> SegmindError(406)
  blocked   models = []                           -> SegmindError(403)
  flaky     v1 and submit always 502 / 500 / 504  -> SegmindError(5xx)
  doomed    its v2 jobs end FAILED "GPU exploded" -> InferenceFailed("GPU exploded")
  steady    no limits                             -> completes
Environment: UPRES_BASE_URL (http://127.0.0.1:PORT/v1), UPRES_IMAGE (a data: URI).
"""

import os

from segmind import InferenceFailed, SegmindClient, SegmindError

SLUG = "bria-increase-resolution"
BASE = os.environ["UPRES_BASE_URL"]
IMAGE = os.environ["UPRES_IMAGE"]


def client(key: str) -> SegmindClient:
    return SegmindClient(api_key=key, base_url=BASE)


def expect(status: int, detail: str, call) -> None:
    try:
        call()
    except InferenceFailed as err:
        raise AssertionError(f"expected SegmindError({status}), got InferenceFailed: {err.detail}")
    except SegmindError as err:
        assert err.status == status, f"status {err.status}, expected {status}: {err.detail}"
        assert err.detail == detail, f"detail {err.detail!r}, expected {detail!r}"
        return
    raise AssertionError(f"expected SegmindError({status}) but the call succeeded")


def both_calls(key: str, status: int, detail: str) -> None:
    """v1 (run_sync) and v2 (run: submit then wait) raise the same error."""
    c = client(key)
    expect(status, detail, lambda: c.run_sync(SLUG, image=IMAGE, desired_increase=2))
    expect(status, detail, lambda: c.run(SLUG, image=IMAGE, desired_increase=2))


def main() -> None:
    # Plans: five calls a minute pass, the sixth is rate limited.
    free = client("sk-free")
    for _ in range(5):
        assert free.run_sync(SLUG, image=IMAGE, desired_increase=2).content[:4] == b"\x89PNG"
    expect(429, "Rate Limited", lambda: free.run_sync(SLUG, image=IMAGE, desired_increase=2))
    expect(429, "Rate Limited", lambda: free.run(SLUG, image=IMAGE, desired_increase=2))
    # Polls are not limited: a job submitted before the limit can be waited for.
    print("429 ok")

    both_calls("sk-broke", 406, "Insufficient Credits")
    print("406 ok")
    both_calls("sk-blocked", 403, "Insufficient permissions")
    print("403 ok")

    flaky = client("sk-flaky")
    expect(502, "Bad Gateway", lambda: flaky.run_sync(SLUG, image=IMAGE, desired_increase=2))
    expect(500, "Internal Server Error", lambda: flaky.run(SLUG, image=IMAGE, desired_increase=2))
    print("5xx ok")

    doomed = client("sk-doomed")
    job = doomed.submit_async(SLUG, image=IMAGE, desired_increase=2)
    try:
        job.wait(timeout=60, interval=0.1)
    except InferenceFailed as err:
        assert err.detail == "GPU exploded", err.detail
    else:
        raise AssertionError("expected InferenceFailed")
    # A healthy key still completes through the same server.
    result = client("sk-steady").run(SLUG, image=IMAGE, desired_increase=2)
    assert result["status"] == "COMPLETED", result
    print("InferenceFailed ok")
    print("all emulation checks passed")


if __name__ == "__main__":
    main()
