"""The cluster every stack deploys onto, chosen by config `cluster.provider`.

Each path ends in the same thing, a Kubernetes provider built from a kubeconfig, so the platform
code never knows which cluster it is on: `kind` (a local cluster made and removed by the Command
provider), `eks` (VPC, EKS, managed nodes, an OIDC provider for IAM roles for service accounts),
or `existing` (any kubeconfig, from secret config `pigeonhole:kubeconfig` or the ambient one).
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


def kind_cluster(cfg: ClusterConfig) -> ClusterAccess:
    """A kind cluster on this machine; its kubeconfig is the create command's (secret) stdout."""
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
    return ClusterAccess(_provider(kubeconfig), kubeconfig)


def eks_cluster(cfg: ClusterConfig) -> ClusterAccess:
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
    aws.eks.NodeGroup(
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
    return ClusterAccess(_provider(kubeconfig), kubeconfig, network)


def existing_cluster(cfg: ClusterConfig) -> ClusterAccess:
    kubeconfig = pulumi.Config("pigeonhole").get_secret("kubeconfig")
    return ClusterAccess(_provider(kubeconfig, cfg.context), kubeconfig)


def _provider(kubeconfig: pulumi.Output[str] | None, context: str | None = None) -> k8s.Provider:
    """The one Kubernetes provider every platform resource is created through."""
    return k8s.Provider("cluster", kubeconfig=kubeconfig, context=context, enable_server_side_apply=True)


PROVISIONERS = {"kind": kind_cluster, "eks": eks_cluster, "existing": existing_cluster}


def provision(cfg: ClusterConfig) -> ClusterAccess:
    return PROVISIONERS[cfg.provider](cfg)
