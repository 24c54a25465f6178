"""The GitHub Actions workflows: a real linter passes them, every step calls the project's CLI or a
make target that exists, actions are pinned, permissions are least-privilege, deploys never race."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pigeonhole.monitoring.trigger import DISPATCH_EVENT
from tests.helpers import parse_cli

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
BIN = Path(sys.executable).parent
EXPRESSION = re.compile(r"\$\{\{.*?\}\}")
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")


def load(name: str) -> dict[str, Any]:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads a bare `on` as true
    return dict(workflow)


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def make_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w-]*):", (ROOT / "Makefile").read_text(), re.MULTILINE))


def commands(run: str) -> list[list[str]]:
    """Each command line of a `run:` block, as words, with ${{ }} expressions and redirects removed."""
    lines = []
    for line in run.splitlines():
        line = EXPRESSION.sub("expr", line).split(">>")[0].split("#")[0].strip()
        if line:
            words = shlex.split(line)
            lines.append(words[1:] if words[0] == "sudo" else words)
    return lines


def lint(*arguments: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "actionlint"), "-no-color", "-shellcheck", str(BIN / "shellcheck"), *map(str, arguments)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


def test_the_workflows_are_there() -> None:
    assert {path.name for path in WORKFLOWS} == {
        "ci.yml",
        "retrain.yml",
        "deploy.yml",
        "deploy-stack.yml",
        "promote.yml",
    }


def test_actionlint_with_shellcheck_passes() -> None:
    done = lint(*WORKFLOWS)
    assert done.returncode == 0, done.stdout + done.stderr


def test_githubs_workflow_schema_passes() -> None:
    done = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_linter_fails_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  test:\n    runs_on: ubuntu-24.04\n    steps:\n"
        "      - run: echo ${{ github.event.nonsense.value }} $UNQUOTED\n"
    )
    done = lint(broken)
    assert done.returncode != 0 and "runs_on" in done.stdout


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_run_step_calls_a_real_make_target_or_cli_command(path: Path) -> None:
    targets = make_targets()
    seen = 0
    for step in steps(load(path.name)):
        for words in commands(step.get("run", "")):
            seen += 1
            if words[0] == "make":
                named = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
                assert named and set(named) <= targets, f"{path.name}: {words}"
            else:
                assert words[0] == ".venv/bin/pigeonhole", f"{path.name}: {words} is not the CLI or make"
                parse_cli(["pigeonhole", *words[1:]])
    assert seen > 0


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_third_party_actions_are_pinned_to_a_commit(path: Path) -> None:
    workflow = load(path.name)
    used = [step["uses"] for step in steps(workflow) if "uses" in step]
    used += [job["uses"] for job in workflow["jobs"].values() if "uses" in job]
    for action in used:
        assert action.startswith("./") or PINNED.match(action), (
            f"{path.name}: {action} is not pinned to a SHA"
        )


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_permissions_are_least_privilege_per_job(path: Path) -> None:
    workflow = load(path.name)
    assert workflow["permissions"] == {"contents": "read"}
    for name, job in workflow["jobs"].items():
        granted = job.get("permissions")
        assert isinstance(granted, dict), f"{path.name}:{name} sets no permissions of its own"
        writes = {scope for scope, level in granted.items() if level == "write"}
        allowed = {"id-token", "packages", "pull-requests"}
        assert writes <= allowed, f"{path.name}:{name} writes {writes - allowed}"
        if "id-token" in writes and "steps" in job:  # OIDC only where cloud credentials are taken
            assert any("configure-aws-credentials" in s.get("uses", "") for s in job["steps"]), name


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_secrets_are_never_echoed(path: Path) -> None:
    for step in steps(load(path.name)):
        assert "secrets." not in step.get("run", ""), f"{path.name}: a secret inside a run script"


def test_ci_runs_on_every_push_and_pull_request_and_previews_infra_changes() -> None:
    workflow = load("ci.yml")
    assert set(workflow["on"]) == {"push", "pull_request"}
    runs = [step.get("run") for step in workflow["jobs"]["test"]["steps"]]
    assert {"make lint", "make lint-workflows", "make test"} <= set(runs)
    preview = workflow["jobs"]["preview-infra"]
    (pulumi,) = [s for s in preview["steps"] if s.get("uses", "").startswith("pulumi/actions@")]
    assert pulumi["with"]["command"] == "preview" and pulumi["with"]["stack-name"] == "staging"
    assert pulumi["if"] == "steps.changed.outputs.infra == 'true'"
    assert preview["if"] == "github.event_name == 'pull_request'"
    # the branch's program runs with read-only credentials only; the comment is posted by a job that
    # runs none of the branch's code
    assert preview["permissions"] == {"contents": "read", "id-token": "write"}
    assert pulumi["env"] == {"PULUMI_ACCESS_TOKEN": "${{ secrets.PULUMI_PREVIEW_TOKEN }}"}
    assert pulumi["with"]["comment-on-pr"] is False
    comment = workflow["jobs"]["comment-preview"]
    assert comment["needs"] == "preview-infra" and comment["permissions"] == {"pull-requests": "write"}
    assert not [s for s in comment["steps"] if "checkout" in s.get("uses", "") or "run" in s]


def test_infra_changed_tells_whether_a_change_touches_infra(tmp_path: Path) -> None:
    """The make target the preview job branches on, in a scratch repository with two commits."""

    def git(*arguments: str) -> None:
        subprocess.run(["git", *arguments], cwd=tmp_path, check=True, capture_output=True)

    def changed(base: str) -> str:
        command = ["make", "-s", "-f", str(ROOT / "Makefile"), "infra-changed", f"BASE={base}"]
        return subprocess.run(
            command, cwd=tmp_path, capture_output=True, text=True, check=True
        ).stdout.strip()

    git("init", "-q")
    git("config", "user.email", "ci@example.com")
    git("config", "user.name", "ci")
    (tmp_path / "README.md").write_text("x\n")
    git("add", ".")
    git("commit", "-qm", "docs")
    (tmp_path / "infra").mkdir()
    (tmp_path / "infra" / "Pulumi.yaml").write_text("name: x\n")
    git("add", ".")
    git("commit", "-qm", "infra")
    assert changed("HEAD~1") == "infra=true"
    assert changed("HEAD") == "infra=false"


def test_retrain_listens_to_schedule_hand_and_the_drift_trigger_and_runs_in_the_cluster() -> None:
    workflow = load("retrain.yml")
    triggers = workflow["on"]
    assert triggers["schedule"] and triggers["repository_dispatch"]["types"] == [DISPATCH_EVENT]
    assert triggers["workflow_dispatch"]["inputs"]["stack"]["options"] == ["staging", "prod"]
    (job,) = workflow["jobs"].values()
    runs = [step.get("run") for step in job["steps"]]
    # no runner-side training: the Job runs where MLflow, the dataset and the feedback are
    assert 'make cluster-job TEMPLATE=pigeonhole-retrain >> "$GITHUB_OUTPUT"' in runs
    assert not any(".venv/bin/pigeonhole" in (r or "") for r in runs)


def test_prod_promotion_is_a_reviewed_job_in_prods_cluster() -> None:
    workflow = load("promote.yml")
    assert set(workflow["on"]) == {"workflow_dispatch"}
    (job,) = workflow["jobs"].values()
    assert job["environment"] == "production" and job["env"]["STACK"] == "prod"
    assert [s["run"] for s in job["steps"] if "run" in s] == ["make cluster-job TEMPLATE=pigeonhole-promote"]
    assert workflow["concurrency"]["cancel-in-progress"] is False


def test_deploy_waits_for_ci_then_staging_then_reviewed_prod_plan_and_rolls_back() -> None:
    workflow = load("deploy.yml")
    assert set(workflow["on"]) == {"workflow_run", "workflow_dispatch"}
    assert workflow["on"]["workflow_run"] == {
        "workflows": ["ci"],
        "types": ["completed"],
        "branches": ["main"],
    }
    jobs = workflow["jobs"]
    assert "conclusion == 'success'" in jobs["image"]["if"]
    assert jobs["staging"]["needs"] == "image" and jobs["prod"]["needs"] == ["image", "staging"]
    assert jobs["staging"]["with"]["environment"] == "staging"
    assert jobs["prod"]["with"]["environment"] == "production"
    assert "head_sha" in jobs["image"]["env"]["IMAGE"]
    stack = load("deploy-stack.yml")["jobs"]
    assert [s.get("run") for s in stack["preview"]["steps"] if s.get("run")] == ["make preview"]
    rollout = stack["rollout"]
    assert rollout["needs"] == "preview" and rollout["environment"] == "${{ inputs.environment }}"
    assert rollout["concurrency"] == {"group": "deploy-${{ inputs.stack }}", "cancel-in-progress": False}
    runs = [step.get("run") or "" for step in rollout["steps"]]
    deploy = next(i for i, r in enumerate(runs) if r.startswith("make deploy PLAN="))
    assert deploy < runs.index("make smoke") < runs.index("make rollback-deploy")
    (rollback,) = [step for step in rollout["steps"] if step.get("run") == "make rollback-deploy"]
    assert (
        "steps.up.outcome == 'failure'" in rollback["if"]
        and "steps.smoke.outcome == 'failure'" in rollback["if"]
    )
