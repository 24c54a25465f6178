"""The same lifecycle against a real `mlflow server` on a real PostgreSQL backend."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from typer.testing import CliRunner

from pigeonhole.cli import app
from pigeonhole.serving.process import free_port, wait_until_up

pytestmark = pytest.mark.postgres


@pytest.fixture
def mlflow_server(postgres_database: str, tmp_path: Path) -> Iterator[str]:
    port, log_path = free_port(), tmp_path / "mlflow.log"
    with log_path.open("wb") as log_file:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--backend-store-uri",
                postgres_database,
                "--artifacts-destination",
                str(tmp_path / "artifacts"),
                "--workers",
                "1",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/health", 90, server, log_path)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_train_promote_and_load_champion_through_server(
    mlflow_server: str, listings_csv: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    common = ["--tracking-uri", mlflow_server, "--home", str(tmp_path / "state")]
    trained = runner.invoke(app, ["train", "--data", str(listings_csv), "--min-class-count", "5", *common])
    assert trained.exit_code == 0, trained.output
    promoted = runner.invoke(app, ["promote", *common])
    assert promoted.exit_code == 0 and "PROMOTED" in promoted.output
    mlflow.set_tracking_uri(mlflow_server)
    model = mlflow.pyfunc.load_model("models:/listing-category@champion")
    answer = model.predict(pd.DataFrame({"title": ["Bugaboo Fox pushchair with carrycot"]}))
    assert answer.loc[0, "category"] == "Kids > Prams & pushchairs"
    assert not (tmp_path / "state" / "mlflow.db").exists(), "a server URI must not fall back to SQLite"
