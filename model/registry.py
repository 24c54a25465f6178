"""The MLflow model registry as the rest of the platform sees it: the model contract, in one place.

``challenger`` is the newest trained version, ``champion`` the one that serves. Nothing else finds
a model any other way. Each promotion records on the new champion which version it replaced, so a
rollback can walk the history back one step at a time.

This module also owns where training data lives in a deployed stack (MLflow's proxied artifact
store: the S3 bucket on eks, a volume on kind), and what a registered version carries and where:
the pyfunc model with its pipeline artifact (and that file's SHA-256, checked before every load:
a pipeline is a pickle, so a swapped file would run code), the evaluation rows and training ids
the gate reads, the lineage's frozen benchmark, and the reference samples the drift job compares
traffic with. Training writes them and everyone
else reads them through the functions below, so no other file spells an artifact name or a
``models:/`` URI.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

from pigeonhole.core.errors import ConfigurationError, RegistryError
from pigeonhole.core.pii import mask
from pigeonhole.core.settings import Settings
from pigeonhole.model.predict import Predictor

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS_CHAMPION_TAG = "previous_champion"
EMBEDDED_SCHEMES = ("sqlite:", "file:")

# what a registered version carries
MODEL_ARTIFACT = "model"  # the pyfunc model, logged from model/mlflow_model.py
MODEL_CODE = Path(__file__).with_name("mlflow_model.py")
PIPELINE_ARTIFACT = "pipeline"  # the fitted scikit-learn pipeline inside the pyfunc model
PIPELINE_FILE = "pipeline.pkl"
LEGACY_PIPELINE_FILE = "pipeline.joblib"  # what versions registered before 2026-11-27 carry
PIPELINE_DIGEST_TAG = "pipeline_sha256"  # on the version: what load_predictor insists on
EVALUATION_DIR = "evaluation"
EVALUATION_ROWS = "evaluation.parquet"  # the held-out split the gate scores on
TRAINING_IDS = "train_ids.parquet"  # lets a later gate leave out rows this model has seen
REFERENCE_DIR = "reference"
REFERENCE_SAMPLES = ("inputs", "predictions")  # the drift job's reference, as <name>.parquet
DRIFT_CALIBRATION = "calibration.json"  # beside them: the thresholds' scales (monitoring/calibration.py)
# per registered model (lineage): curated held-out rows, frozen by its first training, never feedback
BENCHMARK_DIR = "benchmark"
BENCHMARK_ROWS = "benchmark.parquet"
BENCHMARK_RUN_TAG = "benchmark_run"  # on the registered model: the run that logged the benchmark

# training data in a deployed stack: files under MLflow's artifact root, read through the server, so a
# Job needs the server's URL and nothing else (no cloud keys, no volume of its own)
DATASETS = "mlflow-artifacts:/datasets"
DEFAULT_DATASET = f"{DATASETS}/listings.csv.gz"
ARTIFACT_URI_SCHEMES = ("mlflow-artifacts:", "runs:", "models:")


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
    if settings.tracking_uri is None and not settings.embedded_store.exists():
        # MLflow's "Default" experiment, made with the store, would point at ./mlruns of whichever
        # folder the first command ran in; made here, it points into the state folder
        SqlAlchemyStore(uri, settings.artifact_location)
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


def publish_dataset(settings: Settings, path: Path, name: str | None = None) -> str:
    """Upload a dataset to the stack's store (through the MLflow server); return its durable URI."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    if not settings.resolved_tracking_uri.startswith(("http://", "https://")):
        raise ConfigurationError(
            "publishing a dataset needs an MLflow server (--tracking-uri http://...); "
            "with the embedded store, train from the file's path"
        )
    connect(settings)
    with tempfile.TemporaryDirectory() as tmp:
        named = Path(tmp) / (name or path.name)
        named.write_bytes(path.read_bytes())
        get_artifact_repository(DATASETS).log_artifact(str(named))
    return f"{DATASETS}/{named.name}"


def is_artifact_uri(source: str) -> bool:
    """A dataset the registry's server holds (read anywhere it is reachable), not a local path."""
    return source.startswith(ARTIFACT_URI_SCHEMES)


def local_dataset(settings: Settings, source: str) -> Path:
    """A dataset named by a path, or by an artifact URI (downloaded through the registry's server)."""
    if not is_artifact_uri(source):
        return Path(source)
    connect(settings)
    try:
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=source))
    except MlflowException as exc:
        raise RegistryError(
            f"{source} cannot be read from {settings.resolved_tracking_uri}: {exc.message}; "
            "publish it first (`pigeonhole data publish FILE`)"
        ) from None


def model_uri(settings: Settings, alias: str) -> str:
    return f"models:/{settings.model_name}@{alias}"


def version_uri(version: ModelVersion) -> str:
    return f"models:/{version.name}/{version.version}"


MLFLOW_UI = "http://127.0.0.1:5000"  # where `mlflow ui` listens, for a registry without a server


