"""Calibrated drift thresholds: healthy windows of any size stay under them; a moved market does not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pigeonhole.core.settings import Settings
from pigeonhole.model import data
from pigeonhole.model.synthetic import generate
from pigeonhole.model.train import fit
from pigeonhole.monitoring.calibration import _statistic, calibrate

COLUMNS = ["predicted_category", "top_score", "price"]


@pytest.fixture(scope="module")
def traffic() -> tuple[pd.DataFrame, pd.DataFrame]:
    """A model's answers on a large pool of healthy listings, and on a drifted market."""
    settings = Settings()
    labelled, _ = data.assign_labels(
        data.validate(generate(3000, seed=1)), 2, 10, settings.rare_classes, settings.rare_bucket
    )
    model = fit(labelled).predictor

    def answered(rows: pd.DataFrame) -> pd.DataFrame:
        top = model.suggest(rows, k=1)
        frame = rows.reset_index(drop=True)[["price"]].astype(float)
        return frame.assign(predicted_category=top["category"].to_numpy(), top_score=top["score"].to_numpy())

    healthy = answered(data.validate(generate(10000, seed=2)))
    drifted = answered(data.validate(generate(1500, seed=3, drift=1.0)))
    return healthy, drifted


def _exceeded(reference: pd.DataFrame, window: pd.DataFrame, thresholds: dict[str, float]) -> set[str]:
    return {c for c in COLUMNS if _statistic(c, reference[c], window[c]) >= thresholds[c]}


@pytest.mark.parametrize("window_rows", [300, 1500])
def test_healthy_windows_rarely_cross_the_calibrated_thresholds(
    traffic: tuple[pd.DataFrame, pd.DataFrame], window_rows: int
) -> None:
    healthy, drifted = traffic
    settings = Settings()
    reference, pool = healthy.iloc[:3000], healthy.iloc[3000:]
    calibration = calibrate(reference, settings)
    assert calibration is not None and set(calibration.scales) == set(COLUMNS)
    thresholds = calibration.thresholds(
        settings.drift_thresholds, window_rows, dict.fromkeys(COLUMNS, len(reference))
    )
    rng = np.random.default_rng(0)
    windows = [pool.iloc[rng.choice(len(pool), window_rows, replace=False)] for _ in range(100)]
    alarms = sum(bool(_exceeded(reference, w, thresholds)) for w in windows)
    assert alarms <= 3, f"{alarms}/100 healthy windows crossed a threshold (target 1 %)"
    moved = drifted.sample(window_rows, random_state=0)
    assert "predicted_category" in _exceeded(reference, moved, thresholds)


def test_too_small_a_reference_or_zero_rounds_keeps_the_fixed_thresholds(
    traffic: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    healthy, _ = traffic
    assert calibrate(healthy.head(60), Settings()) is None
    assert calibrate(healthy, Settings(drift_calibration_rounds=0)) is None
