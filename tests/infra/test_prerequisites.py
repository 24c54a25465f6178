"""A first `pulumi up` on a fresh cluster can work: everything an object relies on, the stack installs.

For every stack: each PVC resolves to a StorageClass the stack declares (kind's built-in `standard`
on kind), each Ingress class to a controller it installs, each custom resource to a chart that
installs its CRD, each HPA to a metrics-server, and each image to a way onto the nodes (a pull
secret on eks, loading into kind on dev). A stack that lacks one is refused before it deploys.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pigeonhole_infra.components.cluster_addons import DEFAULT_CLASS_ANNOTATION
from pigeonhole_infra.policies import pod_specs
from tests.infra.conftest import STACK_SECRETS
from tests.infra.render import Rendered, RenderError, render, stack_config

KIND_DEFAULT_CLASS = "standard"  # kind ships a default StorageClass (local-path)
# custom kinds -> the chart that installs their CRDs
CRD_CHARTS = {
    "ServiceMonitor": "prometheus-operator-crds",
    "PrometheusRule": "prometheus-operator-crds",
    "ClusterIssuer": "cert-manager",
}


def _provider(stack: Rendered) -> str:
    return str(stack.config["pigeonhole:cluster"]["provider"])


def _releases(stack: Rendered) -> dict[str, dict[str, Any]]:
    return {str(r.inputs["chart"]): r.manifest() for r in stack.of_type("kubernetes:helm.sh/v3:Release")}


def test_every_claim_resolves_to_a_storage_class(stack: Rendered) -> None:
    classes = {c["metadata"]["name"]: c for c in (r.manifest() for r in stack.of_kind("StorageClass"))}
    defaults = {
        name
        for name, c in classes.items()
        if c["metadata"].get("annotations", {}).get(DEFAULT_CLASS_ANNOTATION)
    }
    if _provider(stack) == "kind":
        defaults.add(KIND_DEFAULT_CLASS)
    claims = [r.manifest() for r in stack.of_kind("PersistentVolumeClaim")]
    for workload in stack.of_kind("StatefulSet"):
        claims += workload.manifest()["spec"].get("volumeClaimTemplates", [])
    assert claims, "the stack has volumes to check"
    for claim in claims:
        wanted = claim["spec"].get("storageClassName")
        resolved = wanted if wanted is not None else (next(iter(defaults)) if len(defaults) == 1 else None)
        assert resolved in classes or (resolved == KIND_DEFAULT_CLASS and _provider(stack) == "kind"), (
            f"PVC {claim['metadata']['name']} names no class the stack declares (defaults: {defaults})"
        )
    if _provider(stack) == "eks":
        (ebs,) = [
            a.inputs
            for a in stack.of_type("aws:eks/addon:Addon")
            if a.inputs["addonName"] == "aws-ebs-csi-driver"
        ]
        assert classes["gp3"]["provisioner"] == "ebs.csi.aws.com" and ebs["serviceAccountRoleArn"]


def test_every_ingress_class_has_a_controller_and_a_certificate_issuer(stack: Rendered) -> None:
    releases = _releases(stack)
    ingresses = [r.manifest() for r in stack.of_kind("Ingress")]
    assert bool(ingresses) == bool(stack.config.get("pigeonhole:service", {}).get("ingressHost"))
    issuers = {r.manifest()["metadata"]["name"] for r in stack.of_kind("ClusterIssuer")}
    for ingress in ingresses:
        controller = releases["ingress-nginx"]["values"]["controller"]
        assert controller["ingressClassResource"]["name"] == ingress["spec"]["ingressClassName"]
        assert controller["config"] == {"client-header-timeout": "10", "client-body-timeout": "10"}
        assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] in issuers
        assert ingress["spec"]["tls"][0]["secretName"], "cert-manager writes the certificate there"


def test_every_custom_resource_has_its_crd_installed(stack: Rendered) -> None:
    releases = _releases(stack)
    custom = {r.kind for r in stack.kubernetes() if r.kind in CRD_CHARTS}
    for kind in custom:
        assert CRD_CHARTS[kind] in releases, f"{kind} needs the {CRD_CHARTS[kind]} chart"
    if "cert-manager" in releases:
        assert releases["cert-manager"]["values"]["crds"]["enabled"] is True
    assert all(r["version"] for r in releases.values()), "charts are pinned"


def test_autoscaling_has_metrics(stack: Rendered) -> None:
    assert stack.of_kind("HorizontalPodAutoscaler")
    assert "metrics-server" in _releases(stack)


def test_every_pod_can_get_its_image(stack: Rendered) -> None:
    accounts = {a.manifest()["metadata"]["name"]: a.manifest() for a in stack.of_kind("ServiceAccount")}
    pull_secrets = {
        s.manifest()["metadata"]["name"]
        for s in stack.of_kind("Secret")
        if s.manifest()["type"] == "kubernetes.io/dockerconfigjson"
    }
    image = str(stack.config["pigeonhole:image"])
    loaded = [
        c.inputs["create"]
        for c in stack.of_type("command:local:Command")
        if "kind load" in c.inputs["create"]
    ]
    for resource in stack.kubernetes():
        for pod in pod_specs(resource.manifest()):
            if not any(c["image"] == image for c in pod["containers"]):
                continue
            if _provider(stack) == "kind":
                assert loaded == [f"kind load docker-image {image} --name pigeonhole-dev"]
                continue
            names = {ref["name"] for ref in accounts[pod["serviceAccountName"]].get("imagePullSecrets", [])}
            assert names & pull_secrets, f"{resource.kind} {resource.name} cannot pull {image}"


def test_eks_enforces_network_policies_and_admits_ci_roles() -> None:
    config = copy.deepcopy(stack_config("staging"))
    config["pigeonhole:cluster"] |= {
        "adminRoleArns": ["arn:aws:iam::123456789012:role/pigeonhole-deploy"],
        "viewerRoleArns": ["arn:aws:iam::123456789012:role/pigeonhole-preview"],
    }
    stack = render("staging", config, STACK_SECRETS["staging"])
    (cni,) = [a.inputs for a in stack.of_type("aws:eks/addon:Addon") if a.inputs["addonName"] == "vpc-cni"]
    assert '"enableNetworkPolicy": "true"' in cni["configurationValues"]
    policies = {
        a.inputs["principalArn"]: a.inputs["policyArn"]
        for a in stack.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    }
    assert policies["arn:aws:iam::123456789012:role/pigeonhole-deploy"].endswith(
        "AmazonEKSClusterAdminPolicy"
    )
    assert policies["arn:aws:iam::123456789012:role/pigeonhole-preview"].endswith("AmazonEKSViewPolicy")


@pytest.mark.parametrize(
    ("stack", "change", "secrets", "message"),
    [
        ("staging", {}, {}, "pigeonhole:imagePullSecret is needed"),
        (
            "staging",
            {"pigeonhole:service": {"ingressHost": "x.example.com"}},
            STACK_SECRETS["staging"],
            "acmeEmail",
        ),
    ],
)
def test_a_stack_missing_a_prerequisite_is_refused(
    stack: str, change: dict[str, Any], secrets: dict[str, str], message: str
) -> None:
    with pytest.raises(RenderError, match=message):
        render(stack, {**stack_config(stack), **change}, secrets)
