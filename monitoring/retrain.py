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

from model import data
from model.promote import GateDecision, run_gate
from model.registry import CHAMPION, connect, require_alias
from model.train import train_and_register
from monitoring.drift import answered_feedback, current_window
from pigeonhole.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class RetrainOutcome:
    version: str
    base_rows: int
    feedback_rows: int
    decision: GateDecision

    def summary(self) -> str:
        verdict = "promoted to champion" if self.decision.promoted else "not promoted"
        return (
            f"retrained v{self.version} on {self.base_rows:,} reference + {self.feedback_rows:,} feedback "
            f"listings: {verdict} ({'; '.join(self.decision.reasons)})"
        )


def feedback_listings(settings: Settings, since: datetime, until: datetime) -> pd.DataFrame:
    """Feedback joined with the predictions it answers, as listings in the data contract."""
    joined = answered_feedback(*current_window(settings, since, until)).drop_duplicates(
        "request_id", keep="last"
    )
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


def reference_data_path(settings: Settings, data_path: Path | None) -> Path:
    """The dataset to retrain on: given, else PIGEONHOLE_RETRAIN_DATA, else the champion's own."""
    if data_path is not None:
        return data_path
    if settings.retrain_data:
        return Path(settings.retrain_data)
    client = connect(settings)
    champion = require_alias(client, settings, CHAMPION)
    source = client.get_run(champion.run_id).data.params.get("source", "") if champion.run_id else ""
    if not source or not Path(source).exists():
        raise data.DataValidationError(
            f"the champion was trained on {source or 'an unknown dataset'}, "
            "which is not readable here; pass --data"
        )
    return Path(source)


def retrain(settings: Settings, data_path: Path | None = None, feedback_days: float = 30.0) -> RetrainOutcome:
    base_path = reference_data_path(settings, data_path)
    base = data.load_listings(base_path)
    until = datetime.now(UTC)
    recent = feedback_listings(settings, until - timedelta(days=feedback_days), until)
    combined = data.validate(pd.concat([base, recent], ignore_index=True), source=f"{base_path} + feedback")
    log.info("retraining on %d reference and %d feedback-labelled listings", len(base), len(recent))
    trained = train_and_register(settings, combined, source=str(base_path))
    decision = run_gate(connect(settings), settings)
    return RetrainOutcome(trained.version, len(base), len(recent), decision)
