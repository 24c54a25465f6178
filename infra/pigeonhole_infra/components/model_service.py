"""The suggestion service: the Bento image behind a Service, autoscaled, never below capacity.

Rolling updates add a pod before removing one (maxUnavailable 0), readiness is BentoML's /readyz
(not ready until a champion is loaded), the HPA scales on CPU and the PodDisruptionBudget keeps
node drains from taking more than one pod at a time. The callers' key file is a mounted Secret
(rotating a key is a Secret update, which the pods pick up without a restart), and the Ingress
publishes only the public API: /reload, /metrics and the docs stay inside the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from pigeonhole.core.settings import setting_env
from pigeonhole.serving.auth import API_ROUTES
from pigeonhole_infra import pods
from pigeonhole_infra.components.cluster_addons import CLUSTER_ISSUER
from pigeonhole_infra.config import ServiceConfig

NAME = "pigeonhole-service"
PORT = 3000
KEYS_DIR = "/etc/pigeonhole/keys"


def serve_command() -> list[str]:
    """The README's `pigeonhole serve`, on every interface of the pod: the champion, following promotions."""
    return ["pigeonhole", "serve", "--host", "0.0.0.0", "--port", str(PORT)]


@dataclass(frozen=True)
class ServiceCredentials:
    """Secret names: the callers' key file (key `api-keys.json`), the feedback-token signing key
    (key `key`) and Prometheus's metrics key (key `token`)."""

    key_file: pulumi.Input[str]
    signing_key: pulumi.Input[str]
    metrics_key: pulumi.Input[str]


@dataclass(frozen=True)
class ModelServiceArgs:
    namespace: pulumi.Input[str]
    image: pods.Image
    config: ServiceConfig
    registry: pods.RegistryIdentity  # the reader: it loads the champion, never moves an alias
    database_secret: pulumi.Input[str]  # key pods.LOG_WRITER_URL_KEY: insert into the log, nothing else
    credentials: ServiceCredentials


