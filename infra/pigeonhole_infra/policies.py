"""The rules every Kubernetes object of the platform must follow, as functions over manifests.

One owner for them: the tests (tests/infra/test_policies.py) and the CrossGuard policy pack that
`pulumi preview`/`up` run (infra/policy, built by policy_pack.py) both call these.

Each policy returns the violations it finds (empty: compliant), naming the object and container,
so a failing test says exactly what to fix.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from pigeonhole_infra.config import is_pinned

Manifest = dict[str, Any]
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|TOKEN|SECRET|API_?KEY|ACCESS_KEY|CREDENTIAL", re.IGNORECASE)
# scheme://user:password@host, unless the password is a $(VAR) reference resolved from a Secret
INLINE_CREDENTIALS = re.compile(r"://[^/\s:@]+:(?!\$\()[^@\s/]+@")
TOKEN_SHAPES = re.compile(r"\b(ghp_|gho_|github_pat_|AKIA|ASIA|xox[bp]-|ph_)[A-Za-z0-9_-]{8,}")
# the *_FILE convention: the variable names the file of a mounted Secret, not the secret itself
SECRET_FILE = re.compile(r"_FILE$")


def pod_specs(manifest: Manifest) -> Iterator[Manifest]:
    """The pod spec(s) inside a workload object, wherever its kind keeps them."""
    spec = manifest.get("spec", {})
    if manifest["kind"] == "Pod":
        yield spec
    elif manifest["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}:
        yield spec["template"]["spec"]
    elif manifest["kind"] == "CronJob":
        yield spec["jobTemplate"]["spec"]["template"]["spec"]


def containers(manifest: Manifest) -> Iterator[tuple[Manifest, Manifest]]:
    """(pod spec, container) for every container and init container of a workload."""
    for pod in pod_specs(manifest):
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            yield pod, container


def _where(manifest: Manifest, container: Manifest) -> str:
    return f"{manifest['kind']}/{manifest['metadata']['name']} container {container['name']}"


def non_root(manifest: Manifest) -> list[str]:
    return [
        f"{_where(manifest, c)}: runAsNonRoot is not true"
        for pod, c in containers(manifest)
        if c.get("securityContext", {}).get(
            "runAsNonRoot", pod.get("securityContext", {}).get("runAsNonRoot")
        )
        is not True
    ]


def read_only_root(manifest: Manifest) -> list[str]:
    return [
        f"{_where(manifest, c)}: readOnlyRootFilesystem is not true"
        for _, c in containers(manifest)
        if c.get("securityContext", {}).get("readOnlyRootFilesystem") is not True
    ]


def no_privilege_escalation(manifest: Manifest) -> list[str]:
    found = []
    for _, c in containers(manifest):
        context = c.get("securityContext", {})
        if context.get("allowPrivilegeEscalation") is not False or context.get("privileged"):
            found.append(f"{_where(manifest, c)}: privilege escalation is not ruled out")
    return found


def capabilities_dropped(manifest: Manifest) -> list[str]:
    found = []
    for _, c in containers(manifest):
        capabilities = c.get("securityContext", {}).get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []) or capabilities.get("add"):
            found.append(f"{_where(manifest, c)}: capabilities are not all dropped")
    return found


def pinned_images(manifest: Manifest) -> list[str]:
    return [
        f"{_where(manifest, c)}: image {c.get('image')!r} is not pinned to a tag or digest"
        for _, c in containers(manifest)
        if not is_pinned(str(c.get("image", "")))
    ]


def requests_and_limits(manifest: Manifest) -> list[str]:
    found = []
    for _, c in containers(manifest):
        resources = c.get("resources", {})
        for bound in ("requests", "limits"):
            missing = {"cpu", "memory"} - set(resources.get(bound, {}))
            if missing:
                found.append(f"{_where(manifest, c)}: no {bound} for {', '.join(sorted(missing))}")
    return found


def looks_secret(value: str) -> bool:
    return bool(INLINE_CREDENTIALS.search(value) or TOKEN_SHAPES.search(value))


def no_plaintext_secrets(manifest: Manifest) -> list[str]:
    """Credentials only through Secrets: never in env values, args, commands or ConfigMaps."""
    found = []
    for _, c in containers(manifest):
        for variable in c.get("env", []):
            value = variable.get("value")
            if value is None:
                continue
            names_a_file = SECRET_FILE.search(variable["name"]) and str(value).startswith("/")
            if (SECRET_NAME.search(variable["name"]) and not names_a_file) or looks_secret(str(value)):
                found.append(f"{_where(manifest, c)}: env {variable['name']} holds a secret in plain text")
        for word in [*c.get("command", []), *c.get("args", [])]:
            if looks_secret(str(word)):
                found.append(f"{_where(manifest, c)}: a credential in its command line")
    if manifest["kind"] == "ConfigMap":
        for key, value in manifest.get("data", {}).items():
            if SECRET_NAME.search(key) or looks_secret(str(value)):
                found.append(f"ConfigMap/{manifest['metadata']['name']}: {key} holds a secret")
    return found


POLICIES: dict[str, Callable[[Manifest], list[str]]] = {
    "non-root": non_root,
    "read-only root filesystem": read_only_root,
    "no privilege escalation": no_privilege_escalation,
    "capabilities dropped": capabilities_dropped,
    "pinned images": pinned_images,
    "requests and limits": requests_and_limits,
    "no plaintext secrets": no_plaintext_secrets,
}
