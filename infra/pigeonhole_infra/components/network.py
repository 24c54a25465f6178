"""NetworkPolicies: deny all ingress in the namespace, then open exactly the paths the platform uses.

From outside the namespace only the suggestion service is reachable, and only from the ingress
controller's namespace (which routes the public API paths alone) and Prometheus's (for /metrics): not
from any other pod of the cluster, nor directly from outside it. PostgreSQL accepts only MLflow, the
Job that makes its roles and the pods that run pigeonhole code (service, drift, retraining); MLflow
accepts those pods and the Job that makes its users; the reports UI accepts the namespace's pods
(port-forwards go through the kubelet, not the pod network).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from pigeonhole_infra import pods
from pigeonhole_infra.components.cluster_addons import INGRESS_NAMESPACE

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"  # set by the API server on every namespace
PLATFORM_CODE = ["service", "drift", "retrain"]  # components that run pigeonhole code


@dataclass(frozen=True)
class Rule:
    """Let ``sources`` (components in this namespace) and every pod of ``namespaces`` reach ``target``."""

    name: str
    target: str
    port: int
    sources: list[str]
    namespaces: tuple[str, ...] = ()


@dataclass(frozen=True)
class NetworkPoliciesArgs:
    namespace: pulumi.Input[str]
    service_port: int
    mlflow_port: int
    postgres_port: int | None  # None: the database is outside the cluster (RDS, its security group)
    reports_port: int
    monitoring_namespace: str

    def rules(self) -> list[Rule]:
        rules = [
            Rule(
                "service-from-ingress-and-monitoring",
                "service",
                self.service_port,
                [],
                (INGRESS_NAMESPACE, self.monitoring_namespace),
            ),
            Rule("mlflow-from-platform", "mlflow", self.mlflow_port, [*PLATFORM_CODE, "registry-users"]),
            Rule("reports-from-namespace", "reports", self.reports_port, [*PLATFORM_CODE, "mlflow"]),
        ]
        if self.postgres_port is not None:
            rules.append(
                Rule(
                    "postgres-from-platform",
                    "postgres",
                    self.postgres_port,
                    ["mlflow", "db-setup", *PLATFORM_CODE],
                )
            )
        return rules


def _peers(rule: Rule) -> list[k8s.networking.v1.NetworkPolicyPeerArgs]:
    components = [
        k8s.networking.v1.NetworkPolicyPeerArgs(
            pod_selector=k8s.meta.v1.LabelSelectorArgs(
                match_expressions=[
                    k8s.meta.v1.LabelSelectorRequirementArgs(
                        key=pods.COMPONENT_LABEL, operator="In", values=rule.sources
                    )
                ],
                match_labels={"app.kubernetes.io/part-of": pods.PART_OF},
            )
        )
    ]
    namespaces = [
        k8s.networking.v1.NetworkPolicyPeerArgs(
            namespace_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={NAMESPACE_NAME_LABEL: namespace})
        )
        for namespace in rule.namespaces
    ]
    return (components if rule.sources else []) + namespaces


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
                            from_=_peers(rule),
                            ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=rule.port)],
                        )
                    ],
                ),
                opts=child,
            )
        self.register_outputs({})
