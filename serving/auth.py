"""Who may call what: API keys stored hashed, one role per key, and a rate limit per caller.

Keys are random tokens (``ph_`` + 43 URL-safe characters) handed to each calling application once,
by ``pigeonhole keys add``; only their SHA-256 is kept, in a JSON key file (a Kubernetes Secret in
the cluster). A fast hash is enough for 256-bit random secrets: nobody can guess one, so there is
nothing to slow down. Rotation: add a second key for the caller, switch the caller over, revoke the
old one; the service rereads the file when it changes.

Routes by role: the kubelet's probes are open; ``client`` keys call the public API; ``metrics`` keys
(Prometheus) read /metrics; ``admin`` keys may call everything (reload, docs, metrics).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import FixedWindowRateLimiter

from pigeonhole.core.errors import ConfigurationError
from pigeonhole.serving.asgi import ASGIApp, Receive, Scope, Send, send_error

KEY_PREFIX = "ph_"
PROBE_ROUTES = frozenset({"/livez", "/readyz"})
API_ROUTES = frozenset({"/suggest", "/suggest_batch", "/feedback"})
METRICS_ROUTE = "/metrics"


class Role(StrEnum):
    client = "client"  # the public API: /suggest, /suggest_batch, /feedback
    metrics = "metrics"  # Prometheus: /metrics only
    admin = "admin"  # operators: every route


def allowed(role: Role, path: str) -> bool:
    if role is Role.admin or path in PROBE_ROUTES:
        return True
    return path in API_ROUTES if role is Role.client else path == METRICS_ROUTE


@dataclass(frozen=True)
class KeyEntry:
    caller: str
    role: Role
    sha256: str
    created: str


def parse_key_file(text: str) -> list[KeyEntry]:
    """The entries of a key file's text; ValueError when it is not one."""
    try:
        return [KeyEntry(**{**item, "role": Role(item["role"])}) for item in json.loads(text)["keys"]]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a pigeonhole key file: {exc!r}") from None


def key_file_text(entries: list[KeyEntry]) -> str:
    return json.dumps({"keys": [asdict(entry) for entry in entries]}, indent=2) + "\n"


def bearer(key: str) -> dict[str, str]:
    """The header a caller sends its key in."""
    return {"Authorization": f"Bearer {key}"}


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyRing:
    """The key file: who holds a key and with which role, never the keys themselves."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[str, KeyEntry] = {}
        self._stamp: tuple[float, int] | None = None

    def entries(self) -> list[KeyEntry]:
        self._reload_if_changed()
        return list(self._entries.values())

    def caller_for(self, key: str) -> KeyEntry | None:
        self._reload_if_changed()
        return self._entries.get(digest(key))

    def _reload_if_changed(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._entries, self._stamp = {}, None
            return
        if self._stamp == (stat.st_mtime, stat.st_size):
            return
        try:
            entries = parse_key_file(self.path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"{self.path} is not a pigeonhole key file: {exc}") from None
        self._entries = {entry.sha256: entry for entry in entries}
        self._stamp = (stat.st_mtime, stat.st_size)

    def add(self, caller: str, role: Role) -> str:
        """Make a new key for ``caller``, store its hash, and return the key (shown once, never stored)."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        entry = KeyEntry(caller, role, digest(key), datetime.now(UTC).isoformat(timespec="seconds"))
        self._write([*self.entries(), entry])
        return key

    def revoke(self, caller: str) -> int:
        """Remove every key of ``caller``; returns how many there were."""
        kept = [entry for entry in self.entries() if entry.caller != caller]
        removed = len(self._entries) - len(kept)
        self._write(kept)
        return removed

    def _write(self, entries: list[KeyEntry]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".tmp")
        partial.write_text(key_file_text(entries))
        partial.chmod(0o600)
        os.replace(partial, self.path)
        self._stamp = None


class CallerAuth:
    """ASGI middleware: authenticate the caller, check the route against its role, limit its rate.

    The caller's name is handed to the service in ``scope["state"]["caller"]`` (``ctx.request.state``):
    feedback tokens are bound to it and retraining caps what one caller contributes.
    """

    def __init__(self, app: ASGIApp, keys: KeyRing, per_minute: int) -> None:
        self.app = app
        self.keys = keys
        self.limit = RateLimitItemPerMinute(per_minute) if per_minute else None
        # a minute from the caller's first request, one counter per caller, kept by the event loop: the
        # moving window kept an entry per request of the last minute and started a timer thread every
        # 10 ms to expire them (6 % of a busy worker)
        self.limiter = FixedWindowRateLimiter(MemoryStorage())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PROBE_ROUTES:
            await self.app(scope, receive, send)
            return
        entry = self._authenticate(scope)
        if entry is None:
            await send_error(
                send,
                401,
                "send a valid API key: Authorization: Bearer <key>",
                [(b"www-authenticate", b'Bearer realm="pigeonhole"')],
            )
        elif not allowed(entry.role, scope["path"]):
            await send_error(send, 403, f"a {entry.role} key may not call {scope['path']}")
        elif self.limit is not None and not await self.limiter.hit(self.limit, entry.caller):
            reset = (await self.limiter.get_window_stats(self.limit, entry.caller)).reset_time
            wait = max(1, int(reset - datetime.now(UTC).timestamp()) + 1)
            await send_error(
                send,
                429,
                f"rate limit of {self.limit.amount} requests per minute reached; retry in {wait} s",
                [(b"retry-after", str(wait).encode())],
            )
        else:
            scope.setdefault("state", {})["caller"] = entry.caller
            await self.app(scope, receive, send)

    def _authenticate(self, scope: Scope) -> KeyEntry | None:
        header = dict(scope.get("headers", [])).get(b"authorization", b"").decode("latin-1")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return None
        return self.keys.caller_for(key.strip())
