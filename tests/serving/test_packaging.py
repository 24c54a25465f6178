"""`pigeonhole build` makes a Bento of the code alone (no champion needed), which serves the registry's
champion once deployed; and the README's `pigeonhole serve`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from pigeonhole.cli import app
from pigeonhole.serving.auth import KeyRing, Role, bearer
from pigeonhole.serving.packaging import LOCK
from pigeonhole.serving.process import free_port, wait_until_up
from tests.serving.conftest import start_server, stop_server


def test_bento_builds_without_a_champion_and_serves_the_registrys(
    served_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bentoml_home = tmp_path / "bentoml"
    monkeypatch.setenv("BENTOML_HOME", str(bentoml_home))
    built = CliRunner().invoke(app, ["build", "--home", str(tmp_path / "no-registry")])
    assert built.exit_code == 0, built.output
    assert not (tmp_path / "no-registry" / "mlflow.db").exists(), "building never touches a registry"
    tag = built.output.split("built Bento ")[1].split()[0]
    bento_dir = bentoml_home / "bentos" / tag.replace(":", "/")
    manifest = yaml.safe_load((bento_dir / "bento.yaml").read_text())
    assert manifest["models"] == []
    (setup_script,) = (bento_dir / "env" / "docker").glob("script__*")
    dockerfile = (bento_dir / "env" / "docker" / "Dockerfile").read_text()
    assert f"./env/docker/{setup_script.name}" in dockerfile
    # The image's `pigeonhole` command (what the Kubernetes jobs run) works from the Bento's sources.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    subprocess.run(
        [str(setup_script)],
        env={"PIGEONHOLE_BIN_DIR": str(bin_dir)},
        check=True,
    )
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "BENTO_PATH": str(bento_dir)}
    shim = subprocess.run(
        [str(bin_dir / "pigeonhole"), "monitor", "drift", "--help"], env=env, capture_output=True, text=True
    )
    assert shim.returncode == 0 and "--window" in shim.stdout, shim.stderr
    # the image has no checkout beside it: every part must come from the Bento's own sources
    src = bento_dir / "src"
    assert not [p for p in src.rglob("*") if p.is_symlink()]
    imported = subprocess.run(
        [
            sys.executable,
            "-c",
            "import pigeonhole.model.registry as a, pigeonhole.prediction_log.sinks as b, "
            "pigeonhole.monitoring.drift as c; print(a.__file__, b.__file__, c.__file__)",
        ],
        env={**env, "PYTHONPATH": str(src)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert imported.returncode == 0, imported.stderr
    assert all(path.startswith(str(src)) for path in imported.stdout.split()), imported.stdout
    # the image installs the hashed lock, on a base pinned by digest: two builds of one commit get the
    # same packages, and a file whose hash differs is refused
    assert (bento_dir / "env" / "python" / "requirements.txt").read_text() == LOCK.read_text()
    assert "pip install -r $BENTO_PATH/env/python/requirements.txt" in dockerfile
    assert re.search(r"^FROM python:3\.11\S*@sha256:[0-9a-f]{64} ", dockerfile, re.M), dockerfile
    # Served from the Bento, the champion comes from the registry the deployment points it at.
    server = start_server(
        tmp_path,
        {"BENTOML_HOME": str(bentoml_home), "PIGEONHOLE_HOME": str(served_home)},
        target=tag,
    )
    try:
        with server.client() as client:
            answer = client.post("/suggest", json={"title": "Nintendo Switch with two controllers"}).json()
        assert answer["model_version"] == "1"
        assert answer["suggestions"][0]["category"] == "Electronics > Video games & consoles"
    finally:
        stop_server(server)


def test_pigeonhole_serve_runs_the_service(served_home: Path, tmp_path: Path) -> None:
    """The README's `pigeonhole serve` command, for real, as a subprocess."""
    port = free_port()
    cli = shutil.which("pigeonhole", path=str(Path(sys.executable).parent))
    assert cli is not None
    env = {
        **os.environ,
        "PIGEONHOLE_WORKERS": "1",
        "PIGEONHOLE_RELOAD_SECONDS": "0",
        "PIGEONHOLE_API_KEYS_FILE": str(tmp_path / "keys.json"),
    }
    refused = subprocess.run(
        [cli, "serve", "--home", str(served_home)], env=env, capture_output=True, text=True
    )
    assert refused.returncode == 2 and "no API keys in" in refused.stderr, (
        "secure by default: no open service"
    )
    key = KeyRing(tmp_path / "keys.json").add("web", Role.client)
    with (tmp_path / "serve.log").open("wb") as log:
        process = subprocess.Popen(
            [cli, "serve", "--port", str(port), "--home", str(served_home)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/readyz", 90, process, tmp_path / "serve.log")
        answer = httpx.post(
            f"http://127.0.0.1:{port}/suggest", json={"title": "Dell XPS 13 laptop"}, headers=bearer(key)
        ).json()
        assert answer["suggestions"][0]["category"] == "Electronics > Laptops"
    finally:
        process.terminate()
        process.wait(timeout=30)
