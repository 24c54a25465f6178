"""What one drift run concluded: the record the job returns, stores as summary.json and publishes."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from pigeonhole.core.errors import ExitCode


class Decision(StrEnum):
    no_drift = "no_drift"
    drift = "drift"
    insufficient_data = "insufficient_data"


@dataclass(frozen=True)
class ColumnScore:
    method: str
    threshold: float
    value: float
    drifted: bool


@dataclass
class DriftResult:
    decision: Decision
    reasons: list[str]
    since: str
    until: str
    model_name: str
    model_version: str
    current_rows: int
    reference_rows: int
    columns: dict[str, ColumnScore] = field(default_factory=dict)
    drift_share: float = 0.0
    thresholds: str = ""  # where the columns' thresholds come from: calibrated per model, or fixed
    reference_source: str = ""  # what the window was compared with
    reference_refreshed: bool = False  # this window became the champion's reference for later runs
    feedback_rows: int = 0
    feedback_accuracy: float | None = None
    reference_accuracy: float | None = None
    report_html: str | None = None
    summary_json: str | None = None

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.declined if self.decision is Decision.drift else ExitCode.ok
