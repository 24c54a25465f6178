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
        self.job = pods.setup_job(
            f"{name}-job",
            NAME,
            args.namespace,
            "db-setup",
            args.image,
            COMMAND,
            [pods.secret_env(env, args.database_secret, key) for env, key in URL_ENV.items()],
            pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})