def registry_location(settings: Settings) -> str:
    """The tracking URI as it can be shown or logged: without a password (a database URI may carry one)."""
    parts = urlsplit(settings.resolved_tracking_uri)
    if parts.password is None:
        return settings.resolved_tracking_uri
    return parts._replace(
        netloc=f"{parts.username}:***@{parts.hostname}{f':{parts.port}' if parts.port else ''}"
    ).geturl()


def version_page(settings: Settings, name: str, version: str) -> str:
    """The version's page in the MLflow UI: the tracking server's, or `mlflow ui`'s on this machine."""
    uri = settings.resolved_tracking_uri
    base = uri.rstrip("/") if uri.startswith(("http://", "https://")) else MLFLOW_UI
    return f"{base}/#/models/{quote(name)}/versions/{quote(version)}"


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


def pipeline_file(model_dir: Path) -> Path:
    """Where a downloaded pyfunc model (this registry's layout) keeps its scikit-learn pipeline."""
    current = model_dir / "artifacts" / PIPELINE_FILE
    return current if current.exists() else model_dir / "artifacts" / LEGACY_PIPELINE_FILE


def download_pipeline(version: ModelVersion) -> Path:
    """A registered version's scikit-learn pipeline file, downloaded to a local folder."""
    return pipeline_file(Path(mlflow.artifacts.download_artifacts(version_uri(version))))


