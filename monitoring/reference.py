"""The champion's reference: what live traffic is compared with, as the registry logged it."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from pigeonhole.core.settings import Settings
from pigeonhole.model.registry import CHAMPION, connect, load_reference, require_alias, run_metric


@dataclass(frozen=True)
class Reference:
    """Training-market inputs beside the champion's held-out predictions, with where they came from."""

    frame: pd.DataFrame  # title, description, price, ..., predicted_category, top_score
    model_name: str
    model_version: str
    accuracy: float | None  # the champion's held-out accuracy, for the feedback check


def reference_frame(samples: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The logged samples as one frame shaped like a window of traffic."""
    inputs, predictions = samples["inputs"], samples["predictions"]
    rows = min(len(inputs), len(predictions))
    # Drift is judged column by column, so the two samples need equal length, not paired rows.
    return inputs.head(rows).assign(
        predicted_category=predictions["predicted_category"].head(rows).to_numpy(),
        top_score=predictions["top_score"].head(rows).to_numpy(),
    )


def champion_reference(settings: Settings) -> Reference:
    client = connect(settings)
    champion = require_alias(client, settings, CHAMPION)
    return Reference(
        reference_frame(load_reference(champion)),
        settings.model_name,
        str(champion.version),
        run_metric(client, champion, "accuracy"),
    )
