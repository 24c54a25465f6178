"""Drift detection measured: false alarms, the detection curve, accuracy recovered (`make bench-drift`).

Scenarios (each a "before" period the champion is trained on, and an "after" period of traffic):
myntra listings up to 2012 vs 2015 and later; craigslist US cities vs Asian and European cities; the
synthetic generator at drift 0 vs 1. For each, a random quarter of the before period is set aside
first: no part of the champion or its reference ever sees it. The champion is trained on the rest
exactly as `pigeonhole train` does, which logs the reference: a random sample of the training rows,
the first 15 % of the training set's size answered by a stand-in model fitted without them. The
drift decision (monitoring/drift.py, default policy) is taken on 1,500-row windows: calm windows are
drawn from the set-aside rows (false alarms), and detection windows mix 5, 10, 20, 30 and 100 % of
after-period rows into set-aside rows.
Then a challenger trained on the before period plus 30 % of the after period (as if sellers'
feedback had labelled it) is scored on the rest of the after period, against the champion.

The drift job's cost on large logged windows is `make bench-log` (benchmarks/log.py).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from pigeonhole.core.settings import Settings
from pigeonhole.model import data
from pigeonhole.model.evaluate import evaluate
from pigeonhole.model.predict import Predictor
from pigeonhole.model.synthetic import generate
from pigeonhole.model.train import fit, reference_samples
from pigeonhole.monitoring.calibration import Calibration, calibrate
from pigeonhole.monitoring.compare import Comparison, FeedbackQuality, compare, decide
from pigeonhole.monitoring.drift import window_thresholds
from pigeonhole.monitoring.reference import reference_frame
from pigeonhole.monitoring.result import Decision

WINDOW = 1500
console = Console(width=180)
Scenario = tuple[str, Callable[[Path], tuple[pd.DataFrame, pd.DataFrame]]]


def _myntra(data_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = data.load_listings(data_dir / "myntra.csv.gz")
    return frame[frame["year"] <= 2012], frame[frame["year"] >= 2015]


def _craigslist(data_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = data.load_listings(data_dir / "craigslist.csv.gz")
    us = frame["city"].isin(["newyork", "chicago", "seattle"])
    return frame[us], frame[~us]


def _synthetic(_: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    return data.validate(generate(12000, seed=1)), data.validate(generate(6000, seed=2, drift=1.0))


SCENARIOS: list[Scenario] = [
    ("myntra ≤2012 → 2015+", _myntra),
    ("craigslist US → Asia/Europe", _craigslist),
    ("synthetic drift 0 → 1", _synthetic),
]


def _judge(
    settings: Settings, reference: pd.DataFrame, window: pd.DataFrame, calibration: Calibration | None = None
) -> tuple[Decision, Comparison]:
    """The drift job's comparison and decision on one window (no feedback), with its thresholds."""
    thresholds, _ = window_thresholds(settings, calibration, len(window), reference)
    comparison = compare(reference, window, thresholds, settings.drift_share)
    decision, _ = decide(
        settings, comparison, FeedbackQuality(rows=0, accuracy=None, reference_accuracy=None)
    )
    return decision, comparison


def _traffic(predictor: Predictor, rows: pd.DataFrame) -> pd.DataFrame:
    """Rows as the drift job sees a window: inputs plus the champion's top answer."""
    answers = predictor.suggest(rows, k=1)
    return rows.reset_index(drop=True).assign(
        predicted_category=answers["category"].to_numpy(), top_score=answers["score"].to_numpy()
    )


MIXES = (0.05, 0.10, 0.20, 0.30, 1.0)  # shares of after-period rows in a detection window


def _mixed(calm: pd.DataFrame, drifted: pd.DataFrame, share: float, seed: int) -> pd.DataFrame:
    """A window of ``WINDOW`` rows, ``share`` of them after-period traffic, the rest calm."""
    moved = round(WINDOW * share)
    calm_rows = WINDOW - moved
    parts = [
        calm.sample(calm_rows, random_state=seed, replace=calm_rows > len(calm)),
        drifted.sample(moved, random_state=seed, replace=moved > len(drifted)),
    ]
    return pd.concat(parts, ignore_index=True)


