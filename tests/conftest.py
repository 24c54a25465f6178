"""Shared fixtures: isolated state folders, synthetic data, and the real local PostgreSQL server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import psycopg
import pytest

from pigeonhole.core.settings import Settings
from pigeonhole.model.synthetic import generate

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
POSTGRES_DSN = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may read a developer's own MLflow server or state folder."""
    for name in list(os.environ):
        if name.startswith("PIGEONHOLE_") or name == "MLFLOW_TRACKING_URI":
            monkeypatch.delenv(name)
    monkeypatch.setenv("BENTOML_DO_NOT_TRACK", "True")
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "state", min_class_count=5)


@pytest.fixture(scope="session")
def listings() -> pd.DataFrame:
    return generate(3000, seed=7)


@pytest.fixture(scope="session")
def listings_csv(tmp_path_factory: pytest.TempPathFactory, listings: pd.DataFrame) -> Path:
    path = tmp_path_factory.mktemp("data") / "listings.csv.gz"
    listings.to_csv(path, index=False)
    return path


POSTGRES_FIXTURES = {"postgres_admin", "postgres_database"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test on the one PostgreSQL server runs in the same pytest-xdist worker (make test runs two,
    with --dist loadgroup), one after another: one of them stops the server, others need it up."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if item.get_closest_marker("postgres") or POSTGRES_FIXTURES & fixtures:
            item.add_marker(pytest.mark.xdist_group("postgres"))


def _postgres_reachable() -> str | None:
    try:
        with psycopg.connect(POSTGRES_DSN, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[str]:
    """DSN of the local PostgreSQL server; skips without one on a laptop, fails under CI=true."""
    problem = _postgres_reachable()
    if problem:
        message = f"PostgreSQL not reachable at {POSTGRES_DSN}: {problem}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true: .ci/run must start it)")
        pytest.skip(message)
    yield POSTGRES_DSN


@pytest.fixture
def postgres_database(postgres_admin: str) -> Iterator[str]:
    """A fresh database for one test, dropped afterwards; yields its SQLAlchemy URL (psycopg 3)."""
    name = f"pigeonhole_test_{os.getpid()}_{os.urandom(3).hex()}"
    with psycopg.connect(postgres_admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = postgres_admin.rsplit("/", 1)[0]
    yield f"{base.replace('postgresql://', 'postgresql+psycopg://')}/{name}"
    with psycopg.connect(postgres_admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def served_home(tmp_path_factory: pytest.TempPathFactory, listings: pd.DataFrame) -> Path:
    """A state folder whose registry has a promoted champion (v1), trained on ``listings``."""
    from pigeonhole.model import data
    from pigeonhole.model.promote import run_gate
    from pigeonhole.model.registry import connect
    from pigeonhole.model.train import train_and_register

    home = tmp_path_factory.mktemp("served") / "state"
    settings = Settings(home=home, min_class_count=5)
    train_and_register(settings, data.validate(listings), source="synthetic")
    assert run_gate(connect(settings), settings).promoted
    return home
