"""Reading the log back: the traffic of a time window, and each feedback beside the answer it labels.

The drift job compares a window with the champion's reference; retraining learns from the
feedback-labelled listings of a window. Both read through here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from pigeonhole.core.settings import Settings
from pigeonhole.prediction_log.records import WINDOW_COLUMNS, Variant
from pigeonhole.prediction_log.sinks import LogSink, open_sink


@dataclass(frozen=True)
class Window:
    """The answered predictions (shadow scores left out) and the feedback logged in [since, until)."""

    since: datetime
    until: datetime
    predictions: pd.DataFrame  # WINDOW_COLUMNS
    feedback: pd.DataFrame  # every field of FeedbackRecord

    def answered_feedback(self) -> pd.DataFrame:
        """Each feedback record beside the prediction it answers (joined on request id): one label
        per listing, the seller's last word winning (per listing_id where the caller sent one, else
        per request)."""
        latest = self.feedback.dropna(subset=["request_id"]).sort_values("ts", kind="stable")
        listing = latest["listing_id"].where(latest["listing_id"].notna(), "request:" + latest["request_id"])
        latest = latest[~listing.duplicated(keep="last")]
        return latest.merge(self.predictions, on="request_id", how="inner", suffixes=("", "_prediction"))


def read_window(settings: Settings, since: datetime, until: datetime) -> Window:
    sink = open_sink(settings)
    try:
        predictions = sink.read_predictions(since, until, WINDOW_COLUMNS)
        feedback = sink.read_feedback(since, until)
    finally:
        sink.close()
    served = predictions[predictions["variant"] != Variant.shadow.value].reset_index(drop=True)
    return Window(since, until, served, feedback)


def count_predictions(sink: LogSink, since: datetime, until: datetime) -> int:
    """How many predictions the log holds for [since, until): to wait for a background writer."""
    return len(sink.read_predictions(since, until, ["request_id", "ts"]))
