"""NetworkPolicies: deny all ingress in the namespace, then open exactly the paths the platform uses.

From outside the namespace only the suggestion service is reachable. PostgreSQL accepts only MLflow
and the pods that run pigeonhole code (service, drift, retraining); MLflow accepts those pods; the
reports UI accepts the namespace's pods (port-forwards go through the kubelet, not the pod network).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from pigeonhole_infra import pods

PLATFORM_CODE = ["service", "drift", "retrain"]  # components that run pigeonhole code


@dataclass(frozen=True)
class Rule:
    """Let ``sources`` (components in this namespace; None = anywhere) reach ``target`` on ``port``."""

    name: str
    target: str
    port: int
    sources: list[str] | None


@dataclass(frozen=True)
class NetworkPoliciesArgs:
    namespace: pulumi.Input[str]
    service_port: int
    mlflow_port: int
    postgres_port: int | None  # None: the database is outside the cluster (RDS, its security group)
    reports_port: int

    def rules(self) -> list[Rule]:
        rules = [
            Rule("service-from-anywhere", "service", self.service_port, None),
            Rule("mlflow-from-platform", "mlflow", self.mlflow_port, PLATFORM_CODE),
            Rule("reports-from-namespace", "reports", self.reports_port, [*PLATFORM_CODE, "mlflow"]),
        ]
        if self.postgres_port is not None:
            rules.append(
                Rule("postgres-from-platform", "postgres", self.postgres_port, ["mlflow", *PLATFORM_CODE])
            )
        return rules


def _peers(sources: list[str] | None) -> list[k8s.networking.v1.NetworkPolicyPeerArgs] | None:
    if sources is None:
        return None  # no `from`: any source, inside or outside the cluster
    return [
        k8s.networking.v1.NetworkPolicyPeerArgs(
            pod_selector=k8s.meta.v1.LabelSelectorArgs(
                match_expressions=[
                    k8s.meta.v1.LabelSelectorRequirementArgs(
                        key=pods.COMPONENT_LABEL, operator="In", values=sources
                    )
                ],
                match_labels={"app.kubernetes.io/part-of": pods.PART_OF},
            )
        )
    ]


class NetworkPolicies(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: NetworkPoliciesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pigeonhole:platform:NetworkPolicies", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        k8s.networking.v1.NetworkPolicy(
            f"{name}-default-deny",
            metadata=pods.metadata("default-deny-ingress", args.namespace, "network"),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(), policy_types=["Ingress"]
            ),
            opts=child,
        )
        for rule in args.rules():
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{rule.name}",
                metadata=pods.metadata(f"allow-{rule.name}", args.namespace, "network"),
                spec=k8s.networking.v1.NetworkPolicySpecArgs(
                    pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=pods.labels(rule.target)),
                    policy_types=["Ingress"],
                    ingress=[
                        k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                            from_=_peers(rule.sources),
                            ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=rule.port)],
                        )
                    ],
                ),
                opts=child,
            )
        self.register_outputs({})
