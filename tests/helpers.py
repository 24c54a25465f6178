"""Small helpers shared by tests: free ports and readiness for real servers, parsing CLI command lines."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import httpx


def free_port() -> int:
    """A port nothing listens on right now, for a server the test is about to start."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    """Poll ``url`` until it answers 200; raise with the server's log if it exits or never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not up in {timeout:.0f} s:\n{log.read_text(errors='replace')[-3000:]}")


def parse_cli(argv: list[str]) -> dict[str, object]:
    """Parse a `pigeonhole ...` command line with the real CLI, without running it.

    Walks the command groups as Click would, then builds the leaf command's context: an unknown
    command or option, or a value of the wrong type, raises Click's usage error. Returns the
    parsed parameters of the leaf command.
    """
    from typer.main import get_command

    from pigeonhole.cli import app

    assert argv[0] == "pigeonhole", argv
    command, name, args = get_command(app), argv[0], list(argv[1:])
    while hasattr(command, "resolve_command"):  # a group: find the subcommand
        context = command.make_context(name, args)
        found_name, found, args = command.resolve_command(context, [*context._protected_args, *context.args])
        assert found is not None and found_name is not None, argv
        command, name = found, found_name
    return dict(command.make_context(name, args).params)
