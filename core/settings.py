"""Every setting of the platform, in one typed place.

Values come from (highest first) CLI flags, ``PIGEONHOLE_*`` environment variables, the standard
``MLFLOW_TRACKING_URI``, and the defaults below. The defaults are the embedded set-up: all state
(MLflow's SQLite database and artifacts, generated data, logs, reports) under one folder, so a
laptop needs no server at all. Nothing is read or created at import time; call :func:`get_settings`.

This is the one settings contract from the CLI to the cluster: the object is frozen and refuses
unknown keys, the CLI's flags are typed overrides of its fields, and infra/ takes its defaults and
environment names from here (a test renders every stack and checks each ``PIGEONHOLE_*`` variable).
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TypedDict, Unpack

from pydantic import AfterValidator, AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "PIGEONHOLE_"
DURATION = re.compile(r"^(\d+(?:\.\d+)?)([mhd])$")
DURATION_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    """``30m``, ``24h``, ``7d``: a number and a unit, as drift windows are written everywhere."""
    found = DURATION.match(text.strip().lower())
    if found is None:
        raise ValueError(f"{text!r} is not a duration: use a number and m/h/d, e.g. 30m, 24h, 7d")
    return timedelta(**{DURATION_UNITS[found[2]]: float(found[1])})


def _duration(text: str) -> str:
    parse_duration(text)
    return text.strip().lower()


Duration = Annotated[str, AfterValidator(_duration)]


class RareClassPolicy(StrEnum):
    """What to do with categories that have fewer rows than ``min_class_count``."""

    merge = "merge"  # fold them into one explicit bucket category (``rare_bucket``)
    drop = "drop"  # leave their rows out of training and evaluation
    error = "error"  # refuse the dataset


class SplitKind(StrEnum):
    """How held-out rows are drawn from the labelled listings."""

    random = "random"  # stratified random rows: near-duplicates on both sides, as a marketplace receives
    grouped = "grouped"  # near-duplicate titles kept on one side: how the model does on titles never seen


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
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", frozen=True, populate_by_name=True
    )

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
    min_class_count: int = Field(
        default=1,
        ge=1,
        description="Categories with fewer training rows get the rare-class policy; 1 keeps every category.",
    )
    rare_classes: RareClassPolicy = RareClassPolicy.merge
    rare_bucket: str = Field(default="Other", description="Label that merged rare categories get.")
    test_size: float = Field(default=0.2, gt=0.0, lt=0.5, description="Share held out for evaluation.")
    max_invalid_share: float = Field(
        default=0.01,
        ge=0.0,
        lt=1.0,
        description="Training drops invalid rows (logged with the reason) up to this share; more: refused.",
    )
    split: SplitKind = Field(
        default=SplitKind.grouped,
        description="How held-out rows are drawn: grouped (near-duplicate titles on one side: titles never "
        "seen) or random (as traffic arrives; the gate's fixed margins then veto healthy retrainings).",
    )
    seed: int = 42

    # Model
    top_k: int = Field(
        default=3, ge=1, le=20, description="Suggestions per listing when the caller does not say (k)."
    )
    reference_rows: int = Field(
        default=5000,
        ge=100,
        description="Training rows drawn like traffic, logged as the drift reference's listings; "
        "15 % of the training rows among them also carry the answers of a stand-in fitted without them.",
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
        default=20, ge=1, description="Recent rows: classes with fewer rows are too noisy to veto."
    )
    gate_benchmark_tolerance: float = Field(
        default=0.005,
        ge=0.0,
        le=1.0,
        description="Frozen benchmark: the challenger's accuracy and macro-F1 may be at most this far "
        "below the champion's.",
    )
    gate_max_class_recall_drop: float = Field(
        default=0.10,
        ge=0.0,
        le=1.0,
        description="Frozen benchmark: a class fails when even the top of the challenger's 95% "
        "confidence interval for its recall is this far below the champion's recall.",
    )
    benchmark_rows: int = Field(
        default=5000, ge=100, description="Most held-out rows frozen as a model lineage's benchmark."
    )
    gate_floor_f1: float = Field(default=0.5, ge=0.0, le=1.0, description="First model: minimum macro-F1.")
    gate_promotes: bool = Field(
        default=True,
        description="A retraining that passes the gate becomes champion at once; false leaves the move "
        "to a reviewed `pigeonhole promote` (prod).",
    )
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
    header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="A request line and headers not complete within this long get 408 (slow clients).",
    )
    body_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="A request body not complete within this long gets 408 (slow clients).",
    )
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
    api_keys_file: Path | None = Field(
        default=None,
        description="The callers' API keys, stored hashed (`pigeonhole keys`); default <home>/api-keys.json.",
    )
    rate_limit_per_minute: int = Field(
        default=6000, ge=0, description="Requests one caller may make per minute per worker; 0 = no limit."
    )
    feedback_signing_key: SecretStr | None = Field(
        default=None,
        description="Signs the feedback tokens of /suggest answers; every replica needs the same one. "
        "Default: a random key kept in <home>/feedback-signing.key.",
    )
    feedback_token_ttl: Duration = Field(
        default="7d", description="How long after a suggestion its feedback is accepted."
    )

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
    log_retention_days: int = Field(
        default=30,
        ge=1,
        description="Predictions older than this many whole days are deleted by the drift job "
        "(a day's partition or folder at a time); feedback, the labels retraining learns from, is kept.",
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
    drift_window: Duration = Field(
        default="24h", description="How far back the drift job looks: a number and m/h/d."
    )
    drift_thresholds: dict[str, float] = Field(
        default={
            "title": 3.0,
            "description": 3.0,
            "predicted_category": 0.10,
            "top_score": 0.10,
            "price": 0.10,
        },
        description="Per monitored column, the score at which it counts as drifted "
        "(text: word usage shift in standard deviations beyond chance; predicted_category: "
        "Jensen-Shannon; numbers: Wasserstein). They apply only to models trained without calibration.",
    )
    drift_false_alarm_rate: float = Field(
        default=0.01,
        gt=0.0,
        lt=0.5,
        description="Chance that a window of healthy traffic is called drift: the distribution columns' "
        "thresholds are calibrated to it per model at training (monitoring/calibration.py).",
    )
    drift_calibration_rounds: int = Field(
        default=200,
        ge=0,
        description="Random halves of the reference measured to calibrate; 0 = fixed drift_thresholds.",
    )
    drift_alone_columns: list[str] = Field(
        default=["title", "description", "predicted_category"],
        description="Columns whose drift alone counts as drift: new words or a new category mix mean "
        "listings the model has not learnt.",
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
    retrain_feedback_days: float = Field(
        default=30.0, ge=0.0, description="Retraining learns from feedback this many days back."
    )
    retrain_max_feedback_share: float = Field(
        default=0.3,
        ge=0.0,
        le=1.0,
        description="Feedback rows retraining may add, as a share of the reference data's rows.",
    )
    retrain_max_class_feedback_share: float = Field(
        default=1.0,
        ge=0.0,
        description="Feedback rows one category may gain, as a share of that category's reference rows.",
    )
    retrain_max_caller_feedback_share: float = Field(
        default=0.2,
        ge=0.0,
        le=1.0,
        description="Feedback rows one caller may contribute, as a share of the reference data's rows.",
    )

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, home: Path) -> Path:
        return home.expanduser().resolve()

    @property
    def resolved_tracking_uri(self) -> str:
        return self.tracking_uri or f"sqlite:///{self.embedded_store}"

    @property
    def embedded_store(self) -> Path:
        """The registry's SQLite file when no tracking URI is given."""
        return self.home / "mlflow.db"

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

    @property
    def journal_dir(self) -> Path:
        """The prediction log's write-ahead journal (see prediction_log/journal.py)."""
        return self.home / "journal"

    @property
    def keys_path(self) -> Path:
        return self.api_keys_file or self.home / "api-keys.json"

    @property
    def signing_key_path(self) -> Path:
        return self.home / "feedback-signing.key"


