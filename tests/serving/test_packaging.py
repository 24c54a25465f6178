"""`pigeonhole build` packs the champion into a Bento that serves it without the registry."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pigeonhole.cli import app
from tests.serving.conftest import start_server, stop_server


def test_built_bento_serves_the_champion_it_was_built_with(
    served_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bentoml_home = tmp_path / "bentoml"
    monkeypatch.setenv("BENTOML_HOME", str(bentoml_home))
    built = CliRunner().invoke(app, ["build", "--home", str(served_home)])
    assert built.exit_code == 0, built.output
    tag = built.output.split("built Bento ")[1].split()[0]
    bento_dir = bentoml_home / "bentos" / tag.replace(":", "/")
    manifest = yaml.safe_load((bento_dir / "bento.yaml").read_text())
    assert manifest["labels"]["model_version"] == "1" and manifest["models"]
    assert (bento_dir / "env" / "docker" / "Dockerfile").exists()
    requirements = (bento_dir / "env" / "python" / "requirements.txt").read_text()
    assert "pandas>=2.2,<3" in requirements and "==" not in requirements.replace("bentoml==", "")
    # Served from the Bento alone: an empty state folder, so no registry to fall back on.
    server = start_server(
        tmp_path,
        {
            "BENTOML_HOME": str(bentoml_home),
            "PIGEONHOLE_HOME": str(tmp_path / "none"),
            "PIGEONHOLE_MODEL_SOURCE": "bento",
        },
        target=tag,
    )
    try:
        with server.client() as client:
            answer = client.post("/suggest", json={"title": "Nintendo Switch with two controllers"}).json()
        assert answer["model_version"] == "1"
        assert answer["suggestions"][0]["category"] == "Electronics > Video games & consoles"
    finally:
        stop_server(server)
