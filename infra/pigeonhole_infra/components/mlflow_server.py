"""MLflow tracking server and model registry: PostgreSQL backend, proxied artifact store.

Clients (the service, the drift and retraining jobs, CI) only ever talk HTTP to this server; with
`--serve-artifacts` it is also the only thing that touches the artifact store, so only its
ServiceAccount needs S3 rights (through IRSA on eks) and no pod carries cloud keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from pigeonhole_infra import pods

NAME = "pigeonhole-mlflow"
PORT = 5000
ARTIFACTS_MOUNT = "/mlartifacts"


@dataclass(frozen=True)
class MlflowServerArgs:
    namespace: pulumi.Input[str]
    image: str
    database_host: pulumi.Input[str]
    database_user: str
    database_name: str
    database_secret: pulumi.Input[str]  # key `password`
    # where artifacts live: an s3:// URI, or None for a PersistentVolumeClaim of artifacts_gb
    artifacts_uri: pulumi.Input[str] | None = None
    artifacts_gb: int = 10
    service_account_annotations: dict[str, pulumi.Input[str]] = field(default_factory=dict)


class MlflowServer(pulumi.ComponentResource):
    url: pulumi.Output[str]
    service_account: pulumi.Output[str]

    def __init__(self, name: str, args: MlflowServerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pigeonhole:platform:MlflowServer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        selector = pods.labels("mlflow")
        account = pods.service_account(
            f"{name}-sa", NAME, args.namespace, "mlflow", child, annotations=args.service_account_annotations
        )
        volumes, mounts = self._artifact_store(name, args, child)
        tmp_volume, tmp_mount = pods.scratch()
        backend = pulumi.Output.concat(
            f"postgresql+psycopg://{args.database_user}:$(POSTGRES_PASSWORD)@",
            args.database_host,
            f":5432/{args.database_name}",
        )
        health = k8s.core.v1.HTTPGetActionArgs(path="/health", port="http")
        k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=pods.metadata(NAME, args.namespace, "mlflow"),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=1,
                # a ReadWriteOnce artifacts volume cannot be mounted by old and new pod at once
                strategy=k8s.apps.v1.DeploymentStrategyArgs(type="Recreate"),
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=selector),
                    spec=k8s.core.v1.PodSpecArgs(
                        service_account_name=account.metadata.name,
                        # IRSA injects the web identity token only into pods that mount one
                        automount_service_account_token=bool(args.service_account_annotations),
                        security_context=pods.pod_security(),
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name="mlflow",
                                image=args.image,
                                command=["mlflow", "server"],
                                args=[
                                    "--host=0.0.0.0",
                                    f"--port={PORT}",
                                    pulumi.Output.concat("--backend-store-uri=", backend),
                                    "--serve-artifacts",
                                    pulumi.Output.concat(
                                        "--artifacts-destination=", args.artifacts_uri or ARTIFACTS_MOUNT
                                    ),
                                    # Host headers the server answers: its Service names, and port-forwards
                                    f"--allowed-hosts={NAME},{NAME}:*,{NAME}.*,localhost,localhost:*,127.0.0.1:*",
                                ],
                                ports=[k8s.core.v1.ContainerPortArgs(name="http", container_port=PORT)],
                                env=[
                                    pods.secret_env("POSTGRES_PASSWORD", args.database_secret, "password"),
                                    *pods.env({"HOME": "/tmp"}),
                                ],
                                security_context=pods.container_security(),
                                resources=pods.resources("250m", "512Mi", "1", "1Gi"),
                                startup_probe=k8s.core.v1.ProbeArgs(
                                    http_get=health, period_seconds=5, failure_threshold=60
                                ),
                                readiness_probe=k8s.core.v1.ProbeArgs(http_get=health, period_seconds=10),
                                liveness_probe=k8s.core.v1.ProbeArgs(
                                    http_get=health, period_seconds=20, failure_threshold=3
                                ),
                                volume_mounts=[*mounts, tmp_mount],
                            )
                        ],
                        volumes=[*volumes, tmp_volume],
                    ),
                ),
            ),
            opts=child,
        )
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=pods.metadata(NAME, args.namespace, "mlflow"),
            spec=k8s.core.v1.ServiceSpecArgs(
                selector=selector,
                ports=[k8s.core.v1.ServicePortArgs(name="http", port=PORT, target_port="http")],
            ),
            opts=child,
        )
        self.url = pulumi.Output.concat(
            "http://", service.metadata.name, ".", args.namespace, f".svc.cluster.local:{PORT}"
        )
        self.service_account = account.metadata.name
        self.register_outputs({"url": self.url})

    @staticmethod
    def _artifact_store(
        name: str, args: MlflowServerArgs, opts: pulumi.ResourceOptions
    ) -> tuple[list[k8s.core.v1.VolumeArgs], list[k8s.core.v1.VolumeMountArgs]]:
        if args.artifacts_uri is not None:
            return [], []
        claim = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-artifacts",
            metadata=pods.metadata(f"{NAME}-artifacts", args.namespace, "mlflow"),
            spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
                access_modes=["ReadWriteOnce"],
                resources=k8s.core.v1.VolumeResourceRequirementsArgs(
                    requests={"storage": f"{args.artifacts_gb}Gi"}
                ),
            ),
            opts=opts,
        )
        return (
            [pods.pvc_volume("artifacts", claim.metadata.name)],
            [k8s.core.v1.VolumeMountArgs(name="artifacts", mount_path=ARTIFACTS_MOUNT)],
        )
