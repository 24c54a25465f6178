"""Training logs a complete, standard MLflow model and registers it as the challenger."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from pigeonhole.core.settings import Settings, SplitKind
from pigeonhole.model import data
from pigeonhole.model.registry import (
    CHALLENGER,
    connect,
    load_benchmark,
    load_drift_calibration,
    load_evaluation_rows,
    load_predictor,
    load_reference,
    load_training_ids,
    model_uri,
)
from pigeonhole.model.score import score_on_spark
from pigeonhole.model.train import REFERENCE_SHARE, TrainingResult, train_and_register
from pigeonhole.monitoring.calibration import Calibration, union_z


@pytest.fixture(scope="module")
def trained(
    tmp_path_factory: pytest.TempPathFactory, listings: pd.DataFrame
) -> tuple[Settings, TrainingResult]:
    settings = Settings(home=tmp_path_factory.mktemp("train") / "state", min_class_count=5)
    return settings, train_and_register(settings, data.validate(listings), source="synthetic")


def test_registers_a_challenger_with_quality_metrics(trained: tuple[Settings, TrainingResult]) -> None:
    settings, result = trained
    client = connect(settings)
    assert str(client.get_model_version_by_alias(settings.model_name, CHALLENGER).version) == result.version
    assert client.get_run(result.run_id).info.run_name == f"train synthetic d{settings.depth}"
    metrics = client.get_run(result.run_id).data.metrics
    assert metrics["accuracy"] > 0.85 and metrics["macro_f1"] > 0.8
    assert metrics["top3_accuracy"] >= metrics["accuracy"]
    assert metrics["ece"] < 0.1, "scores must be calibrated for top-k and abstaining"
    assert metrics["train_seconds"] > 0


def test_run_records_lineage_and_artifacts(trained: tuple[Settings, TrainingResult]) -> None:
    settings, result = trained
    client = connect(settings)
    run = client.get_run(result.run_id)
    assert run.data.params["dataset_rows"] == "3000" and len(run.data.params["dataset_digest"]) == 16
    assert run.data.tags["git_commit"]
    assert run.inputs.dataset_inputs, "the dataset is logged as an MLflow input"
    names = {a.path for a in client.list_artifacts(result.run_id, "evaluation")}
    assert {
        "evaluation/confusion_matrix.png",
        "evaluation/per_class_report.json",
        "evaluation/evaluation.parquet",
    } <= names


def _benchmark_titles_are_unseen(settings: Settings, result: TrainingResult, listings: pd.DataFrame) -> None:
    client = connect(settings)
    version = client.get_model_version(settings.model_name, result.version)
    benchmark = load_benchmark(client, settings)
    assert benchmark is not None and len(benchmark) >= 0.15 * len(listings), "a grouped fold, not a scrap"
    trained_on = listings[listings["listing_id"].isin(load_training_ids(version))]
    seen = set(trained_on["title"].map(data.normalise_title))
    assert not benchmark["title"].map(data.normalise_title).isin(seen).any()


def test_the_frozen_benchmark_holds_titles_no_model_of_the_lineage_trains_on(
    trained: tuple[Settings, TrainingResult], listings: pd.DataFrame
) -> None:
    _benchmark_titles_are_unseen(*trained, listings)


def test_with_the_random_split_the_benchmark_is_set_aside_first(
    tmp_path: Path, listings: pd.DataFrame
) -> None:
    """A random split's held-out rows are mostly re-listed titles; the benchmark must not be."""
    settings = Settings(home=tmp_path / "state", split=SplitKind.random)
    result = train_and_register(settings, data.validate(listings), source="synthetic")
    _benchmark_titles_are_unseen(settings, result, listings)
    version = connect(settings).get_model_version(settings.model_name, result.version)
    evaluated = load_evaluation_rows(version)["listing_id"]
    assert not set(load_benchmark(connect(settings), settings)["listing_id"]) & set(evaluated)


