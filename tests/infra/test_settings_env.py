"""Every setting a manifest gives a container is one the platform reads, with a value it accepts.

A misspelt `PIGEONHOLE_*` name would be silently ignored at run time, and a bad value would only fail
inside the pod; both fail here, for every container of every stack.
"""

from __future__ import annotations

import copy

import pytest
from pydantic import ValidationError

from pigeonhole.core.settings import ENV_PREFIX, Settings, environment_names
from pigeonhole_infra.policies import Manifest, containers
from tests.infra.render import Rendered


def settings_problems(manifest: Manifest) -> list[str]:
    """Unknown setting names, and values the Settings refuse, in one workload's containers."""
    known = environment_names()
    problems = []
    for _, container in containers(manifest):
        where = f"{manifest['kind']}/{manifest['metadata']['name']} container {container['name']}"
        env = container.get("env", [])
        names = [e["name"] for e in env if e["name"].startswith(ENV_PREFIX) or e["name"] in known]
        problems += [f"{where}: {name} is not a setting" for name in names if name not in known]
        plain = {e["name"]: e["value"] for e in env if e["name"] in known and "value" in e}
        try:
            with pytest.MonkeyPatch.context() as patch:
                for name, value in plain.items():
                    patch.setenv(name, value)
                Settings()
        except ValidationError as exc:
            problems += [f"{where}: {error['loc']}: {error['msg']}" for error in exc.errors()]
    return problems


def _workloads(rendered: Rendered) -> list[Manifest]:
    return [r.manifest() for r in rendered.kubernetes() if any(True for _ in containers(r.manifest()))]


def test_every_pigeonhole_variable_is_a_setting_with_an_accepted_value(stack: Rendered) -> None:
    workloads = _workloads(stack)
    assert [problem for w in workloads for problem in settings_problems(w)] == []
    configured = {
        container["name"]
        for w in workloads
        for _, container in containers(w)
        if any(e["name"].startswith(ENV_PREFIX) for e in container.get("env", []))
    }
    assert {"service", "drift", "retrain"} <= configured, (
        "the check must see the containers that read settings"
    )


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("PIGEONHOLE_LOG_SNIK", "postgres", "PIGEONHOLE_LOG_SNIK is not a setting"),
        ("PIGEONHOLE_TRIGGER", "kubrnetes", "trigger"),
        ("PIGEONHOLE_DRIFT_WINDOW", "a day", "30m, 24h, 7d"),
    ],
)
def test_a_broken_manifest_is_caught(dev: Rendered, name: str, value: str, problem: str) -> None:
    (drift,) = [w for w in _workloads(dev) if w["kind"] == "CronJob" and "drift" in w["metadata"]["name"]]
    broken = copy.deepcopy(drift)
    _, container = next(containers(broken))
    container["env"] = [e for e in container["env"] if e["name"] != name] + [{"name": name, "value": value}]
    assert settings_problems(drift) == []
    assert any(problem in line for line in settings_problems(broken)), settings_problems(broken)
