"""`pigeonhole smoke URL`: the deploy workflow's proof that a rollout serves real answers."""

from __future__ import annotations

import httpx

from pigeonhole.serving.process import ServiceFailed, wait_until_up

PROBE_LISTING = {
    "title": "iPhone 13 128GB, like new",
    "description": "Unlocked, with charger",
    "price": 420.0,
}


class SmokeFailed(RuntimeError):
    """The deployed service is not ready or does not answer a suggestion correctly."""


def check(url: str, api_key: str, timeout: float = 120.0) -> list[str]:
    """Wait for /readyz, then send one real /suggest; return what was seen, or raise SmokeFailed.

    A refused connection fails at once: nothing listens there (a wrong URL or port), which waiting
    will not fix; a service that answers but is not ready yet gets ``timeout`` seconds."""
    base = url.rstrip("/")
    try:
        httpx.get(f"{base}/readyz", timeout=10)
    except httpx.ConnectError as exc:
        raise SmokeFailed(f"nothing answers at {base} ({exc}): check the URL and port") from None
    except httpx.HTTPError:
        pass  # slow or half-up: the wait below decides
    try:
        wait_until_up(f"{base}/readyz", timeout)
    except ServiceFailed as exc:
        raise SmokeFailed(str(exc)) from None
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=base, timeout=15, headers=headers) as client:
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