def _detection(
    settings: Settings,
    reference: pd.DataFrame,
    calibration: Calibration | None,
    calm_pool: pd.DataFrame,
    drift_pool: pd.DataFrame,
    windows: int,
) -> list[str]:
    """False alarms on calm windows, then detections at each mix, as "k/windows"."""
    calm = [calm_pool.sample(min(WINDOW, len(calm_pool)), random_state=i) for i in range(windows)]
    counts = [sum(_judge(settings, reference, w, calibration)[0] is Decision.drift for w in calm)]
    for share in MIXES:
        mixed = [_mixed(calm_pool, drift_pool, share, i) for i in range(windows)]
        counts.append(sum(_judge(settings, reference, w, calibration)[0] is Decision.drift for w in mixed))
    return [f"{count}/{windows}" for count in counts]


def run_scenario(name: str, before: pd.DataFrame, after: pd.DataFrame, windows: int) -> list[list[str]]:
    """Two rows, fixed and calibrated thresholds, on the same champion, reference and windows."""
    settings = Settings()
    labelled, _ = data.assign_labels(before, 2, 10, settings.rare_classes, settings.rare_bucket)
    set_aside = labelled.sample(frac=0.25, random_state=7)  # never trained on, never in the reference
    seen = labelled.drop(set_aside.index)
    train, _ = data.split(seen, settings.test_size, settings.seed, settings.split)
    fitted = fit(train)
    champion = fitted.predictor
    reference = reference_frame(reference_samples(fitted, train, settings.reference_rows, settings.seed))
    calm_pool = _traffic(champion, set_aside)
    drift_pool = _traffic(champion, after)
    after_labelled, _ = data.assign_labels(after, 2, 1, settings.rare_classes, settings.rare_bucket)
    feedback = after_labelled.sample(frac=0.3, random_state=0)
    rest = after_labelled.drop(feedback.index)
    challenger = fit(pd.concat([train, feedback], ignore_index=True)).predictor
    accuracy = [
        f"{evaluate(champion, set_aside, k=settings.top_k).metrics['accuracy']:.3f}",
        f"{evaluate(champion, rest, k=settings.top_k).metrics['accuracy']:.3f}",
        f"{evaluate(challenger, rest, k=settings.top_k).metrics['accuracy']:.3f}",
    ]
    answered = int(reference["top_score"].notna().sum())
    sizes = f"{len(train):,} / {len(reference):,} ({answered:,}) / {len(set_aside):,}"
    rows = []
    for label, calibration in (("fixed", None), ("calibrated", calibrate(reference, settings))):
        started = time.perf_counter()
        counts = _detection(settings, reference, calibration, calm_pool, drift_pool, windows)
        seconds = (time.perf_counter() - started) / ((1 + len(MIXES)) * windows)
        rows.append([name, label, sizes, *counts, f"{seconds:.2f}", *accuracy])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--windows", type=int, default=20, help="Windows per scenario and mix.")
    parser.add_argument("--scenario", help="Only the scenarios whose name starts with this.")
    args = parser.parse_args()
    table = Table(title=f"Drift detection on {WINDOW}-row windows (default policy)")
    for column in (
        "scenario",
        "thresholds",
        "train / reference (answered) / calm rows",
        "false alarms (calm, unseen)",
        *(f"detected, {share:.0%} drifted" for share in MIXES),
        "s / report",
        "champion acc, same period",
        "champion acc, after",
        "retrained acc, after",
    ):
        table.add_column(column)
    for name, load in SCENARIOS:
        if args.scenario and not name.startswith(args.scenario):
            continue
        if (
            name.startswith(("myntra", "craigslist"))
            and not (args.data_dir / f"{name.split()[0]}.csv.gz").exists()
        ):
            continue
        console.log(f"scenario: {name}")
        for row in run_scenario(name, *load(args.data_dir), windows=args.windows):
            table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
