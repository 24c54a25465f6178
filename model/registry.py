"""The MLflow model registry as the rest of the platform sees it: two aliases and a history.

``challenger`` is the newest trained version, ``champion`` the one that serves. Nothing else finds
a model any other way. Each promotion records on the new champion which version it replaced, so a
rollback can walk the history back one step at a time.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from model.predict import PIPELINE_FILE, Predictor
from pigeonhole.settings import Settings

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS_CHAMPION_TAG = "previous_champion"
EMBEDDED_SCHEMES = ("sqlite:", "file:")


class RegistryError(RuntimeError):
    """The registry does not hold what was asked for (no such alias, nothing to roll back to)."""


@contextmanager
def _environment_untouched(*names: str) -> Iterator[None]:
    """MLflow's setters also export the URI to the environment, where Settings would later read it as
    if the user had set it, so a second Settings in the same process (tests, the demo's later
    steps) would silently talk to the first store. Keep the environment as the user left it."""
    saved = {name: os.environ.get(name) for name in names}
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def connect(settings: Settings) -> MlflowClient:
    """Point MLflow at the configured tracking URI; make the embedded store's folder and experiment."""
    uri = settings.resolved_tracking_uri
    embedded = uri.startswith(EMBEDDED_SCHEMES)
    if embedded:
        settings.home.mkdir(parents=True, exist_ok=True)
    with _environment_untouched("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    if client.get_experiment_by_name(settings.experiment) is None:
        client.create_experiment(
            settings.experiment, artifact_location=settings.artifact_location if embedded else None
        )
    mlflow.set_experiment(settings.experiment)
    return client


def model_uri(settings: Settings, alias: str) -> str:
    return f"models:/{settings.model_name}@{alias}"


def version_by_alias(client: MlflowClient, settings: Settings, alias: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(settings.model_name, alias)
    except MlflowException as exc:
        log.debug("no '%s' alias: %s", alias, exc)
        return None


def require_alias(client: MlflowClient, settings: Settings, alias: str) -> ModelVersion:
    version = version_by_alias(client, settings, alias)
    if version is None:
        raise RegistryError(
            f"model '{settings.model_name}' has no '{alias}' version at {settings.resolved_tracking_uri}; "
            "run `pigeonhole train` first"
        )
    return version


def load_predictor(settings: Settings, version: ModelVersion) -> Predictor:
    """Load a registered version's scikit-learn pipeline natively (no pyfunc wrapper)."""
    local = mlflow.artifacts.download_artifacts(f"models:/{version.name}/{version.version}")
    return Predictor.load(Path(local) / "artifacts" / PIPELINE_FILE)


def set_champion(client: MlflowClient, settings: Settings, version: str) -> None:
    """Make ``version`` the champion, remembering which version it replaces (for rollback)."""
    current = version_by_alias(client, settings, CHAMPION)
    if current is not None and str(current.version) != str(version):
        client.set_model_version_tag(
            settings.model_name, version, PREVIOUS_CHAMPION_TAG, str(current.version)
        )
    client.set_registered_model_alias(settings.model_name, CHAMPION, version)


def rollback(client: MlflowClient, settings: Settings) -> tuple[str, str]:
    """Give the champion alias back to the version it replaced; return (from, to)."""
    current = require_alias(client, settings, CHAMPION)
    previous = current.tags.get(PREVIOUS_CHAMPION_TAG)
    if not previous:
        raise RegistryError(
            f"champion v{current.version} replaced no earlier version; nothing to roll back to"
        )
    client.set_registered_model_alias(settings.model_name, CHAMPION, previous)
    client.set_model_version_tag(settings.model_name, current.version, "rolled_back", "true")
    log.info("rolled back champion from v%s to v%s", current.version, previous)
    return str(current.version), previous


@dataclass
class VersionRow:
    version: str
    aliases: list[str]
    accuracy: float | None
    macro_f1: float | None
    decision: str
    created: int


def list_versions(client: MlflowClient, settings: Settings) -> list[VersionRow]:
    """Every registered version with its aliases, headline metrics and gate decision, newest first."""
    try:
        versions = client.search_model_versions(f"name='{settings.model_name}'")
    except MlflowException:
        return []
    rows = []
    for mv in versions:
        full = client.get_model_version(
            settings.model_name, mv.version
        )  # search omits aliases on some stores
        metrics = client.get_run(full.run_id).data.metrics if full.run_id else {}
        rows.append(
            VersionRow(
                version=str(full.version),
                aliases=sorted(full.aliases or []),
                accuracy=metrics.get("accuracy"),
                macro_f1=metrics.get("macro_f1"),
                decision=full.tags.get("gate.decision", "-"),
                created=int(full.creation_timestamp or 0),
            )
        )
    return sorted(rows, key=lambda r: int(r.version), reverse=True)