def test_the_reference_is_traffic_like_rows_answered_by_a_model_that_never_saw_them(
    trained: tuple[Settings, TrainingResult],
) -> None:
    settings, result = trained
    version = connect(settings).get_model_version(settings.model_name, result.version)
    reference = load_reference(version)
    predictions, inputs = reference["predictions"], reference["inputs"]
    assert set(predictions["listing_id"]) <= load_training_ids(version), (
        "a random sample, not held-out groups"
    )
    assert set(inputs["listing_id"]) <= load_training_ids(version) and inputs["listing_id"].is_unique
    assert inputs["listing_id"].head(len(predictions)).tolist() == predictions["listing_id"].tolist(), (
        "answers pair with the head of the listings"
    )
    assert len(inputs) == min(settings.reference_rows, result.train_rows), "text from up to reference_rows"
    assert predictions["top_score"].between(0, 1).all() and predictions["predicted_category"].notna().all()
    assert not inputs["description"].str.contains("@example.com").any(), "contact details are masked"
    assert len(predictions) == round(REFERENCE_SHARE * result.train_rows)


def test_drift_thresholds_are_calibrated_for_the_model(trained: tuple[Settings, TrainingResult]) -> None:
    settings, result = trained
    stored = load_drift_calibration(connect(settings).get_model_version(settings.model_name, result.version))
    assert stored is not None
    calibration = Calibration.from_dict(stored)
    assert calibration.false_alarm_rate == settings.drift_false_alarm_rate
    assert set(calibration.scales) == {"predicted_category", "top_score", "price"}
    small, large = (
        calibration.thresholds(settings.drift_thresholds, 500, dict.fromkeys(calibration.scales, 5000)),
        calibration.thresholds(settings.drift_thresholds, 5000, dict.fromkeys(calibration.scales, 5000)),
    )
    assert small["predicted_category"] > large["predicted_category"] > 0, "smaller windows are noisier"
    assert small["title"] == large["title"] == round(union_z(settings.drift_false_alarm_rate), 4), (
        "text scores are z-scores against chance at any size: the same z as the union bound"
    )


def test_training_leaves_no_figure_open(trained: tuple[Settings, TrainingResult]) -> None:
    """pyplot keeps every open figure: a service or job that retrains would grow with each run."""
    import matplotlib.pyplot as plt

    assert plt.get_fignums() == []


def test_standard_pyfunc_model_returns_top_k(trained: tuple[Settings, TrainingResult]) -> None:
    settings, _ = trained
    connect(settings)
    model = mlflow.pyfunc.load_model(model_uri(settings, CHALLENGER))
    frame = pd.DataFrame(
        {
            "title": ["iPhone 13 128GB, like new", "2 bed flat near station"],
            "description": ["", "Bills included"],
            "price": [350.0, None],
        }
    )
    assert all(len(row) == settings.top_k for row in model.predict(frame)["top_categories"])
    answer = model.predict(frame, params={"k": 5})
    assert answer["category"].tolist() == ["Electronics > Mobile phones", "Property > Flats for rent"]
    assert all(len(row) == 5 for row in answer["top_categories"])
    assert all(list(row) == sorted(row, reverse=True) for row in answer["top_scores"])
    assert (answer["score"] == answer["top_scores"].map(lambda r: r[0])).all()


def test_the_registered_model_is_compact_and_never_copies_it_per_request(
    trained: tuple[Settings, TrainingResult], listings: pd.DataFrame
) -> None:
    """Sparse float32 weights bound the artifact; float32 features keep a request from upcasting them."""
    settings, result = trained
    pipeline = load_predictor(
        connect(settings).get_model_version(settings.model_name, result.version)
    ).pipeline
    assert pipeline.named_steps["classifier"].weights_.dtype == np.float32
    features = pipeline[:-1].transform(listings.head(3))
    assert features.dtype == np.float32


