"""The Job that gives every component a database role of its own: `pigeonhole db setup`, as the server's
administrator, before anything else connects.

MLflow's registry and the prediction log live in separate databases with separate owners; the
internet-facing service gets a role that may only insert into the log. Only this Job (and the in-cluster
PostgreSQL pod) holds the administrator's password. The Job is replaced whenever the image changes, so
each deployment also upgrades the log's tables before the new service starts.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from pigeonhole_infra import pods

NAME = "pigeonhole-db-setup"
COMMAND = ["pigeonhole", "db", "setup"]
# the command's options, read from the environment (the CLI's envvar names), each from the Secret's key
URL_ENV = {
    "DB_ADMIN_URL": pods.ADMIN_URL_KEY,
    "DB_REGISTRY_URL": pods.REGISTRY_URL_KEY,
    "DB_LOG_URL": pods.LOG_URL_KEY,
    "DB_LOG_WRITER_URL": pods.LOG_WRITER_URL_KEY,
}


@dataclass(frozen=True)
class DatabaseSetupArgs:
    namespace: pulumi.Input[str]
    image: pods.Image
    database_secret: pulumi.Input[str]


class DatabaseSetup(pulumi.ComponentResource):
    """``job``: what every component that connects to the database depends on."""

    job: k8s.batch.v1.Job

    def __init__(
        self, name: str, args: DatabaseSetupArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pigeonhole:platform:DatabaseSetup", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account = pods.service_account(
            f"{name}-sa", NAME, args.namespace, "db-setup", child, image=args.image
        )
        template = pods.cli_job_template(
            "db-setup",
            args.image.name,
            COMMAND,
            [pods.secret_env(env, args.database_secret, key) for env, key in URL_ENV.items()],
            pods.resources("100m", "256Mi", "500m", "512Mi"),
            account.metadata.name,
            deadline_seconds=600,
        )
        self.job = k8s.batch.v1.Job(
            f"{name}-job",
            metadata=pods.metadata(NAME, args.namespace, "db-setup"),
            spec=template.spec,
            opts=pulumi.ResourceOptions(parent=self, replace_on_changes=["spec"], delete_before_replace=True),
        )
        self.register_outputs({})
