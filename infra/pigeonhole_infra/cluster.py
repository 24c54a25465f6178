"""The cluster every stack deploys onto, chosen by config `cluster.provider`.

Each path ends in the same thing, a Kubernetes provider built from a kubeconfig, so the platform
code never knows which cluster it is on: `kind` (a local cluster made and removed by the Command
provider, the platform image loaded into it), `eks` (VPC, EKS, managed nodes, an OIDC provider for
IAM roles for service accounts, the EBS CSI driver, VPC CNI network policy enforcement, access
entries for the deploy and preview roles), or `existing` (any kubeconfig, from secret config
`pigeonhole:kubeconfig` or the ambient one).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_awsx as awsx
import pulumi_command as command
import pulumi_eks as eks
import pulumi_kubernetes as k8s

from pigeonhole_infra.config import ClusterConfig

VPC_CIDR = "10.0.0.0/16"
EBS_CSI_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
ACCESS_POLICIES = {
    "admin": "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy",
    "viewer": "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy",
}
NODE_POLICIES = [
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
]


@dataclass(frozen=True)
class AwsNetwork:
    """What the AWS data stores need from the cluster's network and identity provider."""

    vpc_id: pulumi.Output[str]
    private_subnet_ids: pulumi.Output[Sequence[str]]
    vpc_cidr: str
    oidc_provider_arn: pulumi.Output[str]
    oidc_issuer: pulumi.Output[str]  # the provider URL without https://


@dataclass(frozen=True)
class ClusterAccess:
    provider: k8s.Provider
    kubeconfig: pulumi.Output[str] | None  # a secret
    aws: AwsNetwork | None = None
    ready: Sequence[pulumi.Resource] = ()  # what the platform's pods must wait for (image, add-ons)


def irsa_trust(network: AwsNetwork, namespace: str, service_account: str) -> pulumi.Output[str]:
    """A role's trust policy: only that Kubernetes service account, through the cluster's OIDC provider."""
    subject = f"system:serviceaccount:{namespace}:{service_account}"
    return pulumi.Output.all(network.oidc_provider_arn, network.oidc_issuer).apply(
        lambda provider: json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Federated": provider[0]},
                        "Action": "sts:AssumeRoleWithWebIdentity",
                        "Condition": {
                            "StringEquals": {
                                f"{provider[1]}:sub": subject,
                                f"{provider[1]}:aud": "sts.amazonaws.com",
                            }
                        },
                    }
                ],
            }
        )
    )


def kind_cluster(cfg: ClusterConfig, image: str) -> ClusterAccess:
    """A kind cluster on this machine; its kubeconfig is the create command's (secret) stdout. The
    platform image, built on this machine, is loaded into its nodes (nothing to pull)."""
    cluster = command.local.Command(
        "kind-cluster",
        create=(
            f"kind create cluster --name {cfg.name} --image {cfg.node_image} --wait 180s 1>&2"
            f" && kind get kubeconfig --name {cfg.name}"
        ),
        delete=f"kind delete cluster --name {cfg.name}",
        triggers=[cfg.name, cfg.node_image],
        opts=pulumi.ResourceOptions(additional_secret_outputs=["stdout"]),
    )
    kubeconfig: pulumi.Output[str] = pulumi.Output.secret(cluster.stdout)
    loaded = command.local.Command(
        "kind-load-image",
        create=f"kind load docker-image {image} --name {cfg.name}",
        triggers=[image],
        opts=pulumi.ResourceOptions(depends_on=[cluster]),
    )
    return ClusterAccess(_provider(kubeconfig), kubeconfig, ready=[loaded])


