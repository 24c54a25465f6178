"""In-cluster PostgreSQL (kind and existing clusters): a StatefulSet with its data on a PVC."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from pigeonhole_infra import pods

NAME = "pigeonhole-postgres"
PORT = 5432


def service_host(namespace: pulumi.Input[str]) -> pulumi.Output[str]:
    """The in-cluster DNS name clients use, known before anything is created."""
    return pulumi.Output.concat(NAME, ".", namespace, ".svc.cluster.local")


POSTGRES_UID = 70  # the `postgres` user of the alpine image


@dataclass(frozen=True)
class PostgresArgs:
    namespace: pulumi.Input[str]
    image: str
    storage_gb: int
    secret_name: pulumi.Input[str]  # key pods.ADMIN_PASSWORD_KEY: the administrator's
    user: str
    database: str


class Postgres(pulumi.ComponentResource):
    def __init__(self, name: str, args: PostgresArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pigeonhole:platform:Postgres", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        selector = pods.labels("postgres")
        pods.cluster_service(
            f"{name}-service",
            NAME,
            args.namespace,
            "postgres",
            PORT,
            child,
            target_port=PORT,
            port_name="postgres",
        )
        data = k8s.core.v1.VolumeMountArgs(name="data", mount_path="/var/lib/postgresql/data")
        run_volume, run_mount = pods.scratch("run", "/var/run/postgresql")
        tmp_volume, tmp_mount = pods.scratch()
        probe = k8s.core.v1.ProbeArgs(
            exec_=k8s.core.v1.ExecActionArgs(command=["pg_isready", "-U", args.user, "-d", args.database]),
            period_seconds=10,
            failure_threshold=6,
        )
        k8s.apps.v1.StatefulSet(
            f"{name}-statefulset",
            metadata=pods.metadata(NAME, args.namespace, "postgres"),
            spec=k8s.apps.v1.StatefulSetSpecArgs(
                service_name=NAME,
                replicas=1,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=selector),
                    spec=k8s.core.v1.PodSpecArgs(
                        automount_service_account_token=False,
                        security_context=pods.pod_security(POSTGRES_UID),
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name="postgres",
                                image=args.image,
                                ports=[k8s.core.v1.ContainerPortArgs(name="postgres", container_port=PORT)],
                                env=[
                                    *pods.env(
                                        {
                                            "POSTGRES_USER": args.user,
                                            "POSTGRES_DB": args.database,
                                            "PGDATA": "/var/lib/postgresql/data/pgdata",
                                        }
                                    ),
                                    pods.secret_env(
                                        "POSTGRES_PASSWORD", args.secret_name, pods.ADMIN_PASSWORD_KEY
                                    ),
                                ],
                                security_context=pods.container_security(),
                                resources=pods.resources("250m", "512Mi", "1", "1Gi"),
                                readiness_probe=probe,
                                liveness_probe=probe,
                                volume_mounts=[data, run_mount, tmp_mount],
                            )
                        ],
                        volumes=[run_volume, tmp_volume],
                    ),
                ),
                volume_claim_templates=[
                    k8s.core.v1.PersistentVolumeClaimArgs(
                        metadata=k8s.meta.v1.ObjectMetaArgs(name="data"),
                        spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
                            access_modes=["ReadWriteOnce"],
                            resources=k8s.core.v1.VolumeResourceRequirementsArgs(
                                requests={"storage": f"{args.storage_gb}Gi"}
                            ),
                        ),
                    )
                ],
            ),
            opts=child,
        )
        self.register_outputs({})
