"""Every setting of the platform, in one typed place.

Values come from (highest first) CLI flags, ``PIGEONHOLE_*`` environment variables, the standard
``MLFLOW_TRACKING_URI``, and the defaults below. The defaults are the embedded set-up: all state
(MLflow's SQLite database and artifacts, generated data, logs, reports) under one folder, so a
laptop needs no server at all. Nothing is read or created at import time; call :func:`get_settings`.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class RareClassPolicy(StrEnum):
    """What to do with categories that have fewer rows than ``min_class_count``."""

    merge = "merge"  # fold them into one explicit bucket category (``rare_bucket``)
    drop = "drop"  # leave their rows out of training and evaluation
    error = "error"  # refuse the dataset


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


def get_settings(**overrides: object) -> Settings:
    """Build settings from the environment, with explicit (e.g. CLI flag) overrides on top."""
    clean = {key: value for key, value in overrides.items() if value is not None}
    return Settings(**clean)  # type: ignore[arg-type]
