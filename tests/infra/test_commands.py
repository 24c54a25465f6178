"""What the cluster runs is real: the jobs' `pigeonhole ...` lines and MLflow's own command line
parse with the actual CLIs (an unknown command or option, or a bad value, fails)."""

from __future__ import annotations

from typing import Any

import pytest
from mlflow.cli import cli as mlflow_cli

from pigeonhole_infra.components.retrain_job import RETRAIN_REASON
from pigeonhole_infra.policies import containers
from tests.helpers import parse_cli
from tests.infra.render import Rendered


def commands(rendered: Rendered) -> dict[str, list[str]]:
    """Container name -> full command line, for every container that sets one."""
    lines = {}
    for resource in rendered.kubernetes():
        for _, container in containers(resource.manifest()):
            if "command" in container:
                lines[container["name"]] = [*container["command"], *container.get("args", [])]
    return lines


def test_drift_and_retrain_jobs_run_real_pigeonhole_commands(stack: Rendered) -> None:
    lines = commands(stack)
    assert lines["drift"][:3] == ["pigeonhole", "monitor", "drift"]
    assert lines["retrain"][:2] == ["pigeonhole", "retrain"]
    drift = parse_cli(lines["drift"])
    assert drift["window"] == stack.config["pigeonhole:drift"]["window"]
    assert parse_cli(lines["retrain"])["feedback_days"] == 30.0
    assert parse_cli(lines["retrain"])["reason"] == RETRAIN_REASON, "the MLflow run says why it ran"
    assert lines["promote"] == ["pigeonhole", "promote"] and parse_cli(lines["promote"]) is not None


def test_prod_promotes_only_through_the_reviewed_promote_job(stack: Rendered) -> None:
    """The gate's verdict moves the alias by itself everywhere but prod, where a reviewer starts
    the promote Job (promote.yml)."""
    retrain = stack.named("CronJob", "pigeonhole-retrain")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in retrain["containers"][0]["env"]}
    assert env["PIGEONHOLE_GATE_PROMOTES"] == ("false" if stack.stack == "prod" else "true")


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["pigeonhole", "monitor", "drfit"], "No such command"),
        (["pigeonhole", "monitor", "drift", "--windw", "24h"], "No such option"),
        (["pigeonhole", "retrain", "--feedback-days", "a month"], "valid number"),
    ],
)
def test_the_command_check_rejects_what_the_cli_would(argv: list[str], error: str) -> None:
    with pytest.raises(Exception, match=error):
        parse_cli(argv)


def test_mlflow_server_command_line_parses_with_mlflow(stack: Rendered) -> None:
    line = commands(stack)["mlflow"]
    assert line[:2] == ["mlflow", "server"]
    server: Any = mlflow_cli.commands["server"]  # type: ignore[attr-defined]
    params = server.make_context("server", line[2:]).params
    assert params["serve_artifacts"] is True and params["port"] == 5000
    assert params["backend_store_uri"] == "$(MLFLOW_BACKEND_STORE_URI)"  # the registry role's URL
    assert params["app_name"] == "basic-auth"


def _container(stack: Rendered, name: str) -> dict[str, Any]:
    (found,) = [c for r in stack.kubernetes() for _, c in containers(r.manifest()) if c["name"] == name]
    return dict(found)


def test_the_database_setup_job_hands_the_cli_each_roles_url(
    stack: Rendered, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Job passes the URLs in the CLI's own environment variables: a misspelt name is a missing option."""
    container = _container(stack, "db-setup")
    for item in container["env"]:
        monkeypatch.setenv(item["name"], f"postgresql://{item['valueFrom']['secretKeyRef']['key']}@db/x")
    assert parse_cli(container["command"]) == {
        "admin_url": "postgresql://admin-url@db/x",
        "registry_url": "postgresql://registry-url@db/x",
        "log_url": "postgresql://log-url@db/x",
        "writer_url": "postgresql://log-writer-url@db/x",
    }


def test_the_registry_users_job_hands_the_cli_both_identities(
    stack: Rendered, monkeypatch: pytest.MonkeyPatch
) -> None:
    container = _container(stack, "registry-users")
    for item in container["env"]:
        monkeypatch.setenv(item["name"], item.get("value") or item["valueFrom"]["secretKeyRef"]["key"])
    parsed = parse_cli(container["command"])
    assert (parsed["writer"], parsed["writer_password"]) == ("pigeonhole-writer", "writer-password")
    assert (parsed["reader"], parsed["reader_password"]) == ("pigeonhole-reader", "reader-password")
