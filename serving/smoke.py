"""`pigeonhole smoke URL`: the deploy workflow's proof that a rollout serves real answers."""

from __future__ import annotations

import time

import httpx

PROBE_LISTING = {
    "title": "iPhone 13 128GB, like new",
    "description": "Unlocked, with charger",
    "price": 420.0,
}


class SmokeFailed(RuntimeError):
    """The deployed service is not ready or does not answer a suggestion correctly."""


def check(url: str, timeout: float = 120.0) -> list[str]:
    """Wait for /readyz, then send one real /suggest; return what was seen, or raise SmokeFailed."""
    base = url.rstrip("/")
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base, timeout=15) as client:
        status = "unreachable"
        while time.monotonic() < deadline:
            try:
                status = str(client.get("/readyz").status_code)
            except httpx.HTTPError as exc:
                status = f"unreachable ({exc})"
            if status == "200":
                break
            time.sleep(2)
        else:
            raise SmokeFailed(f"{base}/readyz never answered 200 within {timeout:.0f} s (last: {status})")
        answer = client.post("/suggest", json=PROBE_LISTING)
        if answer.status_code != 200:
            raise SmokeFailed(f"{base}/suggest answered {answer.status_code}: {answer.text[:300]}")
        body = answer.json()
        if not body.get("suggestions"):
            raise SmokeFailed(f"{base}/suggest answered without suggestions: {body}")
    top = body["suggestions"][0]
    return [
        f"{base}/readyz: 200",
        f"{base}/suggest: {top['category']} ({top['score']:.2f}) from model v{body['model_version']}",
    ]
