"""Every setting of a stack, typed and validated in one place, from the stack's Pulumi config.

Keys live under the `pigeonhole:` namespace (`Pulumi.<stack>.yaml`); structured values are objects
with camelCase keys, e.g. `pigeonhole:cluster: {provider: kind}`. Unknown keys are errors, so a
misspelt setting fails `pulumi preview` instead of silently falling back to a default. Secrets are
never here: they come from Pulumi secret config (`pulumi config set --secret ...`) or are
generated (database passwords), and stay `Output` secrets end to end. Whatever the platform's own
settings already define (trigger kinds, the window syntax, their defaults) is taken
from `pigeonhole.core.settings`, never written again here.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import pulumi
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from pigeonhole.core.settings import Duration, Settings, TriggerKind
from pigeonhole.model.registry import DEFAULT_DATASET


def app_default(field: str) -> Any:
    """The platform's own default for a setting, so a stack never restates it."""
    return Settings.model_fields[field].default


# name[:tag][@sha256:digest] with a tag other than `latest`, or a digest: a pinned image.
PINNED_IMAGE = re.compile(r"^[a-z0-9][a-z0-9./_-]*(:(?!latest$)[\w][\w.-]{0,127})?(@sha256:[0-9a-f]{64})?$")


def is_pinned(image: str) -> bool:
    """True when the image names an exact build: a tag other than `latest`, or a digest."""
    return bool(PINNED_IMAGE.match(image)) and (":" in image.rsplit("/", 1)[-1] or "@sha256:" in image)


def _require_pinned(image: str) -> str:
    if not is_pinned(image):
        raise ValueError(f"{image!r} is not pinned: give a tag other than 'latest', or a digest")
    return image


PinnedImage = Annotated[str, AfterValidator(_require_pinned)]


class Section(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class ClusterConfig(Section):
    provider: Literal["kind", "eks", "existing"]
    name: str = "pigeonhole"
    kubernetes_version: str = Field(default="1.33", pattern=r"^1\.\d+$")
    # kind
    node_image: PinnedImage = "kindest/node:v1.33.1"
    # eks
    instance_type: str = "t3.large"
    nodes: int = Field(default=2, ge=1)
    max_nodes: int = Field(default=4, ge=1)
    # eks: who else reaches the Kubernetes API (access entries): CI's deploy role, its preview role
    admin_role_arns: list[str] = []
    viewer_role_arns: list[str] = []
    # existing: the kubeconfig context to use (the kubeconfig itself is secret config `kubeconfig`)
    context: str | None = None

    @model_validator(mode="after")
    def _node_range(self) -> ClusterConfig:
        if self.max_nodes < self.nodes:
            raise ValueError(f"maxNodes ({self.max_nodes}) is below nodes ({self.nodes})")
        return self


class DatabaseConfig(Section):
    """PostgreSQL for MLflow's registry and the prediction log (one database, `pigeonhole`)."""

    # in-cluster (kind, existing)
    image: PinnedImage = "postgres:16.4-alpine"
    storage_gb: int = Field(default=5, ge=1)
    # RDS (eks)
    engine_version: str = "16"
    instance_class: str = "db.t4g.small"
    multi_az: bool = False


class ServiceConfig(Section):
    replicas: int = Field(default=2, ge=1)
    max_replicas: int = Field(default=6, ge=1)
    cpu_target: int = Field(default=70, ge=10, le=100, description="HPA: average CPU utilisation %.")
    cpu_request: str = "500m"
    memory_request: str = "1Gi"
    cpu_limit: str = "2"
    memory_limit: str = "2Gi"
    workers: int = Field(default=1, ge=1, le=16, description="Worker processes per pod; scale with pods.")
    ingress_host: str | None = None
    ingress_class: str = "nginx"
    acme_email: str | None = Field(default=None, description="Let's Encrypt account for the Ingress's TLS.")

    @model_validator(mode="after")
    def _replica_range(self) -> ServiceConfig:
        if self.max_replicas < self.replicas:
            raise ValueError(f"maxReplicas ({self.max_replicas}) is below replicas ({self.replicas})")
        return self


class DriftConfig(Section):
    schedule: str = Field(default="0 * * * *", pattern=r"^(\S+\s+){4}\S+$")
    window: Duration = app_default("drift_window")
    trigger: TriggerKind = TriggerKind.kubernetes  # a cluster retrains in a Job of its own
    github_repository: str | None = Field(default=None, pattern=r"^[\w.-]+/[\w.-]+$")
    cooldown_hours: float = Field(default=app_default("trigger_cooldown_hours"), ge=0)

    @model_validator(mode="after")
    def _cluster_triggers(self) -> DriftConfig:
        if self.trigger is TriggerKind.local:
            raise ValueError("trigger local retrains inside the drift job's pod; use kubernetes")
        if self.trigger is TriggerKind.github and not self.github_repository:
            raise ValueError("trigger github needs githubRepository (owner/name)")
        return self


class RetrainConfig(Section):
    schedule: str | None = Field(
        default=None, description="Also retrain on this cron schedule; default only when drift triggers it."
    )
    data: str = Field(
        default=DEFAULT_DATASET,
        description="Dataset the retraining (and bootstrap) Job reads; `pigeonhole data publish` puts it.",
    )
    feedback_days: float = Field(default=app_default("retrain_feedback_days"), ge=0)
    promote: bool = Field(
        default=app_default("gate_promotes"),
        description="A retraining that passes the gate becomes champion; false: a reviewed promote Job does.",
    )
    cpu_limit: str = "2"
    memory_limit: str = "4Gi"


class StorageConfig(Section):
    artifacts_gb: int = Field(default=10, ge=1, description="MLflow artifacts PVC (in-cluster stores).")
    reports_gb: int = Field(default=2, ge=1, description="Drift reports and the Evidently workspace.")


class MonitoringConfig(Section):
    service_monitor: bool = Field(default=False, description="Needs the Prometheus Operator's CRDs.")
    prometheus_release: str = Field(default="kube-prometheus-stack", description="Its `release` label.")
    namespace: str = Field(
        default="monitoring",
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="Where Prometheus runs: besides the ingress controller, the only namespace that reaches "
        "the service's port (for /metrics, with its key).",
    )


class PlatformConfig(Section):
    namespace: str = Field(default="pigeonhole", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    image: PinnedImage = Field(description="The platform image (the Bento's), pinned by tag or digest.")
    cluster: ClusterConfig
    database: DatabaseConfig = DatabaseConfig()
    service: ServiceConfig = ServiceConfig()
    drift: DriftConfig = DriftConfig()
    retrain: RetrainConfig = RetrainConfig()
    storage: StorageConfig = StorageConfig()
    monitoring: MonitoringConfig = MonitoringConfig()


SECTIONS = ("cluster", "database", "service", "drift", "retrain", "storage", "monitoring")


class ConfigError(Exception):
    """The stack's config is invalid; the message lists every key at fault."""


def load(config: pulumi.Config | None = None) -> PlatformConfig:
    """Read and validate the `pigeonhole:` config of the current stack."""
    config = config or pulumi.Config("pigeonhole")
    raw: dict[str, object] = {
        "namespace": config.get("namespace") or "pigeonhole",
        "image": config.get("image"),
    }
    for section in SECTIONS:
        value = config.get_object(section)
        if value is not None:
            raw[section] = value
    try:
        return PlatformConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"pigeonhole:{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )
        raise ConfigError(f"invalid stack config: {problems}") from None
