"""A trained registry and a real BentoML server on a free port, shared by the serving tests."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from pigeonhole.serving.auth import KeyRing, Role, bearer
from pigeonhole.serving.process import SERVICE, free_port, serve_command, wait_until_up

# the callers every test server knows: caller name -> role
CALLERS = {"web": Role.client, "mobile": Role.client, "prometheus": Role.metrics, "operator": Role.admin}


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    keys: dict[str, str]  # caller -> API key
    key_file: Path

    def client(self, caller: str | None = "web") -> httpx.Client:
        """A client sending ``caller``'s key (None: no credentials at all)."""
        headers = bearer(self.keys[caller]) if caller else {}
        return httpx.Client(base_url=self.url, timeout=30, headers=headers)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_server(
    tmp_path: Path,
    env: dict[str, str],
    wait_ready: bool = True,
    target: str = SERVICE,
) -> Server:
    port = free_port()
    log_path = tmp_path / f"bentoml-{port}.log"
    key_file = tmp_path / f"api-keys-{port}.json"
    ring = KeyRing(key_file)
    keys = {caller: ring.add(caller, role) for caller, role in CALLERS.items()}
    full_env = {
        **os.environ,
        "PIGEONHOLE_API_KEYS_FILE": str(key_file),
        # its own BentoML home: a server starting wipes the metrics files of others sharing one
        "BENTOML_HOME": str(tmp_path / f"bentoml-home-{port}"),
        "BENTOML_DO_NOT_TRACK": "True",
        "PIGEONHOLE_WORKERS": "1",
        "PIGEONHOLE_LOG_FLUSH_SECONDS": "0.2",
        "PIGEONHOLE_RELOAD_SECONDS": "0",
        **env,
    }
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            serve_command(port, target),
            env=full_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log_path, keys, key_file)
    path = "/readyz" if wait_ready else "/livez"
    try:
        wait_until_up(server.url + path, process=process, log=log_path)
    except RuntimeError:
        stop_server(server)
        raise
    return server


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()


@pytest.fixture(scope="module")
def server(served_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(
        tmp_path_factory.mktemp("server"),
        {
            "PIGEONHOLE_HOME": str(served_home),
            "PIGEONHOLE_MAX_BODY_BYTES": "65536",
            "PIGEONHOLE_BODY_TIMEOUT_SECONDS": "2",
            "PIGEONHOLE_HEADER_TIMEOUT_SECONDS": "2",
        },
    )
    yield running
    stop_server(running)
