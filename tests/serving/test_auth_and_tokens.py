"""Who may call what, and which feedback is believed, in process: the key ring, the route rules, the
middleware's answers and rate limit, and the feedback tokens. (tests/serving/test_service.py checks
the same against a real server.) `make mutation` holds these to nine mutants killed in ten."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest
from itsdangerous import URLSafeTimedSerializer
from pydantic import SecretStr

from pigeonhole.core.errors import ConfigurationError
from pigeonhole.core.settings import Settings
from pigeonhole.serving.asgi import Message, Scope
from pigeonhole.serving.auth import (
    KEY_PREFIX,
    CallerAuth,
    KeyRing,
    Role,
    allowed,
    bearer,
    digest,
    key_file_text,
    parse_key_file,
)
from pigeonhole.serving.schemas import Listing
from pigeonhole.serving.tokens import (
    SALT,
    FeedbackRefused,
    FeedbackTokens,
    SuggestionClaim,
    listing_digest,
    signing_key,
)

ROUTES = [
    "/suggest",
    "/suggest_batch",
    "/feedback",
    "/reload",
    "/metrics",
    "/docs.json",
    "/",
    "/livez",
    "/readyz",
]


@pytest.mark.parametrize(
    ("role", "permitted"),
    [
        (Role.admin, set(ROUTES)),
        (Role.client, {"/suggest", "/suggest_batch", "/feedback", "/livez", "/readyz"}),
        (Role.metrics, {"/metrics", "/livez", "/readyz"}),
    ],
)
def test_each_role_reaches_exactly_its_routes(role: Role, permitted: set[str]) -> None:
    assert {route for route in ROUTES if allowed(role, route)} == permitted


def test_the_key_ring_keeps_hashes_and_rereads_its_file(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path / "state" / "keys" / "api-keys.json")
    assert ring.entries() == [] and ring.caller_for("anything") is None, "no file: nobody"
    key = ring.add("web", Role.client)
    assert key.startswith(KEY_PREFIX) and len(key) == len(KEY_PREFIX) + 43
    stored = ring.path.read_text()
    assert key not in stored and digest(key) in stored and ring.path.stat().st_mode & 0o777 == 0o600
    entry = ring.caller_for(key)
    assert entry is not None and (entry.caller, entry.role) == ("web", Role.client)
    assert entry.created.endswith("+00:00") and len(entry.created) == len("2026-11-27T08:00:00+00:00")
    assert stored.startswith('{\n  "keys": [\n    {\n      "caller": "web"'), "a file operators can read"
    other = KeyRing(ring.path).add("ops", Role.admin)  # another process writes the file
    assert ring.caller_for(other) is not None and len(ring.entries()) == 2
    assert ring.revoke("web") == 1 and ring.caller_for(key) is None and ring.revoke("web") == 0
    assert [e.caller for e in ring.entries()] == ["ops"]
    ring.path.write_text("{not json")
    with pytest.raises(ConfigurationError, match="is not a pigeonhole key file"):
        ring.entries()


def test_a_key_file_reads_back_as_written_and_anything_else_is_refused() -> None:
    entries = parse_key_file(
        json.dumps({"keys": [{"caller": "a", "role": "metrics", "sha256": "x", "created": "t"}]})
    )
    assert entries[0].role is Role.metrics and parse_key_file(key_file_text(entries)) == entries
    for text in ['{"keys": [{"caller": "a"}]}', '{"nokeys": []}', "[1]"]:
        with pytest.raises(ValueError, match="not a pigeonhole key file"):
            parse_key_file(text)
    assert bearer("k") == {"Authorization": "Bearer k"}


class _Call:
    """Requests through CallerAuth to an app that records which caller it was told it serves."""

    def __init__(self, ring: KeyRing, per_minute: int) -> None:
        self.callers: list[str | None] = []
        self.auth = CallerAuth(self._app, ring, per_minute)

    async def _app(self, scope: Scope, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "http.request", "the request's body is still there to read"
        self.callers.append(scope.get("state", {}).get("caller"))
        await send({"type": "http.response.start", "status": 200, "headers": []})

    def __call__(
        self, path: str, headers: list[tuple[bytes, bytes]] | None
    ) -> tuple[int, dict[bytes, bytes], Any]:
        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)

        async def receive() -> Message:
            return {"type": "http.request", "body": b""}

        scope: Scope = {"type": "http", "path": path}
        if headers is not None:
            scope["headers"] = headers
        before = len(self.callers)
        asyncio.run(self.auth(scope, receive, send))
        start = sent[0]
        answer = json.loads(sent[1]["body"]) if len(sent) > 1 else self.callers[before]
        return start["status"], dict(start["headers"]), answer


def test_the_middleware_answers_401_403_429_and_passes_the_caller_on(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path / "api-keys.json")
    web, shop = ring.add("web", Role.client), ring.add("shop", Role.client)
    prometheus = ring.add("prometheus", Role.metrics)
    call = _Call(ring, per_minute=2)
    auth = [(b"authorization", f"Bearer {web}".encode())]
    assert call("/suggest", auth) == (200, {}, "web")
    assert call("/suggest", [(b"authorization", f"bearer  {web} ".encode())])[2] == "web", (
        "scheme in any case"
    )
    status, headers, body = call("/suggest", auth)
    assert (status, headers[b"retry-after"]) == (429, b"60"), "a minute's window, just started"
    assert body == {"error": "rate limit of 2 requests per minute reached; retry in 60 s"}
    assert call("/suggest", [(b"authorization", f"Bearer {shop}".encode())])[:1] == (200,), (
        "limits are per caller"
    )
    assert call("/livez", None)[0] == 200, "probes are open and not counted"
    for headers in (
        None,
        [],
        [(b"authorization", b"Bearer ")],
        [(b"authorization", f"Basic {web}".encode())],
    ):
        status, answer_headers, body = call("/suggest", headers)
        assert status == 401 and answer_headers[b"www-authenticate"] == b'Bearer realm="pigeonhole"'
        assert body == {"error": "send a valid API key: Authorization: Bearer <key>"}
    status, _, body = call("/suggest", [(b"authorization", f"Bearer {prometheus}".encode())])
    assert (status, body) == (403, {"error": "a metrics key may not call /suggest"})
    unlimited = _Call(ring, per_minute=0)
    assert all(unlimited("/suggest", auth)[0] == 200 for _ in range(5)), "0 turns the limit off"


LISTING = Listing(title="iPhone 13", description="boxed", price=300.0)
CLAIM = SuggestionClaim("r1", "L-1", "3", "control", "Phones", 0.9, listing_digest(LISTING))


def _tokens(tmp_path: Path, **settings: Any) -> FeedbackTokens:
    return FeedbackTokens(Settings(home=tmp_path, **settings))


def test_a_token_vouches_for_its_answer_and_its_listing_only(tmp_path: Path) -> None:
    tokens = _tokens(tmp_path)
    token = tokens.issue(CLAIM)
    assert tokens.verify(token, LISTING) == CLAIM
    assert _tokens(tmp_path).verify(token, LISTING) == CLAIM, "every worker shares the state folder's key"
    for other in (
        Listing(title="iPhone 14", description="boxed", price=300.0),
        Listing(title="iPhone 13", description=None, price=300.0),
        Listing(title="iPhone 13", description="boxed", price=301.0),
    ):
        with pytest.raises(
            FeedbackRefused, match="listing is not the one this feedback_token was issued for"
        ):
            tokens.verify(token, other)
    unsalted = URLSafeTimedSerializer(signing_key(Settings(home=tmp_path))).dumps(asdict(CLAIM))
    for forged in (token[:-2] + "xx", "x" + token, _tokens(tmp_path / "other").issue(CLAIM), unsalted):
        with pytest.raises(FeedbackRefused) as refused:
            tokens.verify(forged, LISTING)
        assert refused.value.status == 422 and str(refused.value) == (
            "feedback_token is not one this service issued: send the token of the /suggest answer"
        )


def test_tokens_keep_itsdangerous_format_across_a_rolling_update(tmp_path: Path) -> None:
    """Replicas of the release before and after a change of how tokens are made run side by side:
    each verifies the other's tokens, compressed ones included."""
    stock = URLSafeTimedSerializer(signing_key(Settings(home=tmp_path)), salt=SALT)
    tokens = _tokens(tmp_path)
    assert stock.loads(tokens.issue(CLAIM)) == asdict(CLAIM)
    long_claim = replace(CLAIM, top_category="Phones " * 40)  # long enough for itsdangerous to compress
    compressed = stock.dumps(asdict(long_claim))
    assert compressed.startswith(".") and tokens.verify(compressed, LISTING) == long_claim
    assert tokens.verify(stock.dumps(asdict(CLAIM)), LISTING) == CLAIM


