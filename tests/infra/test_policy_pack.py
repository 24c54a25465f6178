"""The CrossGuard policy pack `pulumi preview --policy-pack policy` runs: every stack passes it, a
broken object is reported by it, and the pack starts the way the Pulumi engine starts it."""

from __future__ import annotations

import copy
import subprocess
import sys

from pulumi_policy import ResourceValidationArgs, ResourceValidationPolicy

from pigeonhole_infra.policies import POLICIES, Manifest
from pigeonhole_infra.policy_pack import policies
from tests.infra.render import INFRA, Rendered


def _violations(policy: ResourceValidationPolicy, resource_type: str, props: Manifest) -> list[str]:
    found: list[str] = []
    args = ResourceValidationArgs(resource_type, props, "urn:test", "test", None, None)  # type: ignore[arg-type]
    assert callable(policy.validate)
    policy.validate(args, lambda message, urn=None: found.append(message))
    return found


def test_every_stack_passes_the_policy_pack(stack: Rendered) -> None:
    pack = policies()
    assert {p.name for p in pack} == {name.replace(" ", "-") for name in POLICIES}
    for resource in stack.kubernetes():
        for policy in pack:
            assert _violations(policy, resource.typ, resource.manifest()) == [], (policy.name, resource.name)


def test_the_pack_reports_a_broken_object(dev: Rendered) -> None:
    manifest = copy.deepcopy(dev.named("Deployment", "pigeonhole-service"))
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"]["runAsNonRoot"] = False
    container["image"] = "ghcr.io/pigeonhole-mlops/pigeonhole:latest"
    by_name = {p.name: p for p in policies()}
    assert _violations(by_name["non-root"], "kubernetes:apps/v1:Deployment", manifest)
    assert _violations(by_name["pinned-images"], "kubernetes:apps/v1:Deployment", manifest)
    assert _violations(by_name["non-root"], "aws:s3/bucket:Bucket", manifest) == [], "only Kubernetes objects"


def test_the_pack_starts_as_the_engine_starts_it() -> None:
    """Pulumi runs the pack's __main__.py and reads the port of its analyzer from the first line."""
    pack = subprocess.Popen(
        [sys.executable, str(INFRA / "policy" / "__main__.py")],
        cwd=INFRA / "policy",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert pack.stdout is not None
        assert pack.stdout.readline().strip().isdigit(), pack.stderr.read() if pack.stderr else ""
    finally:
        pack.kill()
        pack.wait()
