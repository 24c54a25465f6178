"""Reading the log back: the traffic of a time window and the feedback-labelled listings in it.

The drift job compares a window with the champion's reference; retraining learns from the
feedback-labelled listings of a window. Both read through here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime

import pandas as pd

from pigeonhole.core.settings import Settings
from pigeonhole.prediction_log.records import WINDOW_COLUMNS
from pigeonhole.prediction_log.sinks import LogSink, open_sink

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Window:
    """A sample of the answered predictions (shadow scores left out) and the feedback logged in
    [since, until)."""

    since: datetime
    until: datetime
    predictions: pd.DataFrame  # WINDOW_COLUMNS, at most the rows asked for, drawn in the store
    served: int  # answered predictions in the window
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
    """The window, its predictions sampled inside the store to ``drift_max_rows``: the job's memory
    stays that of a small window however much traffic the log holds."""
    sink = open_sink(settings)
    try:
        sample = sink.sample_predictions(since, until, WINDOW_COLUMNS, settings.drift_max_rows, settings.seed)
        feedback = sink.read_feedback(since, until)
    finally:
        sink.close()
    return Window(since, until, sample.frame, sample.total, feedback)


def apply_retention(settings: Settings, today: date) -> list[str]:
    """Delete predictions older than ``log_retention_days`` (and, in PostgreSQL, make the coming days'
    partitions); what was done."""
    sink = open_sink(settings)
    try:
        return sink.maintain(today, settings.log_retention_days)
    finally:
        sink.close()


def count_predictions(sink: LogSink, since: datetime, until: datetime) -> int:
    """How many predictions the log holds for [since, until): to wait for a background writer."""
    return len(sink.read_predictions(since, until, ["request_id", "ts"]))