def eks_cluster(cfg: ClusterConfig, image: str) -> ClusterAccess:
    """VPC (private subnets for nodes and the database, one NAT gateway), EKS and a managed node group."""
    tags = {"pigeonhole:cluster": cfg.name}
    vpc = awsx.ec2.Vpc(
        f"{cfg.name}-vpc",
        cidr_block=VPC_CIDR,
        number_of_availability_zones=2,
        nat_gateways=awsx.ec2.NatGatewayConfigurationArgs(strategy=awsx.ec2.NatGatewayStrategy.SINGLE),
        enable_dns_hostnames=True,
        tags=tags,
    )
    node_role = aws.iam.Role(
        f"{cfg.name}-nodes",
        assume_role_policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "ec2.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
        tags=tags,
    )
    policies = [
        aws.iam.RolePolicyAttachment(f"{cfg.name}-nodes-{index}", role=node_role.name, policy_arn=policy)
        for index, policy in enumerate(NODE_POLICIES)
    ]
    cluster = eks.Cluster(
        cfg.name,
        name=cfg.name,
        version=cfg.kubernetes_version,
        vpc_id=vpc.vpc_id,
        public_subnet_ids=vpc.public_subnet_ids,
        private_subnet_ids=vpc.private_subnet_ids,
        node_associate_public_ip_address=False,
        skip_default_node_group=True,
        # access entries: EKS itself admits the managed node group's role, no aws-auth ConfigMap
        authentication_mode=eks.AuthenticationMode.API,
        create_oidc_provider=True,  # IAM roles for service accounts: S3 without static keys
        tags=tags,
    )
    nodes = aws.eks.NodeGroup(
        f"{cfg.name}-nodes",
        cluster_name=cfg.name,
        node_role_arn=node_role.arn,
        subnet_ids=vpc.private_subnet_ids,
        instance_types=[cfg.instance_type],
        scaling_config=aws.eks.NodeGroupScalingConfigArgs(
            desired_size=cfg.nodes, min_size=cfg.nodes, max_size=cfg.max_nodes
        ),
        tags=tags,
        opts=pulumi.ResourceOptions(depends_on=[cluster, *policies]),
    )
    kubeconfig: pulumi.Output[str] = pulumi.Output.secret(cluster.kubeconfig_json)
    network = AwsNetwork(
        vpc_id=vpc.vpc_id,
        private_subnet_ids=vpc.private_subnet_ids,
        vpc_cidr=VPC_CIDR,
        oidc_provider_arn=cluster.oidc_provider_arn,
        oidc_issuer=cluster.oidc_issuer,
    )
    ready = [*_eks_addons(cfg, network, nodes), *_access_entries(cfg, cluster)]
    return ClusterAccess(_provider(kubeconfig), kubeconfig, network, ready)


def _eks_addons(cfg: ClusterConfig, network: AwsNetwork, nodes: aws.eks.NodeGroup) -> list[pulumi.Resource]:
    """EBS volumes for the platform's PVCs (the CSI driver, with its own IAM role), and NetworkPolicy
    enforcement by the VPC CNI (without it the platform's policies are accepted and ignored)."""
    ebs_role = aws.iam.Role(
        f"{cfg.name}-ebs-csi", assume_role_policy=irsa_trust(network, "kube-system", "ebs-csi-controller-sa")
    )
    attached = aws.iam.RolePolicyAttachment(
        f"{cfg.name}-ebs-csi", role=ebs_role.name, policy_arn=EBS_CSI_POLICY
    )
    after_nodes = pulumi.ResourceOptions(depends_on=[nodes, attached])
    return [
        aws.eks.Addon(
            f"{cfg.name}-ebs-csi",
            cluster_name=cfg.name,
            addon_name="aws-ebs-csi-driver",
            service_account_role_arn=ebs_role.arn,
            resolve_conflicts_on_update="OVERWRITE",
            opts=after_nodes,
        ),
        aws.eks.Addon(
            f"{cfg.name}-vpc-cni",
            cluster_name=cfg.name,
            addon_name="vpc-cni",
            configuration_values=json.dumps({"enableNetworkPolicy": "true"}),
            resolve_conflicts_on_update="OVERWRITE",
            opts=after_nodes,
        ),
    ]


def _access_entries(cfg: ClusterConfig, cluster: eks.Cluster) -> list[pulumi.Resource]:
    """Who else may reach the Kubernetes API: CI's deploy role (admin) and preview role (view)."""
    granted: list[pulumi.Resource] = []
    for level, arns in (("admin", cfg.admin_role_arns), ("viewer", cfg.viewer_role_arns)):
        for index, arn in enumerate(arns):
            entry = aws.eks.AccessEntry(
                f"{cfg.name}-{level}-{index}",
                cluster_name=cfg.name,
                principal_arn=arn,
                type="STANDARD",
                opts=pulumi.ResourceOptions(depends_on=[cluster]),
            )
            granted.append(
                aws.eks.AccessPolicyAssociation(
                    f"{cfg.name}-{level}-{index}",
                    cluster_name=cfg.name,
                    principal_arn=arn,
                    policy_arn=ACCESS_POLICIES[level],
                    access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                    opts=pulumi.ResourceOptions(depends_on=[entry]),
                )
            )
    return granted


def existing_cluster(cfg: ClusterConfig, image: str) -> ClusterAccess:
    kubeconfig = pulumi.Config("pigeonhole").get_secret("kubeconfig")
    return ClusterAccess(_provider(kubeconfig, cfg.context), kubeconfig)


def _provider(kubeconfig: pulumi.Output[str] | None, context: str | None = None) -> k8s.Provider:
    """The one Kubernetes provider every platform resource is created through."""
    return k8s.Provider("cluster", kubeconfig=kubeconfig, context=context, enable_server_side_apply=True)


PROVISIONERS = {"kind": kind_cluster, "eks": eks_cluster, "existing": existing_cluster}


def provision(cfg: ClusterConfig, image: str) -> ClusterAccess:
    return PROVISIONERS[cfg.provider](cfg, image)