class ModelService(pulumi.ComponentResource):
    url: pulumi.Output[str]

    def __init__(self, name: str, args: ModelServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pigeonhole:platform:ModelService", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cfg = args.config
        selector = pods.labels("service")
        account = pods.service_account(f"{name}-sa", NAME, args.namespace, "service", child, image=args.image)
        tmp_volume, tmp_mount = pods.scratch()
        keys_volume = k8s.core.v1.VolumeArgs(
            name="api-keys",
            secret=k8s.core.v1.SecretVolumeSourceArgs(
                secret_name=args.credentials.key_file, default_mode=0o440
            ),
        )
        keys_mount = k8s.core.v1.VolumeMountArgs(name="api-keys", mount_path=KEYS_DIR, read_only=True)
        deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=pods.metadata(NAME, args.namespace, "service"),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=cfg.replicas,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
                strategy=k8s.apps.v1.DeploymentStrategyArgs(
                    type="RollingUpdate",
                    rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(max_unavailable=0, max_surge=1),
                ),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        labels=selector,
                        annotations={"prometheus.io/scrape": "true", "prometheus.io/port": str(PORT)},
                    ),
                    spec=k8s.core.v1.PodSpecArgs(
                        service_account_name=account.metadata.name,
                        automount_service_account_token=False,
                        security_context=pods.pod_security(),
                        termination_grace_period_seconds=30,
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name="service",
                                image=args.image.name,
                                command=serve_command(),
                                ports=[k8s.core.v1.ContainerPortArgs(name="http", container_port=PORT)],
                                env=[
                                    *pods.settings_env(
                                        {
                                            "workers": str(cfg.workers),
                                            "api_keys_file": f"{KEYS_DIR}/api-keys.json",
                                        }
                                    ),
                                    *pods.platform_env(
                                        args.registry, args.database_secret, pods.LOG_WRITER_URL_KEY
                                    ),
                                    pods.secret_env(
                                        setting_env("feedback_signing_key"),
                                        args.credentials.signing_key,
                                        "key",
                                    ),
                                ],
                                security_context=pods.container_security(),
                                resources=pods.resources(
                                    cfg.cpu_request, cfg.memory_request, cfg.cpu_limit, cfg.memory_limit
                                ),
                                startup_probe=k8s.core.v1.ProbeArgs(
                                    http_get=k8s.core.v1.HTTPGetActionArgs(path="/livez", port="http"),
                                    period_seconds=5,
                                    failure_threshold=36,
                                ),
                                liveness_probe=k8s.core.v1.ProbeArgs(
                                    http_get=k8s.core.v1.HTTPGetActionArgs(path="/livez", port="http"),
                                    period_seconds=10,
                                    failure_threshold=3,
                                ),
                                readiness_probe=k8s.core.v1.ProbeArgs(
                                    http_get=k8s.core.v1.HTTPGetActionArgs(path="/readyz", port="http"),
                                    period_seconds=5,
                                    failure_threshold=2,
                                ),
                                volume_mounts=[tmp_mount, keys_mount],
                            )
                        ],
                        volumes=[tmp_volume, keys_volume],
                    ),
                ),
            ),
            opts=child,
        )
        service = pods.cluster_service(f"{name}-service", NAME, args.namespace, "service", 80, child)
        k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{name}-hpa",
            metadata=pods.metadata(NAME, args.namespace, "service"),
            spec=k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs(
                scale_target_ref=k8s.autoscaling.v2.CrossVersionObjectReferenceArgs(
                    api_version="apps/v1", kind="Deployment", name=deployment.metadata.name
                ),
                min_replicas=cfg.replicas,
                max_replicas=cfg.max_replicas,
                metrics=[
                    k8s.autoscaling.v2.MetricSpecArgs(
                        type="Resource",
                        resource=k8s.autoscaling.v2.ResourceMetricSourceArgs(
                            name="cpu",
                            target=k8s.autoscaling.v2.MetricTargetArgs(
                                type="Utilization", average_utilization=cfg.cpu_target
                            ),
                        ),
                    )
                ],
            ),
            opts=child,
        )
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata=pods.metadata(NAME, args.namespace, "service"),
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                max_unavailable=1, selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector)
            ),
            opts=child,
        )
        in_cluster = pulumi.Output.concat(
            "http://", service.metadata.name, ".", args.namespace, ".svc.cluster.local"
        )
        if cfg.ingress_host:
            self._ingress(name, args, service, child)
            self.url = pulumi.Output.from_input(f"https://{cfg.ingress_host}")
        else:
            self.url = in_cluster
        self.register_outputs({"url": self.url})

    @staticmethod
    def _ingress(
        name: str, args: ModelServiceArgs, service: k8s.core.v1.Service, opts: pulumi.ResourceOptions
    ) -> None:
        host = str(args.config.ingress_host)
        k8s.networking.v1.Ingress(
            f"{name}-ingress",
            # cert-manager (installed with the ingress controller) fills the TLS Secret
            metadata=pods.metadata(
                NAME,
                args.namespace,
                "service",
                annotations={"cert-manager.io/cluster-issuer": CLUSTER_ISSUER},
            ),
            spec=k8s.networking.v1.IngressSpecArgs(
                ingress_class_name=args.config.ingress_class,
                tls=[k8s.networking.v1.IngressTLSArgs(hosts=[host], secret_name=f"{NAME}-tls")],
                rules=[
                    k8s.networking.v1.IngressRuleArgs(
                        host=host,
                        http=k8s.networking.v1.HTTPIngressRuleValueArgs(
                            # the public API only: everything else answers 404 at the edge
                            paths=[
                                k8s.networking.v1.HTTPIngressPathArgs(
                                    path=route,
                                    path_type="Exact",
                                    backend=k8s.networking.v1.IngressBackendArgs(
                                        service=k8s.networking.v1.IngressServiceBackendArgs(
                                            name=service.metadata.name,
                                            port=k8s.networking.v1.ServiceBackendPortArgs(name="http"),
                                        )
                                    ),
                                )
                                for route in sorted(API_ROUTES)
                            ]
                        ),
                    )
                ],
            ),
            opts=opts,
        )
