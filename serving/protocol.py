"""Uvicorn's HTTP protocol with a deadline on the request head, so slow clients cannot hold connections.

uvicorn closes idle keep-alive connections and nothing else (upstream issue encode/uvicorn#157): a
client that connects and sends nothing, or trickles its request line and headers a byte at a time,
holds a connection for as long as it likes (Slowloris). ASGI middleware runs only once the head is
complete, so the body timeout of guard.py never sees it. This protocol answers 408 and closes a
connection whose request head is not complete within ``timeout_seconds`` of the connection opening,
or of the first byte of the next request on a kept-alive connection.

BentoML builds uvicorn's configuration itself and offers no option for the protocol class, so
:func:`install` points uvicorn's ``auto`` protocol at this class; the service module calls it, and
BentoML's workers import that module before they make the server.
"""

from __future__ import annotations

import asyncio
import json
from typing import ClassVar

import uvicorn.config
from uvicorn.protocols.http.auto import AutoHTTPProtocol


def _timeout_response(seconds: float) -> bytes:
    body = json.dumps({"error": f"the request headers did not arrive within {seconds:g} s; send them whole"})
    return (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
        f"content-length: {len(body)}\r\n\r\n{body}"
    ).encode()


class HeaderDeadlineProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]  # httptools or h11
    timeout_seconds: ClassVar[float] = 10.0
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self._awaiting_head():
            self._disarm()
        elif self._deadline is None:  # the first bytes of the next request on a kept-alive connection
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _awaiting_head(self) -> bool:
        """No request is in progress: its head has not been read yet (or none was sent)."""
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
        self._deadline = self.loop.call_later(self.timeout_seconds, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if self._awaiting_head() and not self.transport.is_closing():
            self.transport.write(_timeout_response(self.timeout_seconds))
            self.transport.close()


def install(timeout_seconds: float) -> None:
    """Make uvicorn's default (``auto``) HTTP protocol :class:`HeaderDeadlineProtocol`."""
    HeaderDeadlineProtocol.timeout_seconds = timeout_seconds
    uvicorn.config.HTTP_PROTOCOLS["auto"] = f"{__name__}:{HeaderDeadlineProtocol.__name__}"
