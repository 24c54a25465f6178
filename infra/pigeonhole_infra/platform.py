"""The whole stack: the cluster, then the platform's components wired together on it.

`__main__.py` calls :func:`deploy`; the tests call it too, under Pulumi's mocks, one stack config
at a time. Nothing here knows which cluster it runs on beyond `ClusterAccess`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from pigeonhole.core.settings import TriggerKind
from pigeonhole.serving.auth import KEY_PREFIX, KeyEntry, Role, digest, key_file_text, parse_key_file
from pigeonhole_infra import pods
from pigeonhole_infra.cluster import ClusterAccess, provision
from pigeonhole_infra.components import mlflow_server, model_service, postgres, reports_ui
from pigeonhole_infra.components.aws_backing import AwsBacking, AwsBackingArgs
from pigeonhole_infra.components.cluster_addons import ClusterAddons, ClusterAddonsArgs
from pigeonhole_infra.components.database_setup import DatabaseSetup, DatabaseSetupArgs
from pigeonhole_infra.components.drift_monitor import DriftMonitor, DriftMonitorArgs
from pigeonhole_infra.components.mlflow_server import MlflowServer, MlflowServerArgs
from pigeonhole_infra.components.model_service import ModelService, ModelServiceArgs, ServiceCredentials
from pigeonhole_infra.components.network import NetworkPolicies, NetworkPoliciesArgs
from pigeonhole_infra.components.observability import Observability, ObservabilityArgs
from pigeonhole_infra.components.postgres import Postgres, PostgresArgs
from pigeonhole_infra.components.reports_ui import ReportsUI, ReportsUIArgs
from pigeonhole_infra.components.retrain_job import RetrainJob, RetrainJobArgs
from pigeonhole_infra.config import ConfigError, PlatformConfig, load

# One PostgreSQL server; its administrator (RDS's master user) only makes a role per kind of access:
# the registry's and the log's own databases, and the service's insert-only role (`pigeonhole db setup`)
ADMIN_USER = "pigeonhole"
ADMIN_DATABASE = "pigeonhole"
ROLES = {  # the Secret's key -> (role, database)
    pods.REGISTRY_URL_KEY: ("mlflow", "mlflow"),
    pods.LOG_URL_KEY: ("pigeonhole_log", "pigeonhole_log"),
    pods.LOG_WRITER_URL_KEY: ("pigeonhole_log_writer", "pigeonhole_log"),
}
DATABASE_SECRET = "pigeonhole-database"
MLFLOW_AUTH_SECRET = "pigeonhole-mlflow-auth"
GITHUB_SECRET = "pigeonhole-github"
PULL_SECRET = "pigeonhole-pull"
API_KEYS_SECRET = "pigeonhole-api-keys"  # the callers' key file, hashes only (`pigeonhole keys`)
FEEDBACK_KEY_SECRET = "pigeonhole-feedback-key"  # signs feedback tokens: one key for every replica
METRICS_KEY_SECRET = "pigeonhole-metrics-key"  # Prometheus's own key: it may read /metrics only
METRICS_CALLER = "prometheus"


@dataclass(frozen=True)
class StackOutputs:
    namespace: pulumi.Output[str]
    service_url: pulumi.Output[str]
    mlflow_url: pulumi.Output[str]
    reports_url: pulumi.Output[str]
    kubeconfig: pulumi.Output[str] | None


@dataclass(frozen=True)
class Database:
    server: pulumi.Resource  # what must exist before the roles are made (the StatefulSet, RDS)
    secret: pulumi.Output[str]
    registry_url: pulumi.Output[str]  # MLflow's role, also where its basic-auth app keeps users
    artifacts_uri: pulumi.Output[str] | None
    mlflow_annotations: dict[str, pulumi.Input[str]]


def _roles_ready(
    database: Database, namespace: pulumi.Output[str], image: pods.Image, opts: pulumi.ResourceOptions
) -> pulumi.ResourceOptions:
    """Runs `pigeonhole db setup`; the options every component that connects to the database takes."""
    setup = DatabaseSetup(
        "db-setup",
        DatabaseSetupArgs(namespace, image, database.secret),
        pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[database.server])),
    )
    return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[setup.job]))


def deploy(cfg: PlatformConfig | None = None) -> StackOutputs:
    """Provision the cluster named by the stack's config and deploy the platform onto it."""
    cfg = cfg or load()
    access = provision(cfg.cluster, cfg.image)
    addons = ClusterAddons(
        "cluster-addons",
        ClusterAddonsArgs(
            ebs_storage=access.aws is not None,
            ingress_class=cfg.service.ingress_class if cfg.service.ingress_host else None,
            acme_email=cfg.service.acme_email,
            prometheus_crds=cfg.monitoring.service_monitor,
            kubelet_insecure_tls=cfg.cluster.provider == "kind",
        ),
        pulumi.ResourceOptions(provider=access.provider, depends_on=list(access.ready)),
    )
    # nothing of the platform is created before what it relies on: its image, storage, controllers, CRDs
    opts = pulumi.ResourceOptions(provider=access.provider, depends_on=[*access.ready, *addons.ready])
    namespace = k8s.core.v1.Namespace(
        "namespace",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=cfg.namespace,
            # the API server itself refuses any pod that breaks the restricted Pod Security Standard
            labels={
                "pod-security.kubernetes.io/enforce": "restricted",
                "app.kubernetes.io/part-of": pods.PART_OF,
            },
        ),
        opts=opts,
    )
    ns = namespace.metadata.name
    database = _database(cfg, access, ns, opts)
    github_secret = _github_secret(cfg, ns, opts)
    image = pods.Image(cfg.image, _pull_secret(cfg, ns, opts))
    connected = _roles_ready(database, ns, image, opts)
    mlflow = MlflowServer(
        "mlflow",
        MlflowServerArgs(
            namespace=ns,
            image=image,
            database_secret=database.secret,
            auth_secret=_registry_auth(database, ns, opts),
            artifacts_uri=database.artifacts_uri,
            artifacts_gb=cfg.storage.artifacts_gb,
            service_account_annotations=database.mlflow_annotations,
        ),
        connected,
    )
    # what signs in to the registry waits for its users
    signed_in = pulumi.ResourceOptions.merge(connected, pulumi.ResourceOptions(depends_on=[mlflow.users]))
    reports = ReportsUI("reports", ReportsUIArgs(ns, image, cfg.storage.reports_gb), opts)
    retrain = RetrainJob(
        "retrain", RetrainJobArgs(ns, image, cfg.retrain, mlflow.writer, database.secret), signed_in
    )
    DriftMonitor(
        "drift",
        DriftMonitorArgs(
            namespace=ns,
            image=image,
            config=cfg.drift,
            registry=mlflow.reader,
            database_secret=database.secret,
            reports_claim=reports.claim_name,
            retrain_template=retrain.template_name,
            github_secret=github_secret,
        ),
        signed_in,
    )
    credentials = _service_credentials(ns, opts)
    service = ModelService(
        "service",
        ModelServiceArgs(ns, image, cfg.service, mlflow.reader, database.secret, credentials),
        signed_in,
    )
    NetworkPolicies(
        "network",
        NetworkPoliciesArgs(
            namespace=ns,
            service_port=model_service.PORT,
            mlflow_port=mlflow_server.PORT,
            postgres_port=None if access.aws else postgres.PORT,
            reports_port=reports_ui.PORT,
            monitoring_namespace=cfg.monitoring.namespace,
        ),
        opts,
    )
    if cfg.monitoring.service_monitor:
        Observability(
            "observability",
            ObservabilityArgs(ns, "service", cfg.monitoring.prometheus_release, credentials.metrics_key),
            opts,
        )
    outputs = StackOutputs(ns, service.url, mlflow.url, reports.url, access.kubeconfig)
    pulumi.export("image", cfg.image)  # what is deployed: a rollback restores the previous one
    pulumi.export("namespace", outputs.namespace)
    pulumi.export("serviceUrl", outputs.service_url)
    pulumi.export("mlflowUrl", outputs.mlflow_url)
    pulumi.export("reportsUrl", outputs.reports_url)
    if outputs.kubeconfig is not None:
        pulumi.export("kubeconfig", outputs.kubeconfig)
    return outputs


