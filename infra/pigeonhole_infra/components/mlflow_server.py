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
    image: pods.Image
    database_secret: pulumi.Input[str]  # key pods.REGISTRY_URL_KEY: the registry's own role and database
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
        account = pods.service_account(
            f"{name}-sa",
            NAME,
            args.namespace,
            "mlflow",
            child,
            annotations=args.service_account_annotations,
            image=args.image,
        )
        volumes, mounts = self._artifact_store(name, args, child)
        tmp_volume, tmp_mount = pods.scratch()
        health = k8s.core.v1.HTTPGetActionArgs(path="/health", port="http")
        pods.singleton_deployment(
            f"{name}-deployment",
            NAME,
            args.namespace,
            "mlflow",
            account.metadata.name,
            k8s.core.v1.ContainerArgs(
                name="mlflow",
                image=args.image.name,
                command=["mlflow", "server"],
                args=[
                    "--host=0.0.0.0",
                    f"--port={PORT}",
                    "--backend-store-uri=$(MLFLOW_BACKEND_STORE_URI)",
                    "--serve-artifacts",
                    pulumi.Output.concat("--artifacts-destination=", args.artifacts_uri or ARTIFACTS_MOUNT),
                    # Host headers the server answers: its Service names, and port-forwards
                    f"--allowed-hosts={NAME},{NAME}:*,{NAME}.*,localhost,localhost:*,127.0.0.1:*",
                ],
                ports=[k8s.core.v1.ContainerPortArgs(name="http", container_port=PORT)],
                env=[
                    pods.secret_env("MLFLOW_BACKEND_STORE_URI", args.database_secret, pods.REGISTRY_URL_KEY),
                    *pods.env({"HOME": "/tmp"}),
                ],
                security_context=pods.container_security(),
                resources=pods.resources("250m", "512Mi", "1", "1Gi"),
                startup_probe=k8s.core.v1.ProbeArgs(http_get=health, period_seconds=5, failure_threshold=60),
                readiness_probe=k8s.core.v1.ProbeArgs(http_get=health, period_seconds=10),
                liveness_probe=k8s.core.v1.ProbeArgs(http_get=health, period_seconds=20, failure_threshold=3),
                volume_mounts=[*mounts, tmp_mount],
            ),
            [*volumes, tmp_volume],
            child,
            # IRSA injects the web identity token only into pods that mount one
            automount_token=bool(args.service_account_annotations),
        )
        service = pods.cluster_service(f"{name}-service", NAME, args.namespace, "mlflow", PORT, child)
        self.url = pods.service_url(service, args.namespace, PORT)
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
