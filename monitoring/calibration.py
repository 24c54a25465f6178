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

Text columns need no training-time measurement: their statistic (``token_shift``,
monitoring/stattests.py) is already a z-score against random re-splits of the very window and
reference being compared, so their threshold is that same z.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd
from evidently.legacy.calculations.stattests.registry import get_stattest
from evidently.legacy.core import ColumnType

from pigeonhole.core.settings import Settings
from pigeonhole.monitoring.compare import ANSWER_COLUMNS, METHODS, TEXT_COLUMNS

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
    half_rows: int  # the size of each half the statistics were measured on (the smallest column's)
    scales: dict[str, float]  # column -> threshold / sqrt(1/n + 1/m)

    def thresholds(
        self, fixed: dict[str, float], current_rows: int, reference_rows: Mapping[str, int]
    ) -> dict[str, float]:
        """The thresholds for a window of ``current_rows`` against a reference with ``reference_rows``
        values in each column."""
        calibrated = {
            column: round(scale * math.sqrt(1 / current_rows + 1 / reference_rows[column]), 4)
            for column, scale in self.scales.items()
        }
        text = dict.fromkeys(TEXT_COLUMNS, round(union_z(self.false_alarm_rate), 4))
        return {**fixed, **text, **calibrated}

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, stored: dict[str, Any]) -> Calibration:
        return cls(**stored)


def union_z(false_alarm_rate: float) -> float:
    """Standard deviations beyond chance at which one column may fire, so that any of them fires on
    a healthy window with probability at most ``false_alarm_rate`` (a union bound over the columns)."""
    return NormalDist().inv_cdf(1 - false_alarm_rate / len(METHODS))


def _statistic(column: str, reference: pd.Series, current: pd.Series) -> float:
    kind = CALIBRATED[column]
    test = get_stattest(reference, current, kind, METHODS[column])
    return float(test(reference, current, kind, 0.0).drift_score)


def _prepared(reference: pd.DataFrame) -> dict[str, pd.Series]:
    """The calibrated columns' values, as the report compares them: answers on the rows that have
    them, price where most listings have one."""
    columns = {}
    for column, kind in CALIBRATED.items():
        if column not in reference:
            continue
        values = reference[column].dropna().reset_index(drop=True)
        if column not in ANSWER_COLUMNS and len(values) < 0.5 * len(reference):
            continue
        columns[column] = (
            values.astype(str)
            if kind is ColumnType.Categorical
            else pd.to_numeric(values, errors="coerce").astype(float)
        )
    return columns


def calibrate(reference: pd.DataFrame, settings: Settings) -> Calibration | None:
    """Scales for the reference's distribution columns, each measured on the rows that carry it
    (None when the answered rows are too few to calibrate on)."""
    columns = _prepared(reference)
    halves = {c: min(len(v) // 2, settings.drift_max_rows) for c, v in columns.items()}
    if min(halves.values(), default=0) < MIN_HALF or settings.drift_calibration_rounds == 0:
        return None
    rng = np.random.default_rng(settings.seed)
    scaled: dict[str, list[float]] = {column: [] for column in columns}
    for _ in range(settings.drift_calibration_rounds):
        for column, values in columns.items():
            half = halves[column]
            order = rng.permutation(len(values))
            first, second = values.iloc[order[:half]], values.iloc[order[half : 2 * half]]
            scaled[column].append(_statistic(column, first, second) / math.sqrt(2 / half))
    z = union_z(settings.drift_false_alarm_rate)
    scales = {column: round(float(np.mean(v) + z * np.std(v)), 4) for column, v in scaled.items()}
    rounds = settings.drift_calibration_rounds
    return Calibration(settings.drift_false_alarm_rate, rounds, min(halves.values()), scales)