def _database(
    cfg: PlatformConfig, access: ClusterAccess, namespace: pulumi.Output[str], opts: pulumi.ResourceOptions
) -> Database:
    """PostgreSQL (RDS on eks, else in-cluster) and the Secret of its roles: the administrator's
    password and URL, and one URL per role of `ROLES` (each with a random password of its own)."""
    admin_password = random.RandomPassword("database-password", length=32, special=False)
    backing = None
    if access.aws is not None:
        backing = AwsBacking(
            "aws",
            AwsBackingArgs(
                network=access.aws,
                database=cfg.database,
                database_user=ADMIN_USER,
                database_name=ADMIN_DATABASE,
                database_password=admin_password.result,
                namespace=cfg.namespace,
                mlflow_service_account=mlflow_server.NAME,
                stack=pulumi.get_stack(),
            ),
        )
        host: pulumi.Input[str] = backing.database_host
    else:
        host = postgres.service_host(namespace)

    def url(user: str, password: pulumi.Input[str], database: str) -> pulumi.Output[str]:
        return pulumi.Output.concat(f"postgresql://{user}:", password, "@", host, f":5432/{database}")

    urls = {pods.ADMIN_URL_KEY: url(ADMIN_USER, admin_password.result, ADMIN_DATABASE)}
    for key, (role, database) in ROLES.items():
        password = random.RandomPassword(f"database-{role}-password", length=32, special=False)
        urls[key] = url(role, password.result, database)
    # MLflow's backend store takes SQLAlchemy's URL, which names the driver
    urls[pods.REGISTRY_URL_KEY] = urls[pods.REGISTRY_URL_KEY].apply(
        lambda plain: plain.replace("postgresql://", "postgresql+psycopg://", 1)
    )
    secret = k8s.core.v1.Secret(
        "database-secret",
        metadata=pods.metadata(DATABASE_SECRET, namespace, "database"),
        type="Opaque",
        string_data={pods.ADMIN_PASSWORD_KEY: admin_password.result, **urls},
        opts=opts,
    )
    if backing is None:
        server = Postgres(
            "postgres",
            PostgresArgs(
                namespace=namespace,
                image=cfg.database.image,
                storage_gb=cfg.database.storage_gb,
                secret_name=secret.metadata.name,
                user=ADMIN_USER,
                database=ADMIN_DATABASE,
            ),
            opts,
        )
        return Database(server, secret.metadata.name, urls[pods.REGISTRY_URL_KEY], None, {})
    return Database(
        backing,
        secret.metadata.name,
        urls[pods.REGISTRY_URL_KEY],
        backing.artifacts_uri,
        {"eks.amazonaws.com/role-arn": backing.mlflow_role_arn},
    )


