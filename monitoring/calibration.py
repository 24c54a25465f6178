"""Drift thresholds calibrated per model to a stated false-alarm rate, instead of one fixed number.

A fixed threshold means something different for every model and window: between two samples of the
same healthy traffic, the Jensen-Shannon distance of 30 categories on 1,000 rows is already about
0.10, while that of 16 categories on 5,000 rows is a third of it. So at training time, each
distribution column's statistic (the same Evidently stat test the drift report runs) is measured
between random disjoint halves of the model's reference rows, which are drawn like traffic. Under no
drift these statistics shrink with the two sample sizes as sqrt(1/n + 1/m); divided by that factor
they give one null distribution per column, whose mean + z standard deviations (z the normal
quantile of 1 - rate / monitored columns: a union bound over the columns) is the logged *scale*.
The drift job multiplies each scale by the factor of its actual window and reference sizes, so a
healthy window is called drift with probability at most ``drift_false_alarm_rate``.

Text columns keep their fixed threshold: a domain classifier's ROC AUC is 0.5 under no drift
whatever the model, and refitting it for every round would cost seconds per training.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd
from evidently.legacy.calculations.stattests.registry import get_stattest
from evidently.legacy.core import ColumnType

from pigeonhole.core.settings import Settings
from pigeonhole.monitoring.compare import METHODS

CALIBRATED = {
    "predicted_category": ColumnType.Categorical,
    "top_score": ColumnType.Numerical,
    "price": ColumnType.Numerical,
}
MIN_HALF = 50  # fewer reference rows than twice this: no calibration, the fixed thresholds apply


@dataclass(frozen=True)
class Calibration:
    false_alarm_rate: float  # per window, over all monitored columns
    rounds: int
    half_rows: int  # the size of each half the statistics were measured on
    scales: dict[str, float]  # column -> threshold / sqrt(1/n + 1/m)

    def thresholds(self, fixed: dict[str, float], current_rows: int, reference_rows: int) -> dict[str, float]:
        """The thresholds for a window of ``current_rows`` against ``reference_rows``."""
        factor = math.sqrt(1 / current_rows + 1 / reference_rows)
        return {**fixed, **{column: round(scale * factor, 4) for column, scale in self.scales.items()}}

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, stored: dict[str, Any]) -> Calibration:
        return cls(**stored)


def _statistic(column: str, reference: pd.Series, current: pd.Series) -> float:
    kind = CALIBRATED[column]
    test = get_stattest(reference, current, kind, METHODS[column])
    return float(test(reference, current, kind, 0.0).drift_score)


def _prepared(reference: pd.DataFrame) -> dict[str, pd.Series]:
    """The calibrated columns the reference carries with content, as the report compares them."""
    columns = {}
    for column, kind in CALIBRATED.items():
        if column not in reference or reference[column].notna().mean() < 0.5:
            continue
        values = reference[column]
        columns[column] = (
            values.fillna("").astype(str)
            if kind is ColumnType.Categorical
            else pd.to_numeric(values, errors="coerce").astype(float)
        )
    return columns


def calibrate(reference: pd.DataFrame, settings: Settings) -> Calibration | None:
    """Scales for the reference's distribution columns (None when it is too small to calibrate on)."""
    half = min(len(reference) // 2, settings.drift_max_rows)
    if half < MIN_HALF or settings.drift_calibration_rounds == 0:
        return None
    columns = _prepared(reference.reset_index(drop=True))
    rng = np.random.default_rng(settings.seed)
    factor = math.sqrt(2 / half)
    scaled: dict[str, list[float]] = {column: [] for column in columns}
    for _ in range(settings.drift_calibration_rounds):
        order = rng.permutation(len(reference))
        first, second = order[:half], order[half : 2 * half]
        for column, values in columns.items():
            a, b = values.iloc[first].dropna(), values.iloc[second].dropna()
            scaled[column].append(_statistic(column, a, b) / factor)
    z = NormalDist().inv_cdf(1 - settings.drift_false_alarm_rate / len(METHODS))
    scales = {column: round(float(np.mean(v) + z * np.std(v)), 4) for column, v in scaled.items()}
    return Calibration(settings.drift_false_alarm_rate, settings.drift_calibration_rounds, half, scales)