def file_digest(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def load_predictor(version: ModelVersion) -> Predictor:
    """Load a registered version's scikit-learn pipeline natively (no pyfunc wrapper), only if the
    file is byte for byte the one registered: unpickling a swapped file would run its code."""
    path = download_pipeline(version)
    recorded = (version.tags or {}).get(PIPELINE_DIGEST_TAG)
    if recorded is None or file_digest(path) != recorded:
        raise RegistryError(
            f"refusing to load {version.name} v{version.version}: its pipeline file "
            + (
                "has no recorded digest (registered by an older release: retrain it)"
                if recorded is None
                else "does not match the digest recorded at registration (tampered with?)"
            )
        )
    return Predictor.load(path)


def register_model(
    client: MlflowClient,
    settings: Settings,
    predictor: Predictor,
    signature: ModelSignature,
    input_example: pd.DataFrame,
    pip_requirements: list[str],
    description: str,
) -> str:
    """Log the pyfunc model in the active run, register it through ``client`` with ``description``
    (what it learnt from, how it measured; the gate adds its verdict); return the version."""
    with tempfile.TemporaryDirectory() as tmp:
        pipeline_path = predictor.save(Path(tmp) / PIPELINE_FILE)
        digest = file_digest(pipeline_path)
        info = mlflow.pyfunc.log_model(
            name=MODEL_ARTIFACT,
            python_model=str(MODEL_CODE),
            pip_requirements=pip_requirements,
            artifacts={PIPELINE_ARTIFACT: str(pipeline_path)},
            signature=signature,
            input_example=input_example,
        )
    try:
        client.create_registered_model(settings.model_name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    version = client.create_model_version(
        settings.model_name,
        source=info.model_uri,
        run_id=info.run_id,
        model_id=info.model_id,
        tags={PIPELINE_DIGEST_TAG: digest},
        description=description,
    )
    client.set_registered_model_alias(settings.model_name, CHALLENGER, version.version)
    return str(version.version)


def log_training_artifacts(
    train: pd.DataFrame,
    held_out: pd.DataFrame,
    reference: dict[str, pd.DataFrame],
    calibration: dict[str, Any] | None,
) -> None:
    """Log, in the active run, what the gate and the drift job will read back for this version
    (listing text masked like the prediction log: people read these files)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        masked(held_out).to_parquet(folder / EVALUATION_ROWS, index=False)
        train[["listing_id"]].to_parquet(folder / TRAINING_IDS, index=False)
        mlflow.log_artifact(str(folder / EVALUATION_ROWS), EVALUATION_DIR)
        mlflow.log_artifact(str(folder / TRAINING_IDS), EVALUATION_DIR)
        for name in REFERENCE_SAMPLES:
            reference[name].to_parquet(folder / f"{name}.parquet", index=False)
            mlflow.log_artifact(str(folder / f"{name}.parquet"), REFERENCE_DIR)
    if calibration is not None:
        mlflow.log_dict(calibration, f"{REFERENCE_DIR}/{DRIFT_CALIBRATION}")


def masked(listings: pd.DataFrame) -> pd.DataFrame:
    return listings.assign(title=listings["title"].map(mask), description=listings["description"].map(mask))


def load_benchmark(client: MlflowClient, settings: Settings) -> pd.DataFrame | None:
    """The lineage's frozen benchmark (labelled listings), or None before its first training."""
    try:
        run_id = client.get_registered_model(settings.model_name).tags.get(BENCHMARK_RUN_TAG)
    except MlflowException:
        return None
    if run_id is None:
        return None
    local = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path=f"{BENCHMARK_DIR}/{BENCHMARK_ROWS}"
    )
    return pd.read_parquet(local)


def freeze_benchmark(client: MlflowClient, settings: Settings, rows: pd.DataFrame) -> None:
    """Log ``rows`` in the active run as the lineage's benchmark, once: every later gate reuses it."""
    run = mlflow.active_run()
    if run is None or BENCHMARK_RUN_TAG in client.get_registered_model(settings.model_name).tags:
        raise RegistryError(f"'{settings.model_name}' already has a benchmark, or no run is active")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / BENCHMARK_ROWS
        masked(rows).to_parquet(path, index=False)
        mlflow.log_artifact(str(path), BENCHMARK_DIR)
    client.set_registered_model_tag(settings.model_name, BENCHMARK_RUN_TAG, run.info.run_id)


def _run_artifact(version: ModelVersion, folder: str, name: str) -> pd.DataFrame:
    local = mlflow.artifacts.download_artifacts(run_id=version.run_id, artifact_path=f"{folder}/{name}")
    return pd.read_parquet(local)


def load_evaluation_rows(version: ModelVersion) -> pd.DataFrame:
    """The held-out rows ``version`` was evaluated on, labelled."""
    return _run_artifact(version, EVALUATION_DIR, EVALUATION_ROWS)


def load_training_ids(version: ModelVersion) -> set[str]:
    """The listing ids ``version`` was trained on."""
    return set(_run_artifact(version, EVALUATION_DIR, TRAINING_IDS)["listing_id"])


def load_reference(version: ModelVersion) -> dict[str, pd.DataFrame]:
    """The reference samples logged with ``version`` (see :data:`REFERENCE_SAMPLES`)."""
    return {name: _run_artifact(version, REFERENCE_DIR, f"{name}.parquet") for name in REFERENCE_SAMPLES}


def load_drift_calibration(version: ModelVersion) -> dict[str, Any] | None:
    """The drift thresholds' calibration logged with ``version``; None for a version trained without."""
    try:
        return mlflow.artifacts.load_dict(f"runs:/{version.run_id}/{REFERENCE_DIR}/{DRIFT_CALIBRATION}")
    except (MlflowException, OSError):
        return None


def run_metric(client: MlflowClient, version: ModelVersion, name: str) -> float | None:
    """A metric of the training run that produced ``version``."""
    return client.get_run(version.run_id).data.metrics.get(name) if version.run_id else None


def run_param(client: MlflowClient, version: ModelVersion, name: str) -> str | None:
    """A parameter of the training run that produced ``version``."""
    return client.get_run(version.run_id).data.params.get(name) if version.run_id else None


def set_champion(client: MlflowClient, settings: Settings, version: str) -> None:
    """Make ``version`` the champion, remembering which version it replaces (for rollback). The
    ``challenger`` alias leaves it: a promoted version is no longer anyone's challenger."""
    current = version_by_alias(client, settings, CHAMPION)
    if current is not None and str(current.version) != str(version):
        client.set_model_version_tag(
            settings.model_name, version, PREVIOUS_CHAMPION_TAG, str(current.version)
        )
    client.set_registered_model_alias(settings.model_name, CHAMPION, version)
    challenger = version_by_alias(client, settings, CHALLENGER)
    if challenger is not None and str(challenger.version) == str(version):
        client.delete_registered_model_alias(settings.model_name, CHALLENGER)


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


@dataclass(frozen=True)
class RegistryUser:
    """One identity of the deployed MLflow server's basic-auth app."""

    username: str
    password: str


def setup_users(settings: Settings, writer: RegistryUser, reader: RegistryUser) -> list[str]:
    """As the registry's admin (MLFLOW_TRACKING_USERNAME/PASSWORD): the two identities the platform's
    pods use exist with these passwords, neither an admin.

    The reader (the service, the drift job) has the server's default permission, READ: it can load the
    champion but never move an alias. The writer (training, the gate) may manage the experiment and the
    registered model. The experiment is created here, by the admin, so that no reader process ever
    creates (and so owns) it; a registered model the writer has not created yet will be its own.
    """
    from mlflow.server.auth.client import AuthServiceClient

    auth = AuthServiceClient(settings.resolved_tracking_uri)
    done = []
    for user in (writer, reader):
        try:
            auth.get_user(user.username)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            auth.create_user(user.username, user.password)
            done.append(f"user {user.username} created")
        else:
            auth.update_user_password(user.username, user.password)
            done.append(f"user {user.username}: password set")
        auth.update_user_admin(user.username, False)
    client = connect(settings)
    experiment = client.get_experiment_by_name(settings.experiment)
    assert experiment is not None  # connect() made it
    auth.grant_user_permission(writer.username, "experiment", experiment.experiment_id, "MANAGE")
    done.append(f"{writer.username} manages experiment {settings.experiment}")
    try:
        client.get_registered_model(settings.model_name)
    except MlflowException:
        done.append(f"{writer.username} will own model {settings.model_name} once it registers it")
    else:
        auth.grant_user_permission(writer.username, "registered_model", settings.model_name, "MANAGE")
        done.append(f"{writer.username} manages model {settings.model_name}")
    done.append(f"{reader.username} reads only (the server's default permission)")
    return done