def _pull_secret(
    cfg: PlatformConfig, namespace: pulumi.Output[str], opts: pulumi.ResourceOptions
) -> pulumi.Output[str] | None:
    """The nodes pull the platform image with secret config `imagePullSecret` (a .dockerconfigjson):
    ghcr.io packages are private by default. ECR images need none (the node role reads ECR), nor does
    kind (the image is loaded into its nodes)."""
    config = pulumi.Config("pigeonhole").get_secret("imagePullSecret")
    registry = cfg.image.split("/", 1)[0]
    if config is None:
        if cfg.cluster.provider == "eks" and not registry.endswith(".amazonaws.com"):
            raise ConfigError(
                f"pigeonhole:imagePullSecret is needed to pull {cfg.image} on eks: "
                'pulumi config set --secret pigeonhole:imagePullSecret "$(cat ~/.docker/config.json)"'
            )
        return None
    return _secret(
        "pull-secret", PULL_SECRET, namespace, "platform", {".dockerconfigjson": config}, opts,
        kind="kubernetes.io/dockerconfigjson",
    )  # fmt: skip


def _github_secret(
    cfg: PlatformConfig, namespace: pulumi.Output[str], opts: pulumi.ResourceOptions
) -> pulumi.Output[str] | None:
    """The token the github trigger sends repository_dispatch with: secret config, never plain."""
    if cfg.drift.trigger is not TriggerKind.github:
        return None
    token = pulumi.Config("pigeonhole").require_secret("githubToken")
    return _secret("github-secret", GITHUB_SECRET, namespace, "drift", {"token": token}, opts)


