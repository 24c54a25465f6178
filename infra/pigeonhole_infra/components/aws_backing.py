"""The eks stacks' managed stores: RDS PostgreSQL, an S3 artifact bucket, and MLflow's IAM role.

The database is private (its subnets, a security group open to the VPC only, storage encrypted,
backups kept); the bucket blocks every form of public access; MLflow's pods get S3 rights through
an IAM role bound to their ServiceAccount by the cluster's OIDC provider, never through keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from pigeonhole_infra.cluster import AwsNetwork, irsa_trust
from pigeonhole_infra.config import DatabaseConfig


@dataclass(frozen=True)
class AwsBackingArgs:
    network: AwsNetwork
    database: DatabaseConfig
    database_user: str
    database_name: str
    database_password: pulumi.Input[str]
    namespace: str
    mlflow_service_account: str
    stack: str


class AwsBacking(pulumi.ComponentResource):
    database_host: pulumi.Output[str]
    artifacts_uri: pulumi.Output[str]
    mlflow_role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: AwsBackingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pigeonhole:aws:Backing", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        bucket = aws.s3.Bucket(f"{name}-artifacts", force_destroy=False, opts=child)
        aws.s3.BucketPublicAccessBlock(
            f"{name}-artifacts-private",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        self.mlflow_role_arn = self._mlflow_role(name, args, bucket, child)
        subnets = aws.rds.SubnetGroup(f"{name}-db", subnet_ids=args.network.private_subnet_ids, opts=child)
        firewall = aws.ec2.SecurityGroup(
            f"{name}-db",
            vpc_id=args.network.vpc_id,
            description="PostgreSQL from inside the VPC only",
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    protocol="tcp", from_port=5432, to_port=5432, cidr_blocks=[args.network.vpc_cidr]
                )
            ],
            opts=child,
        )
        database = aws.rds.Instance(
            f"{name}-db",
            engine="postgres",
            engine_version=args.database.engine_version,
            instance_class=args.database.instance_class,
            allocated_storage=args.database.storage_gb,
            storage_encrypted=True,
            multi_az=args.database.multi_az,
            db_name=args.database_name,
            username=args.database_user,
            password=args.database_password,
            db_subnet_group_name=subnets.name,
            vpc_security_group_ids=[firewall.id],
            publicly_accessible=False,
            backup_retention_period=7,
            deletion_protection=args.stack == "prod",
            skip_final_snapshot=args.stack != "prod",
            final_snapshot_identifier=f"pigeonhole-{args.stack}-final" if args.stack == "prod" else None,
            opts=child,
        )
        self.database_host = database.address
        self.artifacts_uri = pulumi.Output.concat("s3://", bucket.bucket, "/artifacts")
        self.register_outputs({"database_host": self.database_host, "artifacts_uri": self.artifacts_uri})

    @staticmethod
    def _mlflow_role(
        name: str, args: AwsBackingArgs, bucket: aws.s3.Bucket, opts: pulumi.ResourceOptions
    ) -> pulumi.Output[str]:
        trust = irsa_trust(args.network, args.namespace, args.mlflow_service_account)
        role = aws.iam.Role(f"{name}-mlflow", assume_role_policy=trust, opts=opts)
        aws.iam.RolePolicy(
            f"{name}-mlflow-s3",
            role=role.id,
            policy=bucket.arn.apply(
                lambda arn: json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": arn},
                            {
                                "Effect": "Allow",
                                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                                "Resource": f"{arn}/*",
                            },
                        ],
                    }
                )
            ),
            opts=opts,
        )
        return role.arn
