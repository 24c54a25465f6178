"""The drift job: the window's logged traffic against the champion's reference, decided and stored.

After a promotion, the new champion's first stable window (enough predictions it served itself, and
no drop in accuracy on feedback) becomes its reference: the champion was retrained for the market it
now serves, and comparing that market with mostly-old training rows would call it drift for ever.
That window is still judged against the training reference, but it fires no retraining (the one that
made this champion answered that drift); later windows are compared with it. The refreshed reference
is kept beside the reports (the job may only read the registry), and every report names its reference.

Large windows are sampled without replacement (seeded) to ``drift_max_rows`` inside the store, so the
job's memory does not grow with traffic; a window is never upsampled, because repeated titles make
the text classifier fire on healthy traffic. A window with
fewer than ``drift_min_rows`` rows is "insufficient data", not drift. The comparison and the policy
live in :mod:`~pigeonhole.monitoring.compare`, storage in :mod:`~pigeonhole.monitoring.reports`.
"""

from __future__ import annotations

import logging
from datetime import datetime

import pandas as pd

from pigeonhole.core.settings import Settings
from pigeonhole.monitoring.calibration import Calibration
from pigeonhole.monitoring.compare import (
    METHODS,
    FeedbackQuality,
    compare,
    decide,
    feedback_pairs,
    quality_snapshot,
)
from pigeonhole.monitoring.reference import Reference, champion_reference
from pigeonhole.monitoring.reports import store_live_reference, store_run
from pigeonhole.monitoring.result import Decision, DriftResult, RunSource
from pigeonhole.monitoring.trigger import fire
from pigeonhole.prediction_log.window import labelled_listings, read_window

log = logging.getLogger(__name__)


def _sample(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """At most ``rows`` rows, without replacement; never more rows than there are."""
    return frame.sample(n=rows, random_state=seed) if len(frame) > rows else frame


def window_thresholds(
    settings: Settings, calibration: Calibration | None, current_rows: int, reference: pd.DataFrame
) -> tuple[dict[str, float], str]:
    """Each column's threshold for this window against ``reference``, and where they come from (shown
    in the report)."""
    if calibration is None:
        return settings.drift_thresholds, "fixed (PIGEONHOLE_DRIFT_THRESHOLDS): the model has no calibration"
    present = {str(column): int(count) for column, count in reference.notna().sum().items()}
    thresholds = calibration.thresholds(settings.drift_thresholds, current_rows, present)
    return thresholds, (
        f"calibrated for this model to {calibration.false_alarm_rate:.0%} false alarms per window "
        f"({calibration.rounds} rounds on its reference; text: that many standard deviations beyond chance)"
    )


def refresh_reference(
    settings: Settings,
    reference: Reference,
    predictions: pd.DataFrame,
    quality: FeedbackQuality,
    window: tuple[datetime, datetime],
) -> str | None:
    """Keep the window as the champion's reference if it is the first stable one it served since
    replacing another champion; what the reference now is, or None when it stays as it was."""
    if reference.live or reference.replaced is None:
        return None
    served = predictions[predictions["model_version"].astype(str) == reference.model_version]
    if len(served) < settings.drift_min_rows or quality.dropped(settings.drift_max_accuracy_drop):
        return None
    frame = _sample(served, settings.reference_rows, settings.seed)[list(METHODS)].reset_index(drop=True)
    since, until = (moment.isoformat() for moment in window)
    description = (
        f"live traffic v{reference.model_version} served from {since} to {until} ({len(frame):,} rows), "
        f"the first stable window after its promotion over v{reference.replaced}"
    )
    source = {"description": description, "since": since, "until": until, "rows": len(frame)}
    source |= {"feedback_rows": quality.rows, "feedback_accuracy": quality.accuracy}
    store_live_reference(settings, reference.model_name, reference.model_version, frame, source)
    return description


def run_drift(
    settings: Settings, since: datetime, until: datetime, source: RunSource = RunSource.cli
) -> DriftResult:
    """The whole job: read, compare, decide, fire the trigger on drift, then write the HTML report
    (which says what the trigger did), the JSON summary and the index."""
    reference = champion_reference(settings)
    window = read_window(settings, since, until)
    predictions = window.predictions.rename(columns={"top_category": "predicted_category"})
    pairs = feedback_pairs(labelled_listings(window.feedback))
    quality = FeedbackQuality(
        rows=len(pairs),
        accuracy=float((pairs["target"] == pairs["prediction"]).mean()) if len(pairs) else None,
        reference_accuracy=reference.accuracy,
    )
    result = DriftResult(
        decision=Decision.insufficient_data,
        reasons=[],
        since=since.isoformat(),
        until=until.isoformat(),
        model_name=reference.model_name,
        model_version=reference.model_version,
        current_rows=window.served,
        source=source,
        reference_rows=len(reference.frame),
        reference_source=reference.source,
        feedback_rows=quality.rows,
        feedback_accuracy=quality.accuracy,
        reference_accuracy=quality.reference_accuracy,
    )
    snapshot = None
    if window.served < settings.drift_min_rows:
        result.reasons = [
            f"{window.served} predictions in the window; at least {settings.drift_min_rows} "
            "are needed to judge drift"
        ]
    else:
        baseline = _sample(reference.frame, settings.drift_max_rows, settings.seed)
        thresholds, result.thresholds = window_thresholds(
            settings, reference.calibration, len(predictions), baseline
        )
        comparison = compare(baseline, predictions, thresholds, settings.drift_share)
        result.columns, result.drift_share, snapshot = (
            comparison.columns,
            comparison.drift_share,
            comparison.snapshot,
        )
        result.decision, result.reasons = decide(settings, comparison, quality)
        refreshed = refresh_reference(settings, reference, predictions, quality, (since, until))
        if refreshed is not None:
            result.reference_refreshed = True
            result.reasons.append(f"reference refreshed for later windows: {refreshed}")
    log.info("drift job: %s (%s)", result.decision.value, "; ".join(result.reasons))
    result.trigger = fire(settings, result)
    # the feedback's accuracy joins the drift snapshot; without one (too few rows) there is nothing to join
    joined = quality_snapshot(pairs) if snapshot is not None and len(pairs) else None
    store_run(settings, result, snapshot, joined)
    return result