def _registry_auth(
    database: Database, namespace: pulumi.Output[str], opts: pulumi.ResourceOptions
) -> pulumi.Output[str]:
    """The MLflow server's basic-auth Secret: its configuration and generated passwords."""
    generated = {
        key: random.RandomPassword(f"mlflow-{key}", length=32, special=False).result
        for key in (
            mlflow_server.ADMIN_PASSWORD_KEY,
            mlflow_server.CSRF_KEY,
            mlflow_server.WRITER_PASSWORD_KEY,
            mlflow_server.READER_PASSWORD_KEY,
        )
    }
    values: dict[str, pulumi.Input[str]] = {
        mlflow_server.AUTH_CONFIG_KEY: mlflow_server.auth_config(database.registry_url),
        **generated,
    }
    return _secret("mlflow-auth-secret", MLFLOW_AUTH_SECRET, namespace, "mlflow", values, opts)


def _service_credentials(namespace: pulumi.Output[str], opts: pulumi.ResourceOptions) -> ServiceCredentials:
    """The service's callers (secret config `apiKeys`: the file `pigeonhole keys add --file` writes,
    hashes only), plus Prometheus's metrics key and the feedback-token signing key, both generated."""
    keys = pulumi.Config("pigeonhole").get_secret("apiKeys")
    if keys is None:
        raise ConfigError(
            "pigeonhole:apiKeys is needed: the service refuses to run open. Make keys with "
            "`pigeonhole keys add web-app --file api-keys.json`, then "
            'pulumi config set --secret pigeonhole:apiKeys "$(cat api-keys.json)"'
        )
    metrics_key = pulumi.Output.concat(
        KEY_PREFIX, random.RandomPassword("metrics-key", length=43, special=False).result
    )
    signing_key = random.RandomPassword("feedback-signing-key", length=48, special=False).result
    key_file = pulumi.Output.all(keys, metrics_key).apply(lambda pair: _with_metrics_caller(*pair))
    return ServiceCredentials(
        key_file=_secret(
            "api-keys-secret", API_KEYS_SECRET, namespace, "service", {"api-keys.json": key_file}, opts
        ),
        signing_key=_secret(
            "feedback-key-secret", FEEDBACK_KEY_SECRET, namespace, "service", {"key": signing_key}, opts
        ),
        metrics_key=_secret(
            "metrics-key-secret", METRICS_KEY_SECRET, namespace, "service", {"token": metrics_key}, opts
        ),
    )


def _with_metrics_caller(key_file: str, metrics_key: str) -> str:
    try:
        entries = [entry for entry in parse_key_file(key_file) if entry.caller != METRICS_CALLER]
    except ValueError as exc:
        raise ConfigError(f"pigeonhole:apiKeys is not a key file of `pigeonhole keys add`: {exc}") from None
    return key_file_text([*entries, KeyEntry(METRICS_CALLER, Role.metrics, digest(metrics_key), "stack")])


def _secret(
    resource_name: str,
    name: str,
    namespace: pulumi.Output[str],
    component: str,
    data: dict[str, pulumi.Input[str]],
    opts: pulumi.ResourceOptions,
    kind: str = "Opaque",
) -> pulumi.Output[str]:
    """A Secret of secret config values: they stay Pulumi secrets end to end."""
    secret = k8s.core.v1.Secret(
        resource_name,
        metadata=pods.metadata(name, namespace, component),
        type=kind,
        string_data=data,
        opts=opts,
    )
    return secret.metadata.name
