"""The drift reports' volume and the Evidently UI over its workspace, inside the cluster only.

No Ingress and a ClusterIP Service: data scientists reach it with
`kubectl -n pigeonhole port-forward svc/pigeonhole-reports 8000:8000`. The volume is
ReadWriteOnce, so the drift CronJob is scheduled next to this pod (pod affinity) to share it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from pigeonhole_infra import pods

NAME = "pigeonhole-reports"
PORT = 8000
MOUNT = "/reports"
WORKSPACE = f"{MOUNT}/workspace"  # where `pigeonhole monitor drift` keeps the Evidently workspace


@dataclass(frozen=True)
class ReportsUIArgs:
    namespace: pulumi.Input[str]
    image: pods.Image
    storage_gb: int


class ReportsUI(pulumi.ComponentResource):
    claim_name: pulumi.Output[str]
    url: pulumi.Output[str]

    def __init__(self, name: str, args: ReportsUIArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pigeonhole:platform:ReportsUI", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        claim = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-claim",
            metadata=pods.metadata(NAME, args.namespace, "reports"),
            spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
                access_modes=["ReadWriteOnce"],
                resources=k8s.core.v1.VolumeResourceRequirementsArgs(
                    requests={"storage": f"{args.storage_gb}Gi"}
                ),
            ),
            opts=child,
        )
        account = pods.service_account(f"{name}-sa", NAME, args.namespace, "reports", child, image=args.image)
        tmp_volume, tmp_mount = pods.scratch()
        pods.singleton_deployment(
            f"{name}-deployment",
            NAME,
            args.namespace,
            "reports",
            account.metadata.name,
            k8s.core.v1.ContainerArgs(
                name="evidently",
                image=args.image.name,
                command=["evidently", "ui"],
                args=["--workspace", WORKSPACE, "--host", "0.0.0.0", "--port", str(PORT)],
                env=pods.env({"HOME": "/tmp", "DO_NOT_TRACK": "1"}),
                ports=[k8s.core.v1.ContainerPortArgs(name="http", container_port=PORT)],
                security_context=pods.container_security(),
                resources=pods.resources("100m", "256Mi", "500m", "1Gi"),
                readiness_probe=k8s.core.v1.ProbeArgs(
                    tcp_socket=k8s.core.v1.TCPSocketActionArgs(port="http"), period_seconds=10
                ),
                liveness_probe=k8s.core.v1.ProbeArgs(
                    tcp_socket=k8s.core.v1.TCPSocketActionArgs(port="http"),
                    period_seconds=30,
                    failure_threshold=3,
                ),
                volume_mounts=[
                    k8s.core.v1.VolumeMountArgs(name="reports", mount_path=MOUNT, read_only=True),
                    tmp_mount,
                ],
            ),
            [pods.pvc_volume("reports", claim.metadata.name), tmp_volume],
            child,
        )
        service = pods.cluster_service(f"{name}-service", NAME, args.namespace, "reports", PORT, child)
        self.claim_name = claim.metadata.name
        self.url = pods.service_url(service, args.namespace, PORT)
        self.register_outputs({"url": self.url})

    @staticmethod
    def colocated() -> k8s.core.v1.AffinityArgs:
        """Affinity for pods that write the reports volume: on the UI pod's node (ReadWriteOnce)."""
        return k8s.core.v1.AffinityArgs(
            pod_affinity=k8s.core.v1.PodAffinityArgs(
                required_during_scheduling_ignored_during_execution=[
                    k8s.core.v1.PodAffinityTermArgs(
                        label_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=pods.labels("reports")),
                        topology_key="kubernetes.io/hostname",
                    )
                ]
            )
        )
