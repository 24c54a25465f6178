"""`pigeonhole db setup` on the real server: the service's role can only insert into the log. An attacker
holding the internet-facing pod's credentials reads nothing back, rewrites nothing stored and never
reaches the registry's tables."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlparse

import psycopg
import pytest
from typer.testing import CliRunner

from pigeonhole.cli import app
from pigeonhole.prediction_log.sinks import PostgresSink
from tests.prediction_log.test_sinks import _feedback, _prediction

pytestmark = pytest.mark.postgres


@dataclass(frozen=True)
class Roles:
    admin: str
    registry: str
    log: str
    writer: str

    def options(self) -> list[str]:
        return [
            f"--admin-url={self.admin}",
            f"--registry-url={self.registry}",
            f"--log-url={self.log}",
            f"--writer-url={self.writer}",
        ]


@pytest.fixture
def roles(postgres_admin: str) -> Iterator[Roles]:
    """Three roles and two databases named for this test alone; dropped afterwards."""
    tag = f"t{os.getpid()}_{os.urandom(3).hex()}"
    server = urlparse(postgres_admin)
    host = f"{server.hostname}:{server.port or 5432}"

    def url(user: str, database: str) -> str:
        return f"postgresql://{user}:pw-{user}@{host}/{database}"

    made = Roles(
        postgres_admin,
        url(f"registry_{tag}", f"registry_{tag}"),
        url(f"log_{tag}", f"log_{tag}"),
        url(f"writer_{tag}", f"log_{tag}"),
    )
    yield made
    with psycopg.connect(postgres_admin, autocommit=True) as conn:
        for database in (f"registry_{tag}", f"log_{tag}"):
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        for user in (f"writer_{tag}", f"log_{tag}", f"registry_{tag}"):
            conn.execute(f'DROP ROLE IF EXISTS "{user}"')


def _denied(url: str, statement: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute(statement)
    except psycopg.errors.InsufficientPrivilege:
        return True
    return False


def test_the_services_role_may_only_insert_into_the_log(roles: Roles) -> None:
    runner = CliRunner()
    first = runner.invoke(app, ["db", "setup", *roles.options()])
    assert first.exit_code == 0, first.output
    assert f"{urlparse(roles.writer).username} may only insert into predictions, feedback" in first.output
    again = runner.invoke(app, ["db", "setup", *roles.options()])
    assert again.exit_code == 0 and "log tables up to date" in again.output, again.output

    # the service, with its own role: tables the owner made, no DDL of its own, both kinds of record stored
    now = datetime.now(UTC)
    service = PostgresSink(roles.writer)
    service.write_predictions([_prediction(now)] * 2)  # the same request twice: ON CONFLICT keeps one
    service.write_feedback(_feedback(now))
    service.close()
    owner = PostgresSink(roles.log)
    hour = timedelta(hours=1)
    assert len(owner.read_predictions(now - hour, now + hour)) == 1
    assert len(owner.read_feedback(now - hour, now + hour)) == 1
    owner.close()

    # the service's role reads nothing back and changes nothing stored
    for statement in (
        "SELECT title FROM predictions",
        "SELECT chosen_category FROM feedback",
        "UPDATE feedback SET chosen_category = 'Pets'",
        "DELETE FROM predictions",
        "TRUNCATE feedback",
        "CREATE TABLE stash (x int)",
    ):
        assert _denied(roles.writer, statement), statement
    # ...and cannot even connect to the registry's database, nor can the log's owner
    registry_db = urlparse(roles.registry).path
    for url in (roles.writer, roles.log):
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            psycopg.connect(url.rsplit("/", 1)[0] + registry_db, connect_timeout=3).close()
    psycopg.connect(roles.registry, connect_timeout=3).close()  # its own role can


def test_setup_refuses_roles_that_would_share_privileges(roles: Roles) -> None:
    shared = Roles(roles.admin, roles.registry, roles.log, roles.log)
    refused = CliRunner().invoke(app, ["db", "setup", *shared.options()])
    assert refused.exit_code == 2
    assert "need four roles" in refused.output


def test_setup_refuses_a_role_that_already_has_powers(roles: Roles) -> None:
    writer = urlparse(roles.writer).username
    with psycopg.connect(roles.admin, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{writer}" LOGIN CREATEROLE')
    refused = CliRunner().invoke(app, ["db", "setup", *roles.options()])
    assert refused.exit_code == 2
    assert f"role {writer} may create roles or databases" in refused.output