def test_a_token_expires_after_its_time_to_live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = _tokens(tmp_path, feedback_token_ttl="1m")
    issued = time.time()
    token = tokens.issue(CLAIM)
    monkeypatch.setattr(time, "time", lambda: issued + 59)
    assert tokens.verify(token, LISTING) == CLAIM
    monkeypatch.setattr(time, "time", lambda: issued + 62)
    with pytest.raises(FeedbackRefused) as refused:
        tokens.verify(token, LISTING)
    assert refused.value.status == 422 and str(refused.value) == (
        "feedback_token has expired: feedback must follow its suggestion; ask /suggest again"
    )
    assert _tokens(tmp_path, feedback_token_ttl="1h").verify(token, LISTING) == CLAIM
    monkeypatch.setattr(time, "time", lambda: issued + 2)
    with pytest.raises(FeedbackRefused, match="expired"):
        _tokens(tmp_path, feedback_token_ttl="0m").verify(token, LISTING)  # a zero TTL still lives 1 s


def test_the_signing_key_is_made_once_or_taken_from_settings(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "a" / "new" / "home")
    made = signing_key(settings)
    assert len(made) == 43 and signing_key(settings) == made, "made on first use, then kept"
    assert settings.signing_key_path.stat().st_mode & 0o777 == 0o600
    assert list(settings.signing_key_path.parent.glob("*.tmp")) == []
    assert signing_key(Settings(home=tmp_path, feedback_signing_key=SecretStr("shared"))) == "shared"


def test_the_listing_digest_reads_the_validated_listing() -> None:
    assert listing_digest(LISTING) == listing_digest(
        Listing(title="  iPhone 13 ", description="boxed", price=300)
    )
    assert listing_digest(Listing(title="a", description="")) == listing_digest(Listing(title="a"))
    assert len(listing_digest(LISTING)) == 24
    # pinned: tokens issued by a worker before an upgrade still verify after it
    assert listing_digest(Listing(title="Café ☕ 13", price=2.5)) == "3a7c87e33d9fa85d671866de"
