"""The champion's reference: what live traffic is compared with.

Training logs one for every version: a sample of its training rows, drawn like traffic, answered by
a stand-in model fitted without them (model/train.py). Once a champion that replaced another has
served a stable window, the drift job keeps that window as the version's reference
(monitoring/drift.py), so the market it was retrained for stops reading as drift.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from pigeonhole.core.settings import Settings
from pigeonhole.model.promote import COMPARED_WITH_TAG
from pigeonhole.model.registry import (
    CHAMPION,
    connect,
    load_drift_calibration,
    load_reference,
    require_alias,
    run_metric,
)
from pigeonhole.monitoring.calibration import Calibration
from pigeonhole.monitoring.reports import load_live_reference


@dataclass(frozen=True)
class Reference:
    """Listings beside the answers they got, as the drift job compares a window with them."""

    frame: pd.DataFrame  # title, description, price, ..., predicted_category, top_score
    model_name: str
    model_version: str
    accuracy: float | None  # the champion's held-out accuracy, for the feedback check
    calibration: Calibration | None  # None: trained without one, the fixed thresholds apply
    source: str  # where the frame came from, as the report says it
    live: bool  # refreshed from traffic this version served (else logged at training)
    replaced: str | None  # the champion this version was promoted over, if any


def reference_frame(samples: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The logged samples as one frame shaped like a window of traffic: one row per listing, the
    answers on the head rows they were given for and missing on the text-only rest (drift is judged
    column by column, each on the rows that carry it)."""
    inputs, predictions = samples["inputs"], samples["predictions"]
    answers = predictions[["predicted_category", "top_score"]].head(len(inputs)).reset_index(drop=True)
    return pd.concat([inputs.reset_index(drop=True), answers], axis=1)


def champion_reference(settings: Settings) -> Reference:
    client = connect(settings)
    champion = require_alias(client, settings, CHAMPION)
    version = str(champion.version)
    calibration = load_drift_calibration(champion)
    compared_with = champion.tags.get(COMPARED_WITH_TAG, "")
    live = load_live_reference(settings, settings.model_name, version)
    if live is not None:
        frame, source = live[0], str(live[1]["description"])
    else:
        frame, source = (
            reference_frame(load_reference(champion)),
            f"a sample of v{version}'s training rows, answered by a stand-in fitted without them",
        )
    return Reference(
        frame=frame,
        model_name=settings.model_name,
        model_version=version,
        accuracy=run_metric(client, champion, "accuracy"),
        calibration=Calibration.from_dict(calibration) if calibration else None,
        source=source,
        live=live is not None,
        replaced=compared_with if compared_with.isdigit() else None,
    )
