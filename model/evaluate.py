"""Quality of a predictor on labelled listings: the numbers the gate compares and MLflow records."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")  # evaluation runs headless: CI, Kubernetes jobs
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.metrics import ConfusionMatrixDisplay, accuracy_score, classification_report, f1_score

from pigeonhole.model.predict import Predictor

CALIBRATION_BINS = 15


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, bins: int = CALIBRATION_BINS
) -> float:
    """Mean gap between top-1 confidence and accuracy over equal-width confidence bins, weighted by size.

    This is what "a score of 0.8 means right 8 times in 10" promises to sellers and to the abstain
    threshold; 0 is perfect calibration.
    """
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    gap = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            gap += mask.mean() * abs(confidence[mask].mean() - correct[mask].mean())
    return float(gap)


@dataclass
class Evaluation:
    """Headline metrics, the per-class report, and the raw pairs for plots."""

    metrics: dict[str, float]
    per_class: dict[str, dict[str, float]]
    truth: np.ndarray
    predicted: np.ndarray

    def class_f1(self) -> dict[str, tuple[float, int]]:
        """F1 and support per class, for the gate's no-class-regresses rule."""
        return {
            name: (float(row["f1-score"]), int(row["support"]))
            for name, row in self.per_class.items()
            if name not in {"accuracy", "macro avg", "weighted avg"}
        }

    def class_hits(self) -> dict[str, tuple[int, int]]:
        """Per true class: (rows predicted right, rows), for the benchmark's per-class recall rule."""
        return {
            str(name): (
                int(((self.truth == name) & (self.predicted == name)).sum()),
                int((self.truth == name).sum()),
            )
            for name in np.unique(self.truth)
        }

    @contextmanager
    def confusion_matrix(self) -> Iterator[Any]:
        """The normalised confusion matrix as a figure, closed afterwards (pyplot keeps every open one)."""
        labels = sorted(set(self.truth) | set(self.predicted))
        size = min(4 + 0.35 * len(labels), 40)
        figure, axes = plt.subplots(figsize=(size, size))
        ConfusionMatrixDisplay.from_predictions(
            self.truth,
            self.predicted,
            labels=labels,
            ax=axes,
            xticks_rotation="vertical",
            include_values=len(labels) <= 30,
            colorbar=False,
            normalize="true",
            values_format=".2f",
        )
        axes.set_title("Confusion matrix (rows: true category, normalised)")
        figure.tight_layout()
        try:
            yield figure
        finally:
            plt.close(figure)


def macro_f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    """F1 averaged over the categories the rows are filed under (a category the model cannot suggest
    scores 0, one it wrongly suggests lowers only its precision): the same yardstick for any model."""
    return float(f1_score(truth, predicted, labels=np.unique(truth), average="macro", zero_division=0))


def evaluate(predictor: Predictor, frame: pd.DataFrame, k: int) -> Evaluation:
    """Score ``predictor`` on ``frame`` (which has a ``label`` column, every category as filed)."""
    categories, scores = predictor.top_k(frame, k)
    truth = frame["label"].to_numpy()
    predicted = categories[:, 0]
    correct = predicted == truth
    metrics = {
        "accuracy": float(accuracy_score(truth, predicted)),
        f"top{k}_accuracy": float((categories == truth[:, None]).any(axis=1).mean()),
        "macro_f1": macro_f1(truth, predicted),
        "unpredictable_share": float((~np.isin(truth, predictor.classes)).mean()),
        "ece": expected_calibration_error(scores[:, 0], correct),
        "eval_rows": float(len(frame)),
    }
    report = classification_report(truth, predicted, output_dict=True, zero_division=0)
    return Evaluation(metrics=metrics, per_class=report, truth=truth, predicted=predicted)