class Overrides(TypedDict, total=False):
    """The settings a command-line flag may set; None means the flag was not given."""

    home: Path | None
    tracking_uri: str | None
    model_name: str | None
    depth: int | None
    min_class_count: int | None
    rare_classes: RareClassPolicy | None
    split: SplitKind | None
    seed: int | None
    max_invalid_share: float | None
    drift_window: str | None
    retrain_feedback_days: float | None
    log_retention_days: int | None


def get_settings(**overrides: Unpack[Overrides]) -> Settings:
    """Settings from the environment, with the flags the user gave on top (validated alike)."""
    given = {name: value for name, value in overrides.items() if value is not None}
    return Settings.model_validate({**Settings().model_dump(), **given})


def setting_env(name: str) -> str:
    """The environment variable that sets field ``name``; an unknown name is an error, not a no-op."""
    if name not in Settings.model_fields:
        raise KeyError(f"{name!r} is not a pigeonhole setting")
    return f"{ENV_PREFIX}{name.upper()}"


def environment_names() -> dict[str, str]:
    """Every environment variable that sets a field, mapped to the field's name."""
    names = {}
    for name, field in Settings.model_fields.items():
        names[f"{ENV_PREFIX}{name.upper()}"] = name
        if isinstance(field.validation_alias, AliasChoices):
            names.update({str(alias): name for alias in field.validation_alias.choices})
    return names


def unknown_environment_names(environ: dict[str, str] | None = None) -> list[str]:
    """``PIGEONHOLE_*`` variables that set nothing: a misspelt setting would be silently ignored."""
    known = environment_names()
    environ = dict(os.environ) if environ is None else environ
    return sorted(name for name in environ if name.startswith(ENV_PREFIX) and name not in known)
