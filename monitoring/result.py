"""What one drift run concluded: the record the job returns, stores as summary.json and publishes."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

from pigeonhole.core.errors import ExitCode


class Decision(StrEnum):
    no_drift = "no_drift"
    drift = "drift"
    insufficient_data = "insufficient_data"


class RunSource(StrEnum):
    """Who ran the drift job: the scheduled CronJob, someone at the CLI, or `pigeonhole demo`."""

    schedule = "schedule"
    cli = "cli"
    demo = "demo"


@dataclass(frozen=True)
class ColumnScore:
    method: str
    threshold: float
    value: float
    drifted: bool

    @property
    def ratio(self) -> float:
        """The score on one scale for every method: 1.0 is the threshold, drifted from there up."""
        return self.value / self.threshold if self.threshold > 0 else float("inf")


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
    source: RunSource = RunSource.cli
    columns: dict[str, ColumnScore] = field(default_factory=dict)
    drift_share: float = 0.0
    thresholds: str = ""  # where the columns' thresholds come from: calibrated per model, or fixed
    reference_source: str = ""  # what the window was compared with
    reference_refreshed: bool = False  # this window became the champion's reference for later runs
    feedback_rows: int = 0
    feedback_accuracy: float | None = None
    reference_accuracy: float | None = None
    trigger: str = ""  # what the trigger did about the decision
    run: str = ""  # the run's folder among the reports, named by its start time
    report_html: str | None = None
    summary_json: str | None = None

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.declined if self.decision is Decision.drift else ExitCode.ok

    @classmethod
    def from_summary(cls, summary: dict[str, Any]) -> DriftResult:
        """A run back from its summary.json; summaries written before a field existed get its default."""
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in summary.items() if key in known}
        values["decision"] = Decision(values["decision"])
        values["source"] = RunSource(values.get("source", RunSource.cli))
        values["columns"] = {name: ColumnScore(**score) for name, score in values.get("columns", {}).items()}
        return cls(**values)
