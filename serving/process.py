"""The suggestion service as a child process: its command line, a free port, readiness, a clean stop.

`pigeonhole serve`, the demo, the serving benchmark and the tests all start `bentoml serve` the
same way, and wait for it and stop it the same way; this module is that one way.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

SERVICE = "pigeonhole.serving.service:CategoryService"


class ServiceFailed(RuntimeError):
    """The server exited, or never answered 200; the message carries the end of its log."""


def serve_command(port: int | str, target: str = SERVICE, host: str = "127.0.0.1") -> list[str]:
    """`bentoml serve` of the source service (or of a built Bento's tag) with this interpreter."""
    return [sys.executable, "-m", "bentoml", "serve", target, "--host", host, "--port", str(port)]


def free_port() -> int:
    """A port nothing listens on right now, for a server about to start."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _log_tail(log: Path | None) -> str:
    return f"\n{log.read_text(errors='replace')[-3000:]}" if log is not None and log.exists() else ""


def wait_until_up(
    url: str,
    timeout: float = 120.0,
    process: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> None:
    """Poll ``url`` until it answers 200; fail early if ``process`` exits."""
    deadline = time.monotonic() + timeout
    last = "unreachable"
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ServiceFailed(f"the server exited with {process.returncode}{_log_tail(log)}")
        try:
            status = httpx.get(url, timeout=2).status_code
            if status == 200:
                return
            last = str(status)
        except httpx.HTTPError as exc:
            last = f"unreachable ({exc})"
        time.sleep(0.5)
    raise ServiceFailed(f"{url} never answered 200 within {timeout:.0f} s (last: {last}){_log_tail(log)}")


def stop_group(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM the process's whole session (BentoML's workers too), SIGKILL what outlives ``timeout``."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


class ServiceProcess:
    """`bentoml serve` in a session of its own, so that stopping it takes its workers with it."""

    def __init__(self, env: dict[str, str], port: int, log_path: Path, target: str = SERVICE) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        with log_path.open("wb") as log_file:
            self.process = subprocess.Popen(
                serve_command(port, target),
                env={**os.environ, "BENTOML_DO_NOT_TRACK": "True", **env},
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 120.0) -> None:
        wait_until_up(f"{self.url}/readyz", timeout, self.process, self.log_path)

    def stop(self) -> None:
        stop_group(self.process)
