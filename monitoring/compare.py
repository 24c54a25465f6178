"""Compare a window of traffic with the reference (Evidently), and decide: pure, no I/O.

Each column's drift method is pinned (Evidently would otherwise pick methods by sample size, and
chi-square on small references false-alarms most of the time); its threshold is a setting
(``drift_thresholds``). Distance methods are used throughout, so "drifted" always means
value >= threshold:

- title, description: word usage shift, a z-score against chance (monitoring/stattests.py);
- predicted_category: Jensen-Shannon distance;
- top_score, price: Wasserstein distance in standard deviations.

The share of drifted columns is Evidently's own (DriftedColumnsCount), computed once.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import pandas as pd
from evidently import BinaryClassification, DataDefinition, Dataset, MulticlassClassification, Report
from evidently.metrics import Accuracy, DriftedColumnsCount, ValueDrift
from sklearn.exceptions import ConvergenceWarning

from pigeonhole.core.pii import mask
from pigeonhole.core.settings import Settings
from pigeonhole.monitoring.result import ColumnScore, Decision
from pigeonhole.monitoring.stattests import TOKEN_SHIFT

METHODS = {
    "title": TOKEN_SHIFT,
    "description": TOKEN_SHIFT,
    "predicted_category": "jensenshannon",
    "top_score": "wasserstein",
    "price": "wasserstein",
}
TEXT_COLUMNS = {"title", "description"}
NUMERIC_COLUMNS = {"top_score", "price"}
ANSWER_COLUMNS = {"predicted_category", "top_score"}  # every answer has them; a reference on some rows
MIN_FEEDBACK_FOR_QUALITY = 30


@dataclass(frozen=True)
class Comparison:
    columns: dict[str, ColumnScore]
    drift_share: float
    snapshot: Any  # Evidently's snapshot: the HTML report and the workspace run


@dataclass(frozen=True)
class FeedbackQuality:
    rows: int
    accuracy: float | None  # top suggestion vs the seller's choice
    reference_accuracy: float | None  # the champion's held-out accuracy

    def dropped(self, max_drop: float) -> bool:
        """Enough feedback says the champion does worse than on its held-out rows by over ``max_drop``."""
        return (
            self.accuracy is not None
            and self.reference_accuracy is not None
            and self.rows >= MIN_FEEDBACK_FOR_QUALITY
            and self.reference_accuracy - self.accuracy > max_drop
        )


def _columns(reference: pd.DataFrame, current: pd.DataFrame) -> list[str]:
    """Columns both sides carry with content: description only where sellers write one."""
    chosen = []
    for column in METHODS:
        if column not in reference or column not in current:
            continue
        ref, cur = reference[column], current[column]
        if column in TEXT_COLUMNS:
            if (ref.fillna("").astype(str).str.strip() == "").mean() > 0.5:
                continue
        elif column in ANSWER_COLUMNS:
            if not ref.notna().any():
                continue
        elif ref.notna().mean() < 0.5 or cur.notna().mean() < 0.5:
            continue
        chosen.append(column)
    return chosen


def _frame(data: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    out = data[columns].copy()
    for column in columns:
        if column in TEXT_COLUMNS:  # both sides masked alike, or placeholders alone would look like drift
            out[column] = out[column].fillna("").astype(str).map(mask)
        elif column == "predicted_category":  # missing stays missing: Evidently leaves it out
            out[column] = out[column].astype(object).where(out[column].isna(), out[column].astype(str))
        else:
            out[column] = pd.to_numeric(out[column], errors="coerce").astype(float)
    return out.reset_index(drop=True)


def compare(
    reference: pd.DataFrame, current: pd.DataFrame, thresholds: dict[str, float], drift_share: float
) -> Comparison:
    """Run Evidently with the pinned methods and the given thresholds on every shared column."""
    columns = _columns(reference, current)
    definition = DataDefinition(
        text_columns=[c for c in columns if c in TEXT_COLUMNS],
        numerical_columns=[c for c in columns if c in NUMERIC_COLUMNS],
        categorical_columns=[c for c in columns if c == "predicted_category"],
    )
    report = Report(
        [
            *(ValueDrift(column=c, method=METHODS[c], threshold=thresholds[c]) for c in columns),
            DriftedColumnsCount(
                columns=columns,
                drift_share=drift_share,
                per_column_method={c: METHODS[c] for c in columns},
                per_column_threshold={c: thresholds[c] for c in columns},
            ),
        ]
    )
    with warnings.catch_warnings():
        # for a drifted text column Evidently fits a small domain classifier to show its typical words
        # and listings; that plot helper's SGD stopping at its iteration cap is no news to a user
        warnings.filterwarnings("ignore", category=ConvergenceWarning, module=r"sklearn\.linear_model")
        snapshot = report.run(
            Dataset.from_pandas(_frame(current, columns), data_definition=definition),
            Dataset.from_pandas(_frame(reference, columns), data_definition=definition),
        )
    metrics = snapshot.dict()["metrics"]
    values = {
        m["config"]["column"]: float(m["value"])
        for m in metrics
        if m["config"]["type"].endswith(":ValueDrift")
    }
    (share,) = (m["value"]["share"] for m in metrics if m["config"]["type"].endswith(":DriftedColumnsCount"))
    scores = {
        c: ColumnScore(METHODS[c], thresholds[c], round(values[c], 4), values[c] >= thresholds[c])
        for c in columns
    }
    return Comparison(scores, round(float(share), 4), snapshot)


def feedback_pairs(answered: pd.DataFrame) -> pd.DataFrame:
    """The seller's choice (target) beside the top suggestion (prediction)."""
    return pd.DataFrame(
        {
            "target": answered["chosen_category"].astype(str),
            "prediction": answered["top_category"].astype(str),
        }
    )


def quality_snapshot(pairs: pd.DataFrame) -> Any:
    """Evidently's accuracy of the top suggestion against sellers' choices, for the workspace."""
    labels = sorted(set(pairs["target"]) | set(pairs["prediction"]))
    # Evidently takes two labels for a binary task, whose positive label defaults to 1: name one
    task = (
        MulticlassClassification(target="target", prediction_labels="prediction")
        if len(labels) > 2
        else BinaryClassification(target="target", prediction_labels="prediction", pos_label=labels[0])
    )
    definition = DataDefinition(categorical_columns=["target", "prediction"], classification=[task])
    return Report([Accuracy()]).run(Dataset.from_pandas(pairs, data_definition=definition), None)


def decide(
    settings: Settings, comparison: Comparison, quality: FeedbackQuality
) -> tuple[Decision, list[str]]:
    """The policy in settings applied to a comparison and the feedback; every reason spelled out."""
    drifted = [c for c, score in comparison.columns.items() if score.drifted]
    reasons = [
        f"{len(drifted)} of {len(comparison.columns)} columns drifted ({', '.join(drifted) or 'none'}); "
        f"share {comparison.drift_share:.2f} vs threshold {settings.drift_share:.2f}"
    ]
    alone = [c for c in drifted if c in settings.drift_alone_columns]
    if alone:
        reasons.append(f"{', '.join(alone)} drifted, which alone counts as drift")
    dropped = quality.dropped(settings.drift_max_accuracy_drop)
    if dropped:
        reasons.append(
            f"accuracy on feedback {quality.accuracy:.3f} is more than "
            f"{settings.drift_max_accuracy_drop:.2f} below the champion's {quality.reference_accuracy:.3f}"
        )
    is_drift = comparison.drift_share >= settings.drift_share or bool(alone) or dropped
    return (Decision.drift if is_drift else Decision.no_drift), reasons
