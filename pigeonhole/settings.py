"""Every setting of the platform, in one typed place.

Values come from (highest first) CLI flags, ``PIGEONHOLE_*`` environment variables, the standard
``MLFLOW_TRACKING_URI``, and the defaults below. The defaults are the embedded set-up: all state
(MLflow's SQLite database and artifacts, generated data, logs, reports) under one folder, so a
laptop needs no server at all. Nothing is read or created at import time; call :func:`get_settings`.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class RareClassPolicy(StrEnum):
    """What to do with categories that have fewer rows than ``min_class_count``."""

    merge = "merge"  # fold them into one explicit bucket category (``rare_bucket``)
    drop = "drop"  # leave their rows out of training and evaluation
    error = "error"  # refuse the dataset


class ModelSource(StrEnum):
    """Where the service finds its model."""

    registry = "registry"  # the MLflow registry's champion alias (follows promotions)
    bento = "bento"  # the model packed into the Bento by `pigeonhole build` (fixed at build time)


class LogSinkKind(StrEnum):
    files = "files"  # Parquet / JSONL partitioned by date under <home>/logs
    postgres = "postgres"  # tables in PostgreSQL (log_database_url)


class TriggerKind(StrEnum):
    """What the drift job does when it decides drift."""

    none = "none"  # report only
    local = "local"  # run `pigeonhole retrain` in-process
    github = "github"  # repository_dispatch `drift-detected` to the retrain workflow
    kubernetes = "kubernetes"  # create a retraining Job in the job's own namespace


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PIGEONHOLE_", extra="ignore", populate_by_name=True)

    home: Path = Field(
        default=Path(".pigeonhole"),
        description="Folder for all local state: MLflow database and artifacts, data, logs, reports.",
    )
    tracking_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("PIGEONHOLE_TRACKING_URI", "MLFLOW_TRACKING_URI"),
        description="MLflow tracking/registry URI; defaults to SQLite under `home`.",
    )
    model_name: str = Field(default="listing-category", description="Registered model name.")
    experiment: str = Field(default="pigeonhole", description="MLflow experiment for training runs.")

    # Data and labels
    depth: int = Field(default=2, ge=1, le=5, description="How many category levels form the label.")
    min_class_count: int = Field(default=10, ge=2, description="Smallest category trained on as is.")
    rare_classes: RareClassPolicy = RareClassPolicy.merge
    rare_bucket: str = Field(default="Other", description="Label that merged rare categories get.")
    test_size: float = Field(default=0.2, gt=0.0, lt=0.5, description="Share held out for evaluation.")
    seed: int = 42

    # Model
    top_k: int = Field(default=3, ge=1, le=20)
    reference_rows: int = Field(
        default=5000, ge=100, description="Held-out rows logged as the drift-monitoring reference."
    )

    # Promotion gate
    gate_min_f1_gain: float = Field(
        default=0.002, description="Challenger's macro-F1 must beat the champion's by this much."
    )
    gate_min_accuracy_gain: float = Field(
        default=0.0, description="Challenger's accuracy must beat the champion's by this much."
    )
    gate_max_class_f1_drop: float = Field(
        default=0.10, ge=0.0, le=1.0, description="No class's F1 may fall by more than this."
    )
    gate_class_min_support: int = Field(
        default=20, ge=1, description="Classes with fewer evaluation rows are too noisy to veto."
    )
    gate_floor_f1: float = Field(default=0.5, ge=0.0, le=1.0, description="First model: minimum macro-F1.")
    gate_floor_accuracy: float = Field(
        default=0.6, ge=0.0, le=1.0, description="First model: minimum accuracy."
    )

    # Serving
    abstain_below: float = Field(
        default=0.35, ge=0.0, le=1.0, description="Abstain when the best calibrated score is below this."
    )
    max_batch_items: int = Field(
        default=64, ge=1, le=10_000, description="Items allowed in one /suggest_batch."
    )
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="Larger request bodies get 413.")
    model_source: ModelSource = ModelSource.registry
    reload_seconds: float = Field(
        default=30.0, ge=0.0, description="How often the service checks the champion alias; 0 = never."
    )
    challenger_share: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="A/B: share of listings (by listing_id hash) served by challenger.",
    )
    shadow: bool = Field(
        default=False, description="Also score the challenger on every request, logged only."
    )
    workers: int = Field(default=2, ge=1, le=64, description="Service worker processes.")

    # Prediction and feedback log
    log_sink: LogSinkKind = LogSinkKind.files
    log_database_url: str | None = Field(
        default=None, description="PostgreSQL URL for the `postgres` sink, e.g. postgresql://user@host/db."
    )
    log_buffer_max: int = Field(
        default=50_000, ge=10, description="Prediction records kept while the sink is down."
    )
    log_flush_seconds: float = Field(
        default=1.0, gt=0.0, description="How often buffered predictions are written."
    )

    # Drift monitoring
    reports: str | None = Field(
        default=None,
        description="Drift reports: a folder or any fsspec URL (s3://...); default <home>/reports.",
    )
    drift_min_rows: int = Field(
        default=500, ge=10, description="Fewer rows in the window: insufficient data."
    )
    drift_max_rows: int = Field(default=5000, ge=100, description="Larger windows are sampled down to this.")
    drift_share: float = Field(
        default=0.5, gt=0.0, le=1.0, description="Share of monitored columns that must drift to call drift."
    )
    drift_alone_columns: list[str] = Field(
        default=["predicted_category"], description="Columns whose drift alone counts as drift."
    )
    drift_max_accuracy_drop: float = Field(
        default=0.10,
        ge=0.0,
        le=1.0,
        description="Accuracy on feedback this far below the champion's is drift.",
    )

    trigger: TriggerKind = TriggerKind.none
    trigger_cooldown_hours: float = Field(
        default=12.0, ge=0.0, description="After a trigger, further drift only reports until this passes."
    )
    github_repository: str | None = Field(
        default=None, description="owner/name receiving repository_dispatch."
    )
    github_api_url: str = "https://api.github.com"
    github_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("PIGEONHOLE_GITHUB_TOKEN", "GITHUB_TOKEN"),
        description="Token allowed to send repository_dispatch (contents: write).",
    )
    pushgateway: str | None = Field(default=None, description="Prometheus Pushgateway for drift job metrics.")
    retrain_template: str = Field(
        default="pigeonhole-retrain",
        description="CronJob whose jobTemplate a kubernetes trigger instantiates (infra/ RetrainJob).",
    )
    retrain_data: str | None = Field(default=None, description="Dataset the retraining Job trains on.")

    @model_validator(mode="after")
    def _absolute_home(self) -> Settings:
        self.home = self.home.expanduser().resolve()
        return self

    @property
    def resolved_tracking_uri(self) -> str:
        return self.tracking_uri or f"sqlite:///{self.home / 'mlflow.db'}"

    @property
    def artifact_location(self) -> str:
        """Where new experiments keep artifacts when MLflow runs embedded (ignored by a server)."""
        return (self.home / "mlartifacts").as_uri()

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def reports_location(self) -> str:
        return self.reports or str(self.home / "reports")

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"


def get_settings(**overrides: object) -> Settings:
    """Build settings from the environment, with explicit (e.g. CLI flag) overrides on top."""
    clean = {key: value for key, value in overrides.items() if value is not None}
    return Settings(**clean)  # type: ignore[arg-type]
