"""Training: the scikit-learn pipeline, and one tracked MLflow run that registers a challenger.

The pipeline is the well-known strong baseline for short listing text, tuned where it measurably
helps: title and description joined, word 1-2 grams and character 2-5 grams TF-IDF, and one linear
SVM per category with a temperature (model/classifier.py, where its cost is bounded). Price was
measured as a feature and did not help, so the model leaves it to monitoring. The numbers behind
these choices are in the README ("Quality").
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.data.pandas_dataset import from_pandas
from mlflow.models import ModelSignature, infer_signature
from mlflow.types import ColSpec, Schema
from mlflow.types.schema import AnyType
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import Pipeline, make_union
from sklearn.preprocessing import FunctionTransformer

from pigeonhole.core.errors import DataValidationError
from pigeonhole.core.settings import Settings, SplitKind
from pigeonhole.model import data
from pigeonhole.model.classifier import BoundedOneVsRest, fit_temperature
from pigeonhole.model.evaluate import Evaluation, evaluate
from pigeonhole.model.predict import Predictor, as_features, listing_text
from pigeonhole.model.registry import (
    connect,
    freeze_benchmark,
    is_artifact_uri,
    load_benchmark,
    log_training_artifacts,
    masked,
    register_model,
)
from pigeonhole.monitoring.calibration import calibrate
from pigeonhole.monitoring.reference import reference_frame

log = logging.getLogger(__name__)

# Only the title is required: sellers often leave description and price empty.
# the optional columns take whatever pandas reads: an empty description column is float NaN, and whole
# prices are ints, both of which MLflow's strict "string" and "double" refuse; the model coerces them
INPUT_SCHEMA = Schema(
    [
        ColSpec("string", "title"),
        ColSpec(AnyType(), "description", required=False),
        ColSpec(AnyType(), "price", required=False),
    ]
)


MAX_FEATURES = 2**19  # per vectorizer, the most frequent: bounds the vocabulary a worker holds


def build_features() -> Pipeline:
    """Words and character n-grams, float32 like the classifier's weights (or every request would
    copy the weights to float64). Up to ``MAX_FEATURES`` n-grams each: only mwpd's long descriptions
    reach it among the shared catalogues, and kept the same answers there."""
    options = {"sublinear_tf": True, "dtype": np.float32, "max_features": MAX_FEATURES}
    return Pipeline(
        [
            ("text", FunctionTransformer(listing_text)),
            (
                "features",
                make_union(
                    TfidfVectorizer(ngram_range=(1, 2), **options),
                    TfidfVectorizer(analyzer="char", ngram_range=(2, 5), **options),
                ),
            ),
        ]
    )


@dataclass
class Fitted:
    """The model, and a stand-in with the same features whose SVMs never saw the ``unseen`` rows."""

    predictor: Predictor
    stand_in: Predictor
    unseen: np.ndarray  # a mask over the training rows


def _unseen_rows(labels: np.ndarray, seed: int) -> np.ndarray:
    """A random ``REFERENCE_SHARE`` of the rows (at most ``UNSEEN_ROWS``), never a category's last one,
    so that the stand-in still knows every category."""
    order = np.random.default_rng(seed).permutation(len(labels))
    shuffled = pd.Series(labels[order])
    nth = shuffled.groupby(shuffled).cumcount().to_numpy()
    left = shuffled.map(shuffled.value_counts()).to_numpy() - 1
    chosen = order[nth < left][: min(round(REFERENCE_SHARE * len(labels)), UNSEEN_ROWS)]
    mask = np.zeros(len(labels), dtype=bool)
    mask[chosen] = True
    return mask


def fit(train: pd.DataFrame, seed: int = 0) -> Fitted:
    """Fit the features and the classifier on labelled listings (a ``label`` column).

    Two classifiers share the features: the stand-in, fitted without a random slice of the rows,
    answers that slice honestly; those answers fit the temperature (one number, so a few thousand
    rows pin it) and are the drift reference's answers. The model itself then learns from every row,
    unless the slice is at most ``SKIP_REFIT_SHARE`` of them (half a million rows and more): then
    the stand-in is the model, and a second fit as long as the first would teach it almost nothing.
    """
    features = build_features()
    X = features.fit_transform(as_features(train))
    for _, vectorizer in features.named_steps["features"].transformer_list:
        vectorizer.stop_words_ = None  # only for introspection, and as large as the vocabulary
    labels = train["label"].to_numpy()
    unseen = _unseen_rows(labels, seed)
    if not unseen.any():
        raise DataValidationError("every category has one listing: scores need a few more to calibrate on")
    stand_in = BoundedOneVsRest(seed=seed).fit(X[~unseen], labels[~unseen])
    decision = stand_in.decision_function(X[unseen])
    temperature = fit_temperature(decision, np.searchsorted(stand_in.classes_, labels[unseen]))
    refit = unseen.mean() > SKIP_REFIT_SHARE
    model = BoundedOneVsRest(seed=seed).fit(X, labels) if refit else stand_in
    stand_in.temperature_ = model.temperature_ = temperature
    log.info(
        "fitted %d categories on %d rows; temperature %.3f",
        len(model.classes_),
        len(train) if refit else int((~unseen).sum()),
        temperature,
    )
    return Fitted(
        Predictor(Pipeline([*features.steps, ("classifier", model)])),
        Predictor(Pipeline([*features.steps, ("classifier", stand_in)])),
        unseen,
    )


@dataclass
class TrainingResult:
    run_id: str
    version: str
    evaluation: Evaluation
    label_report: data.LabelReport
    train_rows: int


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


REFERENCE_SHARE = 0.15  # of the training rows: answered by a stand-in fitted without them
UNSEEN_ROWS = 5_000
SKIP_REFIT_SHARE = 0.01


def reference_samples(fitted: Fitted, train: pd.DataFrame, rows: int, seed: int) -> dict[str, pd.DataFrame]:
    """What drift monitoring compares traffic with: listings drawn like traffic, and answers from a
    model that never saw them.

    The listings are a random sample of the training rows (up to ``rows``), re-listed near-duplicates
    included, as a marketplace receives them (the grouped split's held-out titles are unlike live ones
    by construction, so a reference built from them calls healthy traffic drift). A model is
    over-confident on rows it was fitted on, so answers come from the stand-in of :func:`fit`, on the
    rows it never saw (``predictions`` pairs row by row with the head of ``inputs``). The rest carry
    text alone: a word usage test needs many listings to see a small new market, and text needs no
    answer. Text is masked like the prediction log it is compared with (and because people read it).
    """
    answered = train[fitted.unseen].head(rows)
    others = train[~fitted.unseen]
    sample = pd.concat([answered, others.sample(n=min(rows - len(answered), len(others)), random_state=seed)])
    suggestions = fitted.stand_in.suggest(answered, k=1)
    predictions = pd.DataFrame(
        {
            "listing_id": answered["listing_id"].to_numpy(),
            "label": answered["label"].to_numpy(),
            "predicted_category": suggestions["category"].to_numpy(),
            "top_score": suggestions["score"].to_numpy(),
        }
    )
    inputs = masked(sample.drop(columns=["label"]))
    return {"inputs": inputs.reset_index(drop=True), "predictions": predictions}


def _benchmark_sample(held_out: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Grouped held-out rows less any labelled by feedback, up to ``benchmark_rows``."""
    organic = held_out[~held_out["listing_id"].astype(str).str.startswith(data.FEEDBACK_ID_PREFIX)]
    return organic.sample(n=min(settings.benchmark_rows, len(organic)), random_state=settings.seed)


