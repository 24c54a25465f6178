"""MLflow tracking server and model registry: PostgreSQL backend, proxied artifact store, basic auth.

Clients (the service, the drift and retraining jobs, CI) only ever talk HTTP to this server; with
`--serve-artifacts` it is also the only thing that touches the artifact store, so only its
ServiceAccount needs S3 rights (through IRSA on eks) and no pod carries cloud keys.

The server runs MLflow's basic-auth app: nobody gets in without a password, and the default
permission is READ. The `pigeonhole-registry-users` Job (`pigeonhole models users`, as the admin) makes
two identities: the reader (the service, the drift job), which can load the champion but never move an
alias, and the writer (training and the gate). Only that Job holds the admin's password.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from pigeonhole_infra import pods

NAME = "pigeonhole-mlflow"
USERS_JOB = "pigeonhole-registry-users"
PORT = 5000
ARTIFACTS_MOUNT = "/mlartifacts"
AUTH_DIR = "/etc/mlflow-auth"
# the auth Secret's keys
AUTH_CONFIG_KEY = "basic_auth.ini"
ADMIN_PASSWORD_KEY = "admin-password"
CSRF_KEY = "flask-secret-key"  # the auth app's forms need one key for every worker
WRITER_PASSWORD_KEY = "writer-password"
READER_PASSWORD_KEY = "reader-password"
ADMIN_USER = "admin"
WRITER_USER = "pigeonhole-writer"
READER_USER = "pigeonhole-reader"


def auth_config(registry_url: pulumi.Input[str]) -> pulumi.Output[str]:
    """The basic-auth app's configuration: its users live in the registry's own database."""
    return pulumi.Output.concat(
        "[mlflow]\n",
        "default_permission = READ\n",
        "database_uri = ",
        registry_url,
        "\n",
        f"admin_username = {ADMIN_USER}\n",
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n",
        # each request's password check is a PBKDF2 hash; caching a verified one for a minute is
        # MLflow's opt-in (a changed password reaches every worker within that minute)
        "auth_cache_ttl_seconds = 60\n",
    )


@dataclass(frozen=True)
class MlflowServerArgs:
    namespace: pulumi.Input[str]
    image: pods.Image
    database_secret: pulumi.Input[str]  # key pods.REGISTRY_URL_KEY: the registry's own role and database
    auth_secret: pulumi.Input[str]  # the keys above: its configuration, the admin's and users' passwords
    # where artifacts live: an s3:// URI, or None for a PersistentVolumeClaim of artifacts_gb
    artifacts_uri: pulumi.Input[str] | None = None
    artifacts_gb: int = 10
    service_account_annotations: dict[str, pulumi.Input[str]] = field(default_factory=dict)


class MlflowServer(pulumi.ComponentResource):
    """``reader`` and ``writer``: how the platform's pods sign in; ``users``: the Job that makes them,
    which everything that signs in depends on."""

    url: pulumi.Output[str]
    service_account: pulumi.Output[str]
    reader: pods.RegistryIdentity
    writer: pods.RegistryIdentity
    users: k8s.batch.v1.Job

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
        volumes.append(
            k8s.core.v1.VolumeArgs(
                name="auth",
                secret=k8s.core.v1.SecretVolumeSourceArgs(
                    secret_name=args.auth_secret,
                    items=[k8s.core.v1.KeyToPathArgs(key=AUTH_CONFIG_KEY, path=AUTH_CONFIG_KEY)],
                    default_mode=0o440,
                ),
            )
        )
        mounts.append(k8s.core.v1.VolumeMountArgs(name="auth", mount_path=AUTH_DIR, read_only=True))
        tmp_volume, tmp_mount = pods.scratch()
        health = k8s.core.v1.HTTPGetActionArgs(path="/health", port="http")
        deployment = pods.singleton_deployment(
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
                    "--app-name=basic-auth",
                    "--serve-artifacts",
                    pulumi.Output.concat("--artifacts-destination=", args.artifacts_uri or ARTIFACTS_MOUNT),
                    # Host headers the server answers: its Service names, and port-forwards
                    f"--allowed-hosts={NAME},{NAME}:*,{NAME}.*,localhost,localhost:*,127.0.0.1:*",
                ],
                ports=[k8s.core.v1.ContainerPortArgs(name="http", container_port=PORT)],
                env=[
                    pods.secret_env("MLFLOW_BACKEND_STORE_URI", args.database_secret, pods.REGISTRY_URL_KEY),
                    pods.secret_env("MLFLOW_AUTH_ADMIN_PASSWORD", args.auth_secret, ADMIN_PASSWORD_KEY),
                    pods.secret_env("MLFLOW_FLASK_SERVER_SECRET_KEY", args.auth_secret, CSRF_KEY),
                    *pods.env({"HOME": "/tmp", "MLFLOW_AUTH_CONFIG_PATH": f"{AUTH_DIR}/{AUTH_CONFIG_KEY}"}),
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
        self.reader = pods.RegistryIdentity(self.url, READER_USER, args.auth_secret, READER_PASSWORD_KEY)
        self.writer = pods.RegistryIdentity(self.url, WRITER_USER, args.auth_secret, WRITER_PASSWORD_KEY)
        self.users = self._users_job(name, args, deployment, child)
        self.register_outputs({"url": self.url})

    def _users_job(
        self,
        name: str,
        args: MlflowServerArgs,
        deployment: k8s.apps.v1.Deployment,
        opts: pulumi.ResourceOptions,
    ) -> k8s.batch.v1.Job:
        """`pigeonhole models users` as the admin, once the server is ready."""
        admin = pods.RegistryIdentity(self.url, ADMIN_USER, args.auth_secret, ADMIN_PASSWORD_KEY)
        environment = [
            *admin.env(),
            *pods.env({"MLFLOW_WRITER_USERNAME": WRITER_USER, "MLFLOW_READER_USERNAME": READER_USER}),
            pods.secret_env("MLFLOW_WRITER_PASSWORD", args.auth_secret, WRITER_PASSWORD_KEY),
            pods.secret_env("MLFLOW_READER_PASSWORD", args.auth_secret, READER_PASSWORD_KEY),
            *pods.env({"HOME": "/tmp"}),
        ]
        return pods.setup_job(
            f"{name}-users",
            USERS_JOB,
            args.namespace,
            "registry-users",
            args.image,
            ["pigeonhole", "models", "users"],
            environment,
            pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[deployment])),
        )

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
