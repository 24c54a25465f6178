"""The same lifecycle against a real `mlflow server` on a real PostgreSQL backend."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import mlflow
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from typer.testing import CliRunner

from pigeonhole.cli import app
from pigeonhole.core.settings import Settings, get_settings
from pigeonhole.model.registry import MLFLOW_UI, connect, load_predictor, registry_location, version_page
from pigeonhole.serving.process import free_port, wait_until_up

pytestmark = pytest.mark.postgres


@contextmanager
def _serve(backend: str, tmp_path: Path, *extra: str, env: dict[str, str] | None = None) -> Iterator[str]:
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
                backend,
                "--artifacts-destination",
                str(tmp_path / "artifacts"),
                "--workers",
                "1",
                *extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=log_file,
            env={**os.environ, **(env or {})},
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/health", 90, server, log_path)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture
def mlflow_server(postgres_database: str, tmp_path: Path) -> Iterator[str]:
    with _serve(postgres_database, tmp_path) as url:
        yield url


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


ADMIN_PASSWORD = "admin-password-for-this-test-only"


@pytest.fixture
def mlflow_auth_server(postgres_database: str, tmp_path: Path) -> Iterator[str]:
    """The deployed stacks' server: MLflow's basic-auth app, its users in the registry's own database."""
    config = tmp_path / "basic_auth.ini"
    config.write_text(
        "[mlflow]\ndefault_permission = READ\nadmin_username = admin\n"
        f"database_uri = {postgres_database}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    environment = {
        "MLFLOW_AUTH_CONFIG_PATH": str(config),
        "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "csrf-key-for-this-test-only",
    }
    with _serve(postgres_database, tmp_path, "--app-name", "basic-auth", env=environment) as url:
        yield url


def _as(monkeypatch: pytest.MonkeyPatch, user: str | None, password: str | None = None) -> None:
    for name, value in (("MLFLOW_TRACKING_USERNAME", user), ("MLFLOW_TRACKING_PASSWORD", password)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)


def test_only_the_writer_may_move_an_alias_and_nobody_anonymous_gets_in(
    mlflow_auth_server: str, listings_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    common = ["--tracking-uri", mlflow_auth_server, "--home", str(tmp_path / "state")]
    users = {
        "MLFLOW_WRITER_USERNAME": "trainer",
        "MLFLOW_WRITER_PASSWORD": "trainer-password-1",
        "MLFLOW_READER_USERNAME": "service",
        "MLFLOW_READER_PASSWORD": "service-password-1",
    }
    _as(monkeypatch, "admin", ADMIN_PASSWORD)
    made = runner.invoke(app, ["models", "users", "--tracking-uri", mlflow_auth_server], env=users)
    assert made.exit_code == 0, made.output
    assert "trainer manages experiment" in made.output and "service reads only" in made.output

    _as(monkeypatch, None)  # anonymous: 401 on everything
    anonymous = httpx.get(f"{mlflow_auth_server}/api/2.0/mlflow/registered-models/search")
    assert anonymous.status_code == 401

    _as(monkeypatch, "trainer", "trainer-password-1")
    trained = runner.invoke(app, ["train", "--data", str(listings_csv), "--min-class-count", "5", *common])
    assert trained.exit_code == 0, trained.output
    promoted = runner.invoke(app, ["promote", *common])
    assert promoted.exit_code == 0 and "PROMOTED" in promoted.output

    _as(monkeypatch, "service", "service-password-1")
    client = connect(get_settings(tracking_uri=mlflow_auth_server, home=tmp_path / "state"))
    champion = client.get_model_version_by_alias("listing-category", "champion")
    predictor = load_predictor(champion)  # the service reads the champion...
    assert predictor.suggest(pd.DataFrame({"title": ["Bugaboo Fox pushchair"]}), k=1) is not None
    with pytest.raises(MlflowException, match=r"PERMISSION_DENIED|Permission denied"):
        client.set_registered_model_alias("listing-category", "champion", "1")  # ...and cannot move it
    with pytest.raises(MlflowException, match=r"PERMISSION_DENIED|Permission denied"):
        client.set_model_version_tag("listing-category", champion.version, "gate", "PASS")
    # a wrong admin password is one clear line, not a traceback
    _as(monkeypatch, "admin", "not-the-admin-password")
    refused = runner.invoke(app, ["models", "users", "--tracking-uri", mlflow_auth_server], env=users)
    assert refused.exit_code == 2 and "the registry refused" in refused.output, refused.output


def test_where_the_registry_is_shown_without_its_password(tmp_path: Path) -> None:
    database = Settings(home=tmp_path, tracking_uri="postgresql://mlflow:s3cret@db:5432/mlflow")
    assert registry_location(database) == "postgresql://mlflow:***@db:5432/mlflow"
    server = Settings(home=tmp_path, tracking_uri="https://mlflow.example.org/")
    assert version_page(server, "listing-category", "3") == (
        "https://mlflow.example.org/#/models/listing-category/versions/3"
    )
    assert version_page(Settings(home=tmp_path), "m", "1").startswith(MLFLOW_UI), "`mlflow ui` by default"
