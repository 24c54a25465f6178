"""The container rules and "no plaintext secret" hold for every object of every stack, and each
policy is shown to fail on a deliberately broken copy of a real object."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from pigeonhole_infra.policies import POLICIES, Manifest, containers, looks_secret
from tests.infra.render import INFRA, Rendered, is_secret


@pytest.mark.parametrize("policy", POLICIES)
def test_every_workload_of_every_stack_follows(stack: Rendered, policy: str) -> None:
    violations = [found for r in stack.kubernetes() for found in POLICIES[policy](r.manifest())]
    assert violations == []


def test_the_policies_see_every_workload(stack: Rendered) -> None:
    """Guards against a vacuous pass: the checked containers are the platform's."""
    names = {c["name"] for r in stack.kubernetes() for _, c in containers(r.manifest())}
    expected = {"service", "mlflow", "evidently", "drift", "retrain", "promote", "db-setup", "registry-users"}
    assert names == (expected | {"postgres"} if stack.stack == "dev" else expected)


def _container(manifest: Manifest) -> dict[str, Any]:
    return manifest["spec"]["template"]["spec"]["containers"][0]


BREAKS: list[tuple[str, Callable[[Manifest], None]]] = [
    ("non-root", lambda m: _container(m)["securityContext"].update(runAsNonRoot=False)),
    ("read-only root filesystem", lambda m: _container(m)["securityContext"].pop("readOnlyRootFilesystem")),
    (
        "no privilege escalation",
        lambda m: _container(m)["securityContext"].update(allowPrivilegeEscalation=True),
    ),
    ("no privilege escalation", lambda m: _container(m)["securityContext"].update(privileged=True)),
    (
        "capabilities dropped",
        lambda m: _container(m)["securityContext"]["capabilities"].update(add=["NET_ADMIN"]),
    ),
    ("capabilities dropped", lambda m: _container(m)["securityContext"].pop("capabilities")),
    ("pinned images", lambda m: _container(m).update(image="ghcr.io/pigeonhole-mlops/pigeonhole:latest")),
    ("pinned images", lambda m: _container(m).update(image="ghcr.io/pigeonhole-mlops/pigeonhole")),
    ("requests and limits", lambda m: _container(m)["resources"].pop("limits")),
    ("requests and limits", lambda m: _container(m)["resources"]["requests"].pop("memory")),
    (
        "no plaintext secrets",
        lambda m: _container(m)["env"].append({"name": "POSTGRES_PASSWORD", "value": "x1"}),
    ),
    (
        "no plaintext secrets",
        lambda m: _container(m)["env"].append(
            {"name": "DB", "value": "postgresql://app:hunter2@db:5432/app"}
        ),
    ),
    ("no plaintext secrets", lambda m: _container(m).update(args=["--token", "ghp_abcdefghijklmnop1234"])),
    (
        "no plaintext secrets",
        lambda m: _container(m)["env"].append({"name": "SMOKE", "value": "ph_Zx9-abcdefghijklmnop"}),
    ),
    (
        "no plaintext secrets",  # *_FILE names a mounted file, not a value
        lambda m: _container(m)["env"].append({"name": "PIGEONHOLE_API_KEYS_FILE", "value": "key-itself"}),
    ),
]


@pytest.mark.parametrize(("policy", "breaks"), BREAKS, ids=[f"{p}-{i}" for i, (p, _) in enumerate(BREAKS)])
def test_a_broken_object_fails_the_policy(
    dev: Rendered, policy: str, breaks: Callable[[Manifest], None]
) -> None:
    manifest = copy.deepcopy(dev.named("Deployment", "pigeonhole-service"))
    assert POLICIES[policy](manifest) == []
    breaks(manifest)
    assert POLICIES[policy](manifest), f"{policy} did not notice the break"


def test_a_secret_in_a_configmap_fails() -> None:
    config_map = {"kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"GITHUB_TOKEN": "abc"}}
    assert POLICIES["no plaintext secrets"](config_map)


def test_secret_references_in_command_lines_are_allowed() -> None:
    assert not looks_secret("postgresql+psycopg://pigeonhole:$(POSTGRES_PASSWORD)@db:5432/pigeonhole")
    assert looks_secret("postgresql+psycopg://pigeonhole:s3cret@db:5432/pigeonhole")


def test_kubernetes_secrets_hold_only_pulumi_secrets(stack: Rendered) -> None:
    """Secret contents are Pulumi secrets, so the state stores them encrypted, never in plain text."""
    secrets = stack.of_kind("Secret")
    assert secrets
    for secret in secrets:
        data = secret.inputs["stringData"]
        values = [data] if is_secret(data) else list(data.values())
        assert values and all(is_secret(value) for value in values), secret.inputs["metadata"]["name"]


@pytest.mark.parametrize("path", sorted(INFRA.glob("Pulumi*.yaml")), ids=lambda p: p.name)
def test_stack_config_files_hold_no_plaintext_secrets(path: Path) -> None:
    def walk(value: Any, key: str = "") -> list[str]:
        if isinstance(value, dict):
            if set(value) == {"secure"}:
                return []  # encrypted by `pulumi config set --secret`
            return [found for k, v in value.items() for found in walk(v, str(k))]
        if isinstance(value, list):
            return [found for item in value for found in walk(item, key)]
        secret_key = any(word in key.lower() for word in ("password", "token", "secret", "kubeconfig"))
        return [key] if secret_key or looks_secret(str(value)) else []

    assert walk(yaml.safe_load(path.read_text())) == []
