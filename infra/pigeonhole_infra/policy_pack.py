"""The platform's Kubernetes rules (policies.py) as Pulumi CrossGuard policies, all mandatory.

`infra/policy` is the pack: `pulumi preview --policy-pack policy` (and CI's preview of every pull
request touching infra/) refuses any object that breaks one, before anything reaches a cluster.
"""

from __future__ import annotations

from collections.abc import Callable

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from pigeonhole_infra.policies import POLICIES, Manifest

Validate = Callable[[ResourceValidationArgs, ReportViolation], None]


def _validator(rule: Callable[[Manifest], list[str]]) -> Validate:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        # objects sent to the API server; a Helm release is the provider's, its chart is pinned
        if not args.resource_type.startswith("kubernetes:") or args.resource_type.startswith(
            "kubernetes:helm.sh/"
        ):
            return
        for violation in rule(dict(args.props)):
            report_violation(violation, None)

    return validate


def policies() -> list[ResourceValidationPolicy]:
    return [
        ResourceValidationPolicy(
            name=name.replace(" ", "-"),
            description=f"Kubernetes objects: {name}",
            validate=_validator(rule),
            enforcement_level=EnforcementLevel.MANDATORY,
        )
        for name, rule in POLICIES.items()
    ]
