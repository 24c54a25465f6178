"""Feedback tokens: proof that a piece of feedback answers a suggestion this service really made.

Each /suggest answer carries a token signed with the service's key (itsdangerous, HMAC-SHA1 over the
claim and a timestamp). /feedback accepts only a valid, unexpired token, so nobody can label
listings the service never answered, or label with a forged model version, request id or top
suggestion. The token also holds a digest of the listing's text, so the feedback that resends the
text (to be a complete labelled example on its own) cannot swap in a listing the service never saw.
(The token is not bound to the caller: the service merges callers' concurrent requests into one
prediction (serving/coalesce.py), and the authenticated caller of /feedback is what retraining's
caps count.) Every worker and replica must share the key (a Secret in the cluster); on a laptop
one is made on first use.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import msgspec
from itsdangerous import BadSignature, Serializer, SignatureExpired, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode

from pigeonhole.core.settings import Settings, parse_duration
from pigeonhole.serving.schemas import Listing

SALT = "pigeonhole-feedback"


class FeedbackRefused(Exception):
    """Feedback the service will not store; ``status`` is the 4xx to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class SuggestionClaim:
    """What a feedback token vouches for: one answer the service gave."""

    request_id: str
    listing_id: str | None
    model_version: str
    variant: str
    top_category: str
    top_score: float
    listing_digest: str  # of the listing's text: see listing_digest()


def listing_digest(listing: Listing) -> str:
    """A short fingerprint of the listing as validated (trimmed title; no description is empty)."""
    text = json.dumps([listing.title, listing.description or "", listing.price], ensure_ascii=False)
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()


def signing_key(settings: Settings) -> str:
    """The configured key, else the one kept in the state folder (made once, by whichever worker
    gets there first: a hard link never replaces an existing file)."""
    if settings.feedback_signing_key is not None:
        return settings.feedback_signing_key.get_secret_value()
    path = settings.signing_key_path
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        partial.write_text(secrets.token_urlsafe(32))
        partial.chmod(0o600)
        try:
            os.link(partial, path)
        except FileExistsError:
            pass
        finally:
            partial.unlink()
    return Path(path).read_text().strip()


class _MsgspecJson:
    """The claim's JSON written by msgspec (a third of a token's cost with the json module); read by
    the json module, so tokens issued before the change still verify."""

    @staticmethod
    def dumps(claim: object) -> str:
        return msgspec.json.encode(claim).decode()

    loads = staticmethod(json.loads)


class _TokenSerializer(URLSafeTimedSerializer):
    """itsdangerous's URL-safe timed tokens, in its format but cheaper per answer: no zlib attempt on
    every claim (a claim is too short to shrink, and the attempt cost 0.2 ms, more than signing it;
    README, "Serving") and msgspec's JSON. Loading is unchanged, so tokens issued compressed still
    verify."""

    default_serializer = _MsgspecJson

    def dump_payload(self, obj: object) -> bytes:
        return base64_encode(Serializer.dump_payload(self, obj))


class FeedbackTokens:
    def __init__(self, settings: Settings) -> None:
        self._serializer = _TokenSerializer(signing_key(settings), salt=SALT)
        self._max_age = max(1, round(parse_duration(settings.feedback_token_ttl).total_seconds()))

    def issue(self, claim: SuggestionClaim) -> str:
        return self._serializer.dumps(vars(claim))  # shallow: asdict() deep-copies, per answer

    def verify(self, token: str, listing: Listing) -> SuggestionClaim:
        """The claim of a token this service issued for ``listing`` and that has not expired;
        FeedbackRefused otherwise."""
        try:
            claim = SuggestionClaim(**self._serializer.loads(token, max_age=self._max_age))
        except SignatureExpired:
            raise FeedbackRefused(
                422, "feedback_token has expired: feedback must follow its suggestion; ask /suggest again"
            ) from None
        except (BadSignature, TypeError):
            raise FeedbackRefused(
                422, "feedback_token is not one this service issued: send the token of the /suggest answer"
            ) from None
        if listing_digest(listing) != claim.listing_digest:
            raise FeedbackRefused(
                422,
                "listing is not the one this feedback_token was issued for: send its title, description "
                "and price exactly as sent to /suggest",
            )
        return claim
