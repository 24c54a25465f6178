"""Reading the log back: the traffic of a time window and the feedback-labelled listings in it.

The drift job compares a window with the champion's reference; retraining learns from the
feedback-labelled listings of a window. Both read through here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from pigeonhole.core.settings import Settings
from pigeonhole.prediction_log.records import WINDOW_COLUMNS, Variant
from pigeonhole.prediction_log.sinks import LogSink, open_sink

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Window:
    """The answered predictions (shadow scores left out) and the feedback logged in [since, until)."""

    since: datetime
    until: datetime
    predictions: pd.DataFrame  # WINDOW_COLUMNS
    feedback: pd.DataFrame  # every field of FeedbackRecord


def labelled_listings(feedback: pd.DataFrame) -> pd.DataFrame:
    """Feedback records as listings with the answer each got and the seller's choice: one label per
    listing, the seller's last word winning (per listing_id where the caller sent one, else per
    request). Records carry their own text, so a lost prediction loses no label."""
    complete = feedback.dropna(subset=["request_id", "title", "top_category"])
    if len(complete) < len(feedback):
        log.warning(
            "left out %d feedback record(s) without the listing's text (stored before feedback carried it)",
            len(feedback) - len(complete),
        )
    latest = complete.sort_values("ts", kind="stable")
    listing = latest["listing_id"].where(latest["listing_id"].notna(), "request:" + latest["request_id"])
    return latest[~listing.duplicated(keep="last")].reset_index(drop=True)


def read_labelled(settings: Settings, since: datetime, until: datetime) -> pd.DataFrame:
    """The window's feedback-labelled listings (retraining's labels), without reading its predictions."""
    sink = open_sink(settings)
    try:
        return labelled_listings(sink.read_feedback(since, until))
    finally:
        sink.close()


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
