"""The drift job: the window's logged traffic against the champion's reference, decided and stored.

Large windows are sampled without replacement (seeded) to ``drift_max_rows``; a window is never
upsampled, because repeated titles make the text classifier fire on healthy traffic. A window with
fewer than ``drift_min_rows`` rows is "insufficient data", not drift. The comparison and the policy
live in :mod:`~pigeonhole.monitoring.compare`, storage in :mod:`~pigeonhole.monitoring.reports`.
"""

from __future__ import annotations

import logging
from datetime import datetime

import pandas as pd

from pigeonhole.core.settings import Settings
from pigeonhole.monitoring.compare import FeedbackQuality, compare, decide, feedback_pairs, quality_snapshot
from pigeonhole.monitoring.reference import champion_reference
from pigeonhole.monitoring.reports import store_run
from pigeonhole.monitoring.result import Decision, DriftResult
from pigeonhole.prediction_log.window import labelled_listings, read_window

log = logging.getLogger(__name__)


def _sample(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """At most ``rows`` rows, without replacement; never more rows than there are."""
    return frame.sample(n=rows, random_state=seed) if len(frame) > rows else frame


def run_drift(settings: Settings, since: datetime, until: datetime) -> DriftResult:
    """The whole job: read, compare, decide, write the HTML report, the JSON summary and the index."""
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
        current_rows=len(predictions),
        reference_rows=len(reference.frame),
        feedback_rows=quality.rows,
        feedback_accuracy=quality.accuracy,
        reference_accuracy=quality.reference_accuracy,
    )
    snapshot = None
    if len(predictions) < settings.drift_min_rows:
        result.reasons = [
            f"{len(predictions)} predictions in the window; at least {settings.drift_min_rows} "
            "are needed to judge drift"
        ]
    else:
        comparison = compare(
            _sample(reference.frame, settings.drift_max_rows, settings.seed),
            _sample(predictions, settings.drift_max_rows, settings.seed),
            settings.drift_thresholds,
            settings.drift_share,
        )
        result.columns, result.drift_share, snapshot = (
            comparison.columns,
            comparison.drift_share,
            comparison.snapshot,
        )
        result.decision, result.reasons = decide(settings, comparison, quality)
    store_run(settings, result, snapshot, [quality_snapshot(pairs)] if len(pairs) else [])
    log.info("drift job: %s (%s)", result.decision.value, "; ".join(result.reasons))
    return result
