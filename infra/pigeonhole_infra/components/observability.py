"""Prometheus Operator objects: a ServiceMonitor on the service's /metrics, and monitoring/'s alerts.

Optional (config `monitoring.serviceMonitor`): they need the operator's CRDs in the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
import yaml

from pigeonhole_infra import pods

ALERT_RULES = Path(__file__).resolve().parents[3] / "monitoring" / "alerts.yml"


@dataclass(frozen=True)
class ObservabilityArgs:
    namespace: pulumi.Input[str]
    service_component: str
    prometheus_release: str
    metrics_key_secret: pulumi.Input[str]  # key `token`: a metrics-role API key of the service


class Observability(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pigeonhole:platform:Observability", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        release = {"release": args.prometheus_release}
        k8s.apiextensions.CustomResource(
            f"{name}-servicemonitor",
            api_version="monitoring.coreos.com/v1",
            kind="ServiceMonitor",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="pigeonhole-service",
                namespace=args.namespace,
                labels={**pods.labels("service"), **release},
            ),
            spec={
                "selector": {"matchLabels": pods.labels(args.service_component)},
                "endpoints": [
                    {
                        "port": "http",
                        "path": "/metrics",
                        "interval": "30s",
                        # /metrics needs a key too; Prometheus holds one that can read nothing else
                        "authorization": {
                            "type": "Bearer",
                            "credentials": {"name": args.metrics_key_secret, "key": "token"},
                        },
                    }
                ],
            },
            opts=child,
        )
        k8s.apiextensions.CustomResource(
            f"{name}-rules",
            api_version="monitoring.coreos.com/v1",
            kind="PrometheusRule",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="pigeonhole", namespace=args.namespace, labels={**pods.labels("monitoring"), **release}
            ),
            spec=yaml.safe_load(ALERT_RULES.read_text()),
            opts=child,
        )
        self.register_outputs({})
