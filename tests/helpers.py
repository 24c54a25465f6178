"""Small helpers shared by tests that start real servers."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port nothing listens on right now, for a server the test is about to start."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