def _split_and_benchmark(
    labelled: pd.DataFrame, frozen: pd.DataFrame | None, settings: Settings
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(training rows, held-out rows, the lineage's benchmark), the benchmark unseen by both.

    A lineage's first training freezes its benchmark: a grouped fold of titles no training row
    shares, not even as a near-duplicate, never feedback. Unseen titles measure how a model
    generalises, which is what poisoned training rows bend. With the grouped split that fold is the
    held-out split itself; with the random split it is set aside first (a random split's rows with
    unseen titles are too few: with them alone, a capped feedback flood passed the gate).
    """
    split = settings.split
    if frozen is not None:
        train, held_out = data.split(labelled, settings.test_size, settings.seed, split)
        return _unseen_by(frozen, train), held_out, frozen
    train, unseen = data.split(labelled, settings.test_size, settings.seed, SplitKind.grouped)
    benchmark = _benchmark_sample(unseen, settings)
    if split is SplitKind.grouped:
        return train, unseen, benchmark
    train, held_out = data.split(_unseen_by(benchmark, labelled), settings.test_size, settings.seed, split)
    return train, held_out, benchmark


def _unseen_by(benchmark: pd.DataFrame, train: pd.DataFrame) -> pd.DataFrame:
    """``train`` without the benchmark's listings or titles: it must stay unseen by every model it judges."""
    titles = set(benchmark["title"].map(data.normalise_title))
    keep = ~train["listing_id"].isin(benchmark["listing_id"]) & ~train["title"].map(
        data.normalise_title
    ).isin(titles)
    return train[keep].reset_index(drop=True)


@contextmanager
def _step(progress: Progress, description: str) -> Iterator[None]:
    task = progress.add_task(description, total=1)
    yield
    progress.update(task, completed=1)


def train_and_register(
    settings: Settings,
    listings: pd.DataFrame,
    source: str,
    invalid: pd.DataFrame | None = None,
    run_name: str | None = None,
) -> TrainingResult:
    """Label, split, fit, evaluate, log everything to MLflow and register the model as ``challenger``.

    The run is named for what it did (default ``train <dataset> d<depth>``; retraining says why it
    ran), and the version's description says what it learnt from and how it measured.

    The held-out rows keep every category as filed: the rare-class policy shapes what the model
    learns, never what it is measured on (``unpredictable_share`` is the held-out share it cannot
    suggest).

    ``listings`` must already have passed :func:`model.data.validate`; a dataset that cannot be
    labelled raises DataValidationError before anything is written to the tracking server.
    """
    labelled = data.with_labels(listings, settings.depth)
    policy = (settings.depth, settings.min_class_count, settings.rare_classes, settings.rare_bucket)
    data.apply_rare_policy(labelled, *policy)  # refuses an unusable label set before the registry is touched
    client = connect(settings)
    frozen = load_benchmark(client, settings)
    filed, held_out, benchmark = _split_and_benchmark(labelled, frozen, settings)
    train, label_report = data.apply_rare_policy(filed, *policy)
    log.info(
        "%s: %s; %d training and %d evaluation rows",
        source,
        label_report.summary(),
        len(train),
        len(held_out),
    )
    columns = [
        TextColumn("{task.description}"),
        SpinnerColumn(finished_text="[green]done"),
        TimeElapsedColumn(),
    ]
    name = run_name or f"train {Path(source).name.split('.')[0]} d{settings.depth}"
    with Progress(*columns, transient=False) as progress, mlflow.start_run(run_name=name) as run:
        with _step(progress, f"Fitting on {len(train):,} listings, {label_report.classes} categories"):
            started = time.perf_counter()
            fitted = fit(train, seed=settings.seed)
            predictor = fitted.predictor
            train_seconds = time.perf_counter() - started
        with _step(progress, f"Evaluating on {len(held_out):,} held-out listings"):
            evaluation = evaluate(predictor, held_out, k=settings.top_k)
        with _step(progress, "Drift reference: a stand-in's answers on unseen rows, thresholds calibrated"):
            reference = reference_samples(fitted, train, settings.reference_rows, settings.seed)
            calibration = calibrate(reference_frame(reference), settings)
        with _step(progress, "Logging run and registering model"):
            started = time.perf_counter()
            _log_run(settings, listings, train, held_out, evaluation, label_report, source)
            log_training_artifacts(train, held_out, reference, calibration.as_dict() if calibration else None)
            if invalid is not None and len(invalid):
                mlflow.log_table(invalid.astype(str), "data/invalid_rows.json")
            mlflow.log_param("invalid_rows_dropped", 0 if invalid is None else len(invalid))
            if calibration is not None:
                mlflow.log_metrics({f"drift_threshold_scale_{c}": v for c, v in calibration.scales.items()})
            example = held_out[data.FEATURE_COLUMNS].head(3).reset_index(drop=True)
            version = register_model(
                client,
                settings,
                predictor,
                _signature(settings, predictor, example),
                example,
                _requirements(),
                _description(source, listings, train, label_report, evaluation),
            )
            if frozen is None:
                freeze_benchmark(client, settings, benchmark)
            mlflow.log_metrics({"train_seconds": train_seconds, "log_seconds": time.perf_counter() - started})
    return TrainingResult(run.info.run_id, version, evaluation, label_report, len(train))


def _description(
    source: str,
    listings: pd.DataFrame,
    train: pd.DataFrame,
    label_report: data.LabelReport,
    evaluation: Evaluation,
) -> str:
    metrics = evaluation.metrics
    return (
        f"Trained on {source} ({len(listings):,} listings, digest {data.dataset_digest(listings)}): "
        f"{len(train):,} training rows, {label_report.summary()}. On {round(metrics['eval_rows']):,} "
        f"held-out rows: accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}, "
        f"top-3 {metrics['top3_accuracy']:.4f}."
    )


def _log_run(
    settings: Settings,
    listings: pd.DataFrame,
    train: pd.DataFrame,
    held_out: pd.DataFrame,
    evaluation: Evaluation,
    label_report: data.LabelReport,
    source: str,
) -> None:
    mlflow.log_params(
        {
            "depth": settings.depth,
            "min_class_count": settings.min_class_count,
            "rare_classes": settings.rare_classes.value,
            "test_size": settings.test_size,
            "seed": settings.seed,
            "classes": label_report.classes,
            "train_rows": len(train),
            "eval_rows": len(held_out),
            "dataset_rows": len(listings),
            "dataset_digest": data.dataset_digest(listings),
            "source": source,
            "classifier": "bounded one-vs-rest LinearSVC on word 1-2 + char 2-5 tf-idf, temperature",
        }
    )
    mlflow.set_tags({"git_commit": git_commit(), "dataset_source": source})
    with warnings.catch_warnings():  # MLflow cannot tell a local path's source type apart; either is right
        warnings.simplefilter("ignore", UserWarning)
        frame, name = listings[data.CONTRACT_COLUMNS], Path(source).name
        # MLflow resolves no dataset source for its own artifact URIs; the source tag carries them
        dataset = (
            from_pandas(frame, name=name)
            if is_artifact_uri(source)
            else from_pandas(frame, source=source, name=name)
        )
    # MLflow would infer the schema by looking at every value (13 s at a million rows); the contract
    # has fixed the columns' types already, so a sample of the validated rows states the same schema
    dataset.schema = infer_signature(frame.head(1_000)).inputs
    mlflow.log_input(dataset, context="training")
    mlflow.log_metrics(evaluation.metrics)
    mlflow.log_dict(evaluation.per_class, "evaluation/per_class_report.json")
    mlflow.log_dict(
        {"summary": label_report.summary(), "merged": label_report.merged, "dropped": label_report.dropped},
        "evaluation/label_report.json",
    )
    with evaluation.confusion_matrix() as figure:
        mlflow.log_figure(figure, "evaluation/confusion_matrix.png")
    log.info("logged metrics %s", json.dumps({k: round(v, 4) for k, v in evaluation.metrics.items()}))


def _signature(settings: Settings, predictor: Predictor, example: pd.DataFrame) -> ModelSignature:
    """Title required, description and price optional; ``k`` defaults to ``top_k``."""
    inferred = infer_signature(
        example, predictor.suggest(example, k=settings.top_k), params={"k": settings.top_k}
    )
    return ModelSignature(inputs=INPUT_SCHEMA, outputs=inferred.outputs, params=inferred.params)


def _requirements() -> list[str]:
    """Pinned from this environment: inferring them makes MLflow load the model again in a subprocess."""
    return [f"{name}=={version(name)}" for name in ("mlflow", "scikit-learn", "pandas", "numpy", "joblib")]
