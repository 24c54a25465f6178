"""The drift decision at its boundaries, and which columns are compared: pure, no model, no files.
`make mutation` holds these tests to killing at least nine mutants in ten of monitoring/compare.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pigeonhole.core.settings import Settings
from pigeonhole.monitoring.compare import (
    METHODS,
    MIN_FEEDBACK_FOR_QUALITY,
    Comparison,
    FeedbackQuality,
    _columns,
    _frame,
    compare,
    decide,
    feedback_pairs,
    quality_snapshot,
)
from pigeonhole.monitoring.result import ColumnScore, Decision

SETTINGS = Settings(drift_share=0.5, drift_alone_columns=["title"], drift_max_accuracy_drop=0.25)
CALM = FeedbackQuality(rows=0, accuracy=None, reference_accuracy=0.9)


def _comparison(drifted: list[str], columns: tuple[str, ...], share: float) -> Comparison:
    scores = {
        c: ColumnScore("wasserstein", 0.1, 0.2 if c in drifted else 0.05, c in drifted) for c in columns
    }
    return Comparison(scores, share, snapshot=None)


@pytest.mark.parametrize(
    ("share", "decision"), [(0.5, Decision.drift), (0.5 - 1e-9, Decision.no_drift), (0.0, Decision.no_drift)]
)
def test_drift_from_the_share_of_drifted_columns_up(share: float, decision: Decision) -> None:
    drifted = ["price", "top_score"] if share >= 0.5 else []
    verdict, reasons = decide(
        SETTINGS, _comparison(drifted, ("price", "top_score", "title", "x"), share), CALM
    )
    assert verdict is decision
    listed = ", ".join(drifted) or "none"
    assert reasons == [f"{len(drifted)} of 4 columns drifted ({listed}); share {share:.2f} vs threshold 0.50"]


def test_a_column_that_counts_alone_is_drift_below_the_share() -> None:
    verdict, reasons = decide(SETTINGS, _comparison(["title"], ("title", "price", "top_score"), 0.33), CALM)
    assert verdict is Decision.drift
    assert reasons[1] == "title drifted, which alone counts as drift"
    both = SETTINGS.model_copy(update={"drift_alone_columns": ["title", "description"]})
    columns = ("title", "description", "price", "top_score", "x")
    assert decide(both, _comparison(["title", "description"], columns, 0.4), CALM)[1][1] == (
        "title, description drifted, which alone counts as drift"
    )
    other, reasons = decide(SETTINGS, _comparison(["price"], ("title", "price", "top_score"), 0.33), CALM)
    assert other is Decision.no_drift and len(reasons) == 1


@pytest.mark.parametrize(
    ("accuracy", "rows", "dropped"),
    [
        (0.5, MIN_FEEDBACK_FOR_QUALITY, False),  # exactly the allowed 0.25 below 0.75
        (0.5 - 1e-9, MIN_FEEDBACK_FOR_QUALITY, True),
        (0.5 - 1e-9, MIN_FEEDBACK_FOR_QUALITY - 1, False),  # too little feedback to judge
        (0.1, 1000, True),
        (None, 1000, False),
    ],
)
def test_accuracy_on_feedback_below_the_champions_is_drift(
    accuracy: float | None, rows: int, dropped: bool
) -> None:
    quality = FeedbackQuality(rows=rows, accuracy=accuracy, reference_accuracy=0.75)
    assert quality.dropped(0.25) is dropped
    verdict, reasons = decide(SETTINGS, _comparison([], ("price",), 0.0), quality)
    assert verdict is (Decision.drift if dropped else Decision.no_drift)
    if dropped:
        assert (
            reasons[-1] == f"accuracy on feedback {accuracy:.3f} is more than 0.25 below the champion's 0.750"
        )


def test_without_the_champions_accuracy_nothing_has_dropped() -> None:
    assert not FeedbackQuality(rows=1000, accuracy=0.1, reference_accuracy=None).dropped(0.25)


def _listings(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    random = np.random.default_rng(seed)
    words = np.array(["phone", "chair", "table", "bike", "lamp", "sofa", "case", "desk"])
    titles = [" ".join(random.choice(words, 3)) for _ in range(rows)]
    return pd.DataFrame(
        {
            "title": titles,
            "description": [""] * rows,
            "predicted_category": random.choice(["A", "B", "C"], rows, p=[0.5 - shift, 0.3, 0.2 + shift]),
            "top_score": random.normal(0.8 - shift, 0.05, rows),
            "price": random.normal(100, 10, rows),
        }
    )


def test_only_columns_with_content_on_both_sides_are_compared() -> None:
    reference, current = _listings(50, 1), _listings(50, 2)
    assert _columns(reference, current) == ["title", "predicted_category", "top_score", "price"]
    assert "price" not in _columns(reference, current.assign(price=np.nan)), "most listings have no price"
    half = [np.nan] * 25 + [1.0] * 25
    assert "price" in _columns(reference.assign(price=half), current.assign(price=half)), "half is enough"
    described = reference.assign(description=["a"] * 25 + [" "] * 25)
    assert "description" in _columns(described, current), "descriptions where half the sellers write one"
    assert "description" not in _columns(reference.assign(description=["a"] * 24 + [" "] * 26), current)
    assert "description" not in _columns(reference.assign(description=["a"] * 24 + [None] * 26), current)
    unanswered = reference.assign(predicted_category=None, top_score=np.nan)
    assert _columns(unanswered, current) == ["title", "price"], "a reference of listings without answers"
    assert _columns(reference.drop(columns=["title"]), current)[0] == "predicted_category"


def test_the_frame_compared_is_masked_typed_and_keeps_missing_answers() -> None:
    frame = pd.DataFrame(
        {
            "title": ["call 07700 900123", None],
            "predicted_category": pd.Series([3, None], dtype=object),
            "price": ["12.5", "n/a"],
        }
    )
    out = _frame(frame.set_axis([5, 7]), ["title", "predicted_category", "price"])
    assert list(out.columns) == ["title", "predicted_category", "price"] and out.index.tolist() == [0, 1]
    assert out["title"].tolist() == ["call <phone>", ""]
    assert out["predicted_category"].tolist()[0] == "3" and out["predicted_category"].isna().tolist() == [
        False,
        True,
    ]
    assert out["price"].tolist()[0] == 12.5 and np.isnan(out["price"].tolist()[1])


@pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")  # nothing leaks to a user
def test_compare_scores_each_column_against_its_threshold() -> None:
    reference, current = _listings(400, 1), _listings(400, 2, shift=0.2)
    thresholds = {"title": 100.0, "predicted_category": 0.05, "top_score": 0.5, "price": 1e9}
    comparison = compare(reference, current, thresholds, drift_share=0.3)
    scores = comparison.columns
    assert list(scores) == ["title", "predicted_category", "top_score", "price"]
    assert scores["predicted_category"].drifted and scores["top_score"].drifted
    assert not scores["title"].drifted and not scores["price"].drifted
    metrics = {m["config"].get("column", "share"): m for m in comparison.snapshot.dict()["metrics"]}
    for name, score in scores.items():
        assert (score.method, score.threshold) == (METHODS[name], thresholds[name])
        assert metrics[name]["config"]["threshold"] == thresholds[name], "Evidently's report shows ours"
        assert score.value == round(metrics[name]["value"], 4) != metrics[name]["value"]
    assert metrics["share"]["config"]["columns"] == list(scores)
    assert metrics["share"]["config"]["drift_share"] == 0.3
    assert comparison.drift_share == 0.5 == metrics["share"]["value"]["share"]

    at_the_threshold = {**thresholds, "price": metrics["price"]["value"]}
    assert compare(reference, current, at_the_threshold, drift_share=0.5).columns["price"].drifted
    without_prices = compare(reference, current.assign(price=np.nan), thresholds, drift_share=0.5)
    assert without_prices.drift_share == 0.6667, "2 of 3 columns, to four decimals"


def test_accuracy_on_feedback_for_evidently_with_two_categories_or_many() -> None:
    for truth, answered in [("AABB", "AABA"), ("ABCC", "ABCA"), ("AA", "AA")]:
        pairs = pd.DataFrame({"target": list(truth), "prediction": list(answered)})
        [metric] = quality_snapshot(pairs).dict()["metrics"]
        assert metric["value"] == float((pairs["target"] == pairs["prediction"]).mean())


def test_feedback_pairs_put_the_sellers_choice_beside_the_top_suggestion() -> None:
    pairs = feedback_pairs(pd.DataFrame({"chosen_category": ["A", 2], "top_category": ["A", "B"]}))
    assert pairs.to_dict("list") == {"target": ["A", "2"], "prediction": ["A", "B"]}
