"""`pigeonhole retrain`: a challenger trained on the reference data plus recent feedback, then the gate.

Sellers' final choices are the labels drift leaves behind: each feedback record carries the listing
it labels, so it is a labelled listing from today's market, in the masked form the log keeps.
Feedback comes from the network, so it is bounded before it is trained on: one label per listing,
and caps (settings, newest rows kept) on what one caller, one category and all feedback together may
add, relative to the reference data, so that a flood cannot outweigh the curated catalogue. The gate
then decides, on the lineage's frozen benchmark and on the challenger's own held-out rows (which
include such listings), whether to promote.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from pigeonhole.core.errors import DataValidationError
from pigeonhole.core.settings import Settings
from pigeonhole.model import data
from pigeonhole.model.gate import GateDecision
from pigeonhole.model.promote import run_gate
from pigeonhole.model.registry import (
    CHAMPION,
    connect,
    is_artifact_uri,
    local_dataset,
    run_param,
    version_by_alias,
)
from pigeonhole.model.train import train_and_register
from pigeonhole.prediction_log.window import read_labelled

log = logging.getLogger(__name__)


@dataclass
class RetrainOutcome:
    version: str
    base_rows: int
    feedback_rows: int  # used for training, after the caps
    decision: GateDecision
    capped: dict[str, int] = field(default_factory=dict)  # cap -> feedback rows it left out

    def summary(self) -> str:
        verdict = "promoted to champion" if self.decision.promoted else self.decision.label
        left_out = ", ".join(f"{rows:,} by the {cap} cap" for cap, rows in self.capped.items() if rows)
        return (
            f"retrained v{self.version} on {self.base_rows:,} reference + {self.feedback_rows:,} feedback "
            f"listings{f' ({left_out} left out)' if left_out else ''}: {verdict} "
            f"({'; '.join(self.decision.reasons)})"
        )


FEEDBACK_EXTRA = ["caller", "ts"]  # what the caps need besides the contract columns


def feedback_listings(settings: Settings, since: datetime, until: datetime) -> pd.DataFrame:
    """Feedback-labelled listings in the data contract (plus who sent each and when)."""
    labelled = read_labelled(settings, since, until)
    return pd.DataFrame(
        {
            "listing_id": data.FEEDBACK_ID_PREFIX + labelled["request_id"].astype(str),
            "title": labelled["title"],
            "description": labelled["description"].fillna(""),
            "price": pd.to_numeric(labelled["price"], errors="coerce"),
            "category_path": labelled["chosen_category"],
            "caller": labelled["caller"].fillna("unknown"),
            "ts": labelled["ts"],
        },
        columns=data.CONTRACT_COLUMNS + FEEDBACK_EXTRA,
    )


def cap_feedback(
    settings: Settings, feedback: pd.DataFrame, base: pd.DataFrame
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The feedback retraining may use, newest first: per caller, per category (a share of that
    category's reference rows; none for a category the reference lacks) and in total (a share of the
    reference rows). Returns the kept listings and how many rows each cap left out."""
    kept = feedback.sort_values("ts", ascending=False, kind="stable")
    capped = {}
    per_caller = int(settings.retrain_max_caller_feedback_share * len(base))
    within = kept.groupby("caller").cumcount() < per_caller
    capped["per-caller"], kept = int((~within).sum()), kept[within]
    labels = data.label_from_path(kept["category_path"], settings.depth)
    reference = data.label_from_path(base["category_path"], settings.depth).value_counts()
    allowance = (labels.map(reference).fillna(0) * settings.retrain_max_class_feedback_share).astype(int)
    within = kept.groupby(labels).cumcount() < allowance
    capped["per-category"], kept = int((~within).sum()), kept[within]
    total = int(settings.retrain_max_feedback_share * len(base))
    capped["total"], kept = max(0, len(kept) - total), kept.head(total)
    return kept[data.CONTRACT_COLUMNS].reset_index(drop=True), capped


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


def retrain(settings: Settings, data_source: str | None = None, reason: str = "on request") -> RetrainOutcome:
    """Train on the reference data plus capped feedback, then run the gate; the MLflow run is named
    ``retrain <reason>``."""
    base_source = reference_source(settings, data_source)
    base = data.load_listings(local_dataset(settings, base_source))
    until = datetime.now(UTC)
    answered = feedback_listings(settings, until - timedelta(days=settings.retrain_feedback_days), until)
    recent, capped = cap_feedback(settings, answered, base)
    combined = data.validate(pd.concat([base, recent], ignore_index=True), source=f"{base_source} + feedback")
    log.info(
        "retraining on %d reference and %d of %d feedback-labelled listings (left out by caps: %s)",
        len(base),
        len(recent),
        len(answered),
        capped,
    )
    name = f"retrain {reason} (+{len(recent):,} feedback rows)"
    trained = train_and_register(settings, combined, source=base_source, run_name=name)
    decision = run_gate(connect(settings), settings, promote=settings.gate_promotes)
    return RetrainOutcome(trained.version, len(base), len(recent), decision, capped)
