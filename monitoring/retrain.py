"""`pigeonhole retrain`: a challenger trained on the reference data plus recent feedback, then the gate.

Sellers' final choices are the labels drift leaves behind: each feedback record joined with the
logged prediction it answers (by request id) is a labelled listing from today's market, in the
masked form the log keeps. The gate then decides, on the challenger's own held-out rows (which
include such listings), whether the new model is measurably better than the champion.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from pigeonhole.core.errors import DataValidationError
from pigeonhole.core.settings import Settings
from pigeonhole.model import data
from pigeonhole.model.promote import GateDecision, run_gate
from pigeonhole.model.registry import (
    CHAMPION,
    connect,
    is_artifact_uri,
    local_dataset,
    run_param,
    version_by_alias,
)
from pigeonhole.model.train import train_and_register
from pigeonhole.prediction_log.window import read_window

log = logging.getLogger(__name__)


@dataclass
class RetrainOutcome:
    version: str
    base_rows: int
    feedback_rows: int
    decision: GateDecision

    def summary(self) -> str:
        verdict = "promoted to champion" if self.decision.promoted else self.decision.label
        return (
            f"retrained v{self.version} on {self.base_rows:,} reference + {self.feedback_rows:,} feedback "
            f"listings: {verdict} ({'; '.join(self.decision.reasons)})"
        )


def feedback_listings(settings: Settings, since: datetime, until: datetime) -> pd.DataFrame:
    """Feedback joined with the predictions it answers, as listings in the data contract."""
    joined = read_window(settings, since, until).answered_feedback()
    return pd.DataFrame(
        {
            "listing_id": "feedback-" + joined["request_id"].astype(str),
            "title": joined["title"],
            "description": joined["description"].fillna(""),
            "price": pd.to_numeric(joined["price"], errors="coerce"),
            "category_path": joined["chosen_category"],
        },
        columns=data.CONTRACT_COLUMNS,
    )


def reference_source(settings: Settings, given: str | None) -> str:
    """The dataset to retrain on: given, else PIGEONHOLE_RETRAIN_DATA, else the champion's own."""
    if given or settings.retrain_data:
        return str(given or settings.retrain_data)
    client = connect(settings)
    champion = version_by_alias(client, settings, CHAMPION)
    source = run_param(client, champion, "source") if champion else None
    if not source or not (is_artifact_uri(source) or Path(source).exists()):
        raise DataValidationError(
            f"no dataset to train on: the champion's ({source or 'none'}) is not readable here; "
            "pass --data or set PIGEONHOLE_RETRAIN_DATA"
        )
    return source


def retrain(settings: Settings, data_source: str | None = None) -> RetrainOutcome:
    base_source = reference_source(settings, data_source)
    base = data.load_listings(local_dataset(settings, base_source))
    until = datetime.now(UTC)
    recent = feedback_listings(settings, until - timedelta(days=settings.retrain_feedback_days), until)
    combined = data.validate(pd.concat([base, recent], ignore_index=True), source=f"{base_source} + feedback")
    log.info("retraining on %d reference and %d feedback-labelled listings", len(base), len(recent))
    trained = train_and_register(settings, combined, source=base_source)
    decision = run_gate(connect(settings), settings, promote=settings.gate_promotes)
    return RetrainOutcome(trained.version, len(base), len(recent), decision)