def test_spark_scores_a_file_as_the_service_would(
    trained: tuple[Settings, TrainingResult], listings: pd.DataFrame, tmp_path: Path
) -> None:
    """`pigeonhole score --spark`: the registered model on Spark (local mode, as in a cluster's
    executors) gives each listing the suggestions the service gives it."""
    from pyspark.sql import SparkSession  # the spark extra is in the dev lock

    settings, result = trained
    connect(settings)
    rows = listings.sample(300, random_state=1)[["listing_id", *data.FEATURE_COLUMNS]]
    rows.to_parquet(tmp_path / "new.parquet", index=False)
    try:
        scored = score_on_spark(
            model_uri(settings, CHALLENGER), str(tmp_path / "new.parquet"), str(tmp_path / "scored"), k=2
        )
    finally:
        SparkSession.builder.getOrCreate().stop()
    answers = pd.read_parquet(tmp_path / "scored").set_index("listing_id").loc[rows["listing_id"]]
    served = load_predictor(connect(settings).get_model_version(settings.model_name, result.version))
    expected = served.suggest(rows, k=2)
    assert scored == 300
    assert answers["category"].tolist() == expected["category"].tolist()
    np.testing.assert_allclose(answers["score"], expected["score"], rtol=1e-5)
    assert answers["top_categories"].map(list).tolist() == expected["top_categories"].tolist()


def test_the_pyfunc_takes_a_file_as_pandas_reads_it(
    trained: tuple[Settings, TrainingResult], tmp_path: Path
) -> None:
    """Bring-your-own data: an empty description column reads as float NaN, whole prices as ints."""
    settings, _ = trained
    connect(settings)
    model = mlflow.pyfunc.load_model(model_uri(settings, CHALLENGER))
    (tmp_path / "mine.csv").write_text("title,description,price\niPhone 13 128GB,,350\n2 bed flat,,900\n")
    frame = pd.read_csv(tmp_path / "mine.csv")
    assert frame["description"].dtype == float and frame["price"].dtype == "int64"
    answer = model.predict(frame)
    assert answer["category"].tolist() == ["Electronics > Mobile phones", "Property > Flats for rent"]


def _with_rare_categories(listings: pd.DataFrame) -> pd.DataFrame:
    stamps = [f"penny black stamp lot {i}" for i in range(6)]
    rare = pd.DataFrame(
        {
            "listing_id": [f"rare-{i}" for i in range(8)],
            "title": [*stamps, "two stamps album", "victorian silver coin"],
            "description": "",
            "price": 5.0,
            "category_path": ["Collectibles > Stamps"] * 7 + ["Collectibles > Coins"],
        }
    )
    return data.validate(pd.concat([listings.head(1500), rare], ignore_index=True))


def test_every_category_is_suggestible_by_default(tmp_path: Path, listings: pd.DataFrame) -> None:
    settings = Settings(home=tmp_path / "state")
    train_and_register(settings, _with_rare_categories(listings), source="synthetic")
    model = mlflow.pyfunc.load_model(model_uri(settings, CHALLENGER))
    answer = model.predict(pd.DataFrame({"title": ["penny black stamp lot 9", "victorian silver coin"]}))
    assert answer["category"].tolist() == ["Collectibles > Stamps", "Collectibles > Coins"]


def test_held_out_rows_keep_the_category_their_seller_filed(tmp_path: Path, listings: pd.DataFrame) -> None:
    """Merging rare categories shapes what the model learns, never what it is measured on."""
    settings = Settings(home=tmp_path / "state", min_class_count=10)
    result = train_and_register(settings, _with_rare_categories(listings), source="synthetic")
    held_out = set(result.evaluation.truth)
    assert "Collectibles > Stamps" in held_out and settings.rare_bucket not in held_out
    unpredictable = float((result.evaluation.truth == "Collectibles > Stamps").mean())
    metrics = MlflowClient().get_run(result.run_id).data.metrics
    assert metrics["unpredictable_share"] == pytest.approx(unpredictable) and unpredictable > 0


def test_depth_one_trains_on_top_level_categories(tmp_path: Path, listings: pd.DataFrame) -> None:
    settings = Settings(home=tmp_path / "state", depth=1, min_class_count=5)
    result = train_and_register(settings, data.validate(listings.head(1500)), source="synthetic")
    assert set(result.evaluation.per_class) >= {"Electronics", "Vehicles", "Property"}
    assert MlflowClient().get_run(result.run_id).data.params["depth"] == "1"
