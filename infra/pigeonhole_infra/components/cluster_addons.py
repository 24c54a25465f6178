"""What the platform's objects need from the cluster, installed by the stack itself.

A fresh EKS cluster has no default StorageClass (EKS 1.30+), no ingress controller, no certificate
issuer, no metrics-server and none of the Prometheus Operator's CRDs; the platform's PVCs, Ingress,
HPA and ServiceMonitor would wait forever. This component installs each one the stack uses, pinned:

- a default `gp3` StorageClass on the EBS CSI driver (the driver itself is an EKS add-on, cluster.py);
- ingress-nginx and cert-manager with a Let's Encrypt ClusterIssuer, when the service has a host;
- metrics-server, so the HorizontalPodAutoscaler has CPU figures;
- the Prometheus Operator CRDs, when the ServiceMonitor is on.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from pigeonhole.core.settings import Settings

DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
GP3 = "gp3"
CLUSTER_ISSUER = "letsencrypt"
INGRESS_NAMESPACE = "ingress-nginx"  # the controller's pods are the only public way in
# chart versions pinned like images: an upgrade is a reviewed change
CHARTS = {
    "ingress-nginx": ("https://kubernetes.github.io/ingress-nginx", "4.13.0"),
    "cert-manager": ("https://charts.jetstack.io", "v1.18.2"),
    "metrics-server": ("https://kubernetes-sigs.github.io/metrics-server", "3.13.0"),
    "prometheus-operator-crds": ("https://prometheus-community.github.io/helm-charts", "22.0.1"),
}
# the edge cuts slow clients off as the service itself does (serving/protocol.py and guard.py), before
# they hold one of the controller's connections to it
SLOW_CLIENT_TIMEOUTS = {
    "client-header-timeout": str(round(Settings.model_fields["header_timeout_seconds"].default)),
    "client-body-timeout": str(round(Settings.model_fields["body_timeout_seconds"].default)),
}


@dataclass(frozen=True)
class ClusterAddonsArgs:
    ebs_storage: bool  # EKS: the EBS CSI driver is installed, make gp3 the default class
    ingress_class: str | None  # the class the service's Ingress names, when it has one
    acme_email: str | None  # Let's Encrypt account for the Ingress's certificate
    prometheus_crds: bool
    kubelet_insecure_tls: bool = False  # kind's kubelets serve self-signed certificates


class ClusterAddons(pulumi.ComponentResource):
    ready: list[pulumi.Resource]  # what the platform's objects must wait for

    def __init__(
        self, name: str, args: ClusterAddonsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pigeonhole:platform:ClusterAddons", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.ready = []
        if args.ebs_storage:
            self.ready.append(
                k8s.storage.v1.StorageClass(
                    f"{name}-gp3",
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        name=GP3, annotations={DEFAULT_CLASS_ANNOTATION: "true"}
                    ),
                    provisioner="ebs.csi.aws.com",
                    parameters={"type": "gp3", "encrypted": "true"},
                    volume_binding_mode="WaitForFirstConsumer",
                    allow_volume_expansion=True,
                    reclaim_policy="Retain",
                    opts=child,
                )
            )
        metrics_args = ["--kubelet-insecure-tls"] if args.kubelet_insecure_tls else []
        self.ready.append(self._chart(name, "metrics-server", "kube-system", {"args": metrics_args}, child))
        if args.ingress_class is not None:
            self.ready.append(self._ingress(name, args.ingress_class, args.acme_email, child))
        if args.prometheus_crds:
            self.ready.append(self._chart(name, "prometheus-operator-crds", "kube-system", {}, child))
        self.register_outputs({})

    @staticmethod
    def _chart(
        name: str, chart: str, namespace: str, values: dict[str, object], opts: pulumi.ResourceOptions
    ) -> k8s.helm.v3.Release:
        repository, version = CHARTS[chart]
        return k8s.helm.v3.Release(
            f"{name}-{chart}",
            chart=chart,
            version=version,
            namespace=namespace,
            create_namespace=True,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=repository),
            values=values,
            atomic=True,
            opts=opts,
        )

    def _ingress(
        self, name: str, ingress_class: str, acme_email: str | None, opts: pulumi.ResourceOptions
    ) -> k8s.apiextensions.CustomResource:
        if not acme_email:
            raise ValueError("an Ingress needs service.acmeEmail: cert-manager requests its certificate")
        controller = self._chart(
            name,
            "ingress-nginx",
            INGRESS_NAMESPACE,
            {
                "controller": {
                    "ingressClassResource": {"name": ingress_class, "default": False},
                    "ingressClass": ingress_class,
                    "config": SLOW_CLIENT_TIMEOUTS,
                    "service": {"annotations": {"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"}},
                }
            },
            opts,
        )
        cert_manager = self._chart(name, "cert-manager", "cert-manager", {"crds": {"enabled": True}}, opts)
        return k8s.apiextensions.CustomResource(
            f"{name}-cluster-issuer",
            api_version="cert-manager.io/v1",
            kind="ClusterIssuer",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=CLUSTER_ISSUER),
            spec={
                "acme": {
                    "server": "https://acme-v02.api.letsencrypt.org/directory",
                    "email": acme_email,
                    "privateKeySecretRef": {"name": f"{CLUSTER_ISSUER}-account"},
                    "solvers": [{"http01": {"ingress": {"ingressClassName": ingress_class}}}],
                }
            },
            opts=pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(depends_on=[controller, cert_manager])
            ),
        )
