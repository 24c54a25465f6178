"""The drift job: recent logged traffic against the champion's held-out reference, with Evidently.

Each column's drift method and threshold is pinned (Evidently would otherwise pick methods by
sample size, and chi-square on small references false-alarms most of the time). Distance methods
are used throughout, so "drifted" always means value >= threshold:

- title, description: a domain classifier tells reference from current text (ROC AUC, 0.55);
- predicted_category: Jensen-Shannon distance (0.10);
- top_score, price: Wasserstein distance in standard deviations (0.10).

Large windows are sampled without replacement (seeded) to ``drift_max_rows``; a window is never
upsampled, because repeated titles make the text classifier fire on healthy traffic. A window with
fewer than ``drift_min_rows`` rows is "insufficient data", not drift.
"""

from __future__ import annotations

import html
import json
import logging
import tempfile
import warnings
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import fsspec
import mlflow
import pandas as pd
from evidently import DataDefinition, Dataset, MulticlassClassification, Report
from evidently.metrics import Accuracy, DriftedColumnsCount, ValueDrift
from evidently.sdk.models import PanelMetric
from evidently.sdk.panels import line_plot_panel
from evidently.ui.workspace import Workspace
from fsspec.implementations.local import LocalFileSystem
from fsspec.spec import AbstractFileSystem
from sklearn.exceptions import ConvergenceWarning

from model.registry import CHAMPION, connect, require_alias
from model.train import REFERENCE_ARTIFACT_DIR
from pigeonhole.pii import mask
from pigeonhole.settings import Settings
from serving.sinks import open_sink

log = logging.getLogger(__name__)

TEXT_METHOD = ("abs_text_content_drift", 0.55)
COLUMN_METHODS: dict[str, tuple[str, float]] = {
    "title": TEXT_METHOD,
    "description": TEXT_METHOD,
    "predicted_category": ("jensenshannon", 0.10),
    "top_score": ("wasserstein", 0.10),
    "price": ("wasserstein", 0.10),
}
TEXT_COLUMNS = {"title", "description"}
NUMERIC_COLUMNS = {"top_score", "price"}
MIN_FEEDBACK_FOR_QUALITY = 30


class Decision(StrEnum):
    no_drift = "no_drift"
    drift = "drift"
    insufficient_data = "insufficient_data"


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
    columns: dict[str, dict[str, float | bool | str]] = field(default_factory=dict)
    drift_share: float = 0.0
    feedback_rows: int = 0
    feedback_accuracy: float | None = None
    reference_accuracy: float | None = None
    report_html: str | None = None
    summary_json: str | None = None

    @property
    def exit_code(self) -> int:
        return 3 if self.decision is Decision.drift else 0


def load_reference(settings: Settings) -> tuple[pd.DataFrame, str, float | None]:
    """The champion's logged reference (training inputs + held-out predictions), version and accuracy."""
    client = connect(settings)
    champion = require_alias(client, settings, CHAMPION)
    local = mlflow.artifacts.download_artifacts(run_id=champion.run_id, artifact_path=REFERENCE_ARTIFACT_DIR)
    accuracy = client.get_run(champion.run_id).data.metrics.get("accuracy") if champion.run_id else None
    inputs = pd.read_parquet(Path(local) / "inputs.parquet")
    predictions = pd.read_parquet(Path(local) / "predictions.parquet")
    rows = min(len(inputs), len(predictions))
    # Drift is judged column by column, so the two samples need equal length, not paired rows.
    reference = inputs.head(rows).assign(
        predicted_category=predictions["predicted_category"].head(rows).to_numpy(),
        top_score=predictions["top_score"].head(rows).to_numpy(),
    )
    return reference, str(champion.version), accuracy


# what drift, feedback accuracy and retraining read of a logged prediction; leaving out the top-k
# lists and the rest cuts the job's memory by about a third on large windows
WINDOW_COLUMNS = ["request_id", "ts", "title", "description", "price", "top_category", "top_score", "variant"]


def current_window(settings: Settings, since: datetime, until: datetime) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Logged predictions (as reference-shaped columns) and feedback in [since, until)."""
    sink = open_sink(settings)
    try:
        predictions = sink.read_predictions(since, until, WINDOW_COLUMNS)
        feedback = sink.read_feedback(since, until)
    finally:
        sink.close()
    predictions = predictions[predictions["variant"] != "shadow"] if "variant" in predictions else predictions
    return predictions.rename(columns={"top_category": "predicted_category"}), feedback


def _sample(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """At most ``rows`` rows, without replacement; never more rows than there are."""
    return frame.sample(n=rows, random_state=seed) if len(frame) > rows else frame


def _columns(reference: pd.DataFrame, current: pd.DataFrame) -> list[str]:
    """Columns both sides carry with content: description only where sellers write one."""
    chosen = []
    for column in COLUMN_METHODS:
        if column not in reference or column not in current:
            continue
        ref, cur = reference[column], current[column]
        if column in TEXT_COLUMNS:
            if (ref.fillna("").astype(str).str.strip() == "").mean() > 0.5:
                continue
        elif ref.notna().mean() < 0.5 or cur.notna().mean() < 0.5:
            continue
        chosen.append(column)
    return chosen


def _frame(data: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    out = data[columns].copy()
    for column in columns:
        if column in TEXT_COLUMNS:  # both sides masked alike, or placeholders alone would look like drift
            out[column] = out[column].fillna("").astype(str).map(mask)
        elif column == "predicted_category":
            out[column] = out[column].fillna("").astype(str)
        else:
            out[column] = pd.to_numeric(out[column], errors="coerce").astype(float)
    return out.reset_index(drop=True)


def compare(
    reference: pd.DataFrame, current: pd.DataFrame, drift_share: float = 0.5
) -> tuple[dict[str, dict[str, float | bool | str]], object]:
    """Run Evidently with the pinned methods; return per-column results and the snapshot."""
    columns = _columns(reference, current)
    definition = DataDefinition(
        text_columns=[c for c in columns if c in TEXT_COLUMNS],
        numerical_columns=[c for c in columns if c in NUMERIC_COLUMNS],
        categorical_columns=[c for c in columns if c == "predicted_category"],
    )
    report = Report(
        [
            *(
                ValueDrift(column=c, method=COLUMN_METHODS[c][0], threshold=COLUMN_METHODS[c][1])
                for c in columns
            ),
            DriftedColumnsCount(  # the workspace dashboard plots its share over time
                columns=columns,
                drift_share=drift_share,
                per_column_method={c: COLUMN_METHODS[c][0] for c in columns},
                per_column_threshold={c: COLUMN_METHODS[c][1] for c in columns},
            ),
        ]
    )
    with warnings.catch_warnings():
        # Evidently's text drift fits a small SGD domain classifier whose convergence warnings say
        # nothing about the data; they only bury the job's own output
        warnings.simplefilter("ignore", ConvergenceWarning)
        snapshot = report.run(
            Dataset.from_pandas(_frame(current, columns), data_definition=definition),
            Dataset.from_pandas(_frame(reference, columns), data_definition=definition),
        )
    values = {
        m["config"]["column"]: float(m["value"])
        for m in snapshot.dict()["metrics"]
        if m["config"]["type"].endswith(":ValueDrift")
    }
    results: dict[str, dict[str, float | bool | str]] = {
        c: {
            "method": COLUMN_METHODS[c][0],
            "threshold": COLUMN_METHODS[c][1],
            "value": round(values[c], 4),
            "drifted": values[c] >= COLUMN_METHODS[c][1],
        }
        for c in columns
    }
    return results, snapshot


def answered_feedback(predictions: pd.DataFrame, feedback: pd.DataFrame) -> pd.DataFrame:
    """Each feedback record beside the logged prediction it answers (joined on request id)."""
    if feedback.empty or predictions.empty:
        return pd.DataFrame(
            columns=[*feedback.columns, *predictions.columns.drop("request_id", errors="ignore")]
        )
    return feedback.dropna(subset=["request_id"]).merge(
        predictions, on="request_id", how="inner", suffixes=("", "_prediction")
    )


def feedback_pairs(predictions: pd.DataFrame, feedback: pd.DataFrame) -> pd.DataFrame:
    """The seller's choice (target) beside the top suggestion (prediction), joined on request id."""
    joined = answered_feedback(predictions, feedback)
    return pd.DataFrame(
        {
            "target": joined["chosen_category"].astype(str),
            "prediction": joined["predicted_category"].astype(str),
        }
    )


def quality_snapshot(pairs: pd.DataFrame) -> object:
    """Evidently's accuracy of the top suggestion against sellers' choices, for the workspace."""
    definition = DataDefinition(
        categorical_columns=["target", "prediction"],
        classification=[MulticlassClassification(target="target", prediction_labels="prediction")],
    )
    return Report([Accuracy()]).run(Dataset.from_pandas(pairs, data_definition=definition), None)


def decide(settings: Settings, result: DriftResult) -> None:
    """Apply the policy in settings; fills decision and reasons."""
    drifted = [c for c, r in result.columns.items() if r["drifted"]]
    result.drift_share = round(len(drifted) / max(len(result.columns), 1), 4)
    reasons = [
        f"{len(drifted)} of {len(result.columns)} columns drifted ({', '.join(drifted) or 'none'}); "
        f"share {result.drift_share:.2f} vs threshold {settings.drift_share:.2f}"
    ]
    alone = [c for c in drifted if c in settings.drift_alone_columns]
    if alone:
        reasons.append(f"{', '.join(alone)} drifted, which alone counts as drift")
    dropped = (
        result.feedback_accuracy is not None
        and result.reference_accuracy is not None
        and result.feedback_rows >= MIN_FEEDBACK_FOR_QUALITY
        and result.reference_accuracy - result.feedback_accuracy > settings.drift_max_accuracy_drop
    )
    if dropped:
        reasons.append(
            f"accuracy on feedback {result.feedback_accuracy:.3f} is more than "
            f"{settings.drift_max_accuracy_drop:.2f} below the champion's {result.reference_accuracy:.3f}"
        )
    is_drift = result.drift_share >= settings.drift_share or bool(alone) or dropped
    result.decision = Decision.drift if is_drift else Decision.no_drift
    result.reasons = reasons


def run_drift(settings: Settings, since: datetime, until: datetime) -> DriftResult:
    """The whole job: read, compare, decide, write the HTML report, the JSON summary and the index."""
    reference, version, reference_accuracy = load_reference(settings)
    predictions, feedback = current_window(settings, since, until)
    result = DriftResult(
        decision=Decision.insufficient_data,
        reasons=[],
        since=since.isoformat(),
        until=until.isoformat(),
        model_name=settings.model_name,
        model_version=version,
        current_rows=len(predictions),
        reference_rows=len(reference),
        reference_accuracy=reference_accuracy,
    )
    pairs = feedback_pairs(predictions, feedback)
    result.feedback_rows = len(pairs)
    result.feedback_accuracy = float((pairs["target"] == pairs["prediction"]).mean()) if len(pairs) else None
    snapshots = [quality_snapshot(pairs)] if len(pairs) else []
    snapshot = None
    if len(predictions) < settings.drift_min_rows:
        result.reasons = [
            f"{len(predictions)} predictions in the window; at least {settings.drift_min_rows} "
            "are needed to judge drift"
        ]
    else:
        current = _sample(predictions, settings.drift_max_rows, settings.seed)
        result.columns, snapshot = compare(
            _sample(reference, settings.drift_max_rows, settings.seed), current, settings.drift_share
        )
        decide(settings, result)
    write_outputs(settings, result, snapshot, snapshots)
    log.info("drift job: %s (%s)", result.decision.value, "; ".join(result.reasons))
    return result


def reports_fs(settings: Settings) -> tuple[AbstractFileSystem, str]:
    """The reports location as a filesystem and a root path: a local folder or any fsspec URL."""
    fs, root = fsspec.core.url_to_fs(settings.reports_location)
    return fs, root.rstrip("/")


def _location(fs: AbstractFileSystem, path: str) -> str:
    """A plain path for local files (what people paste into a browser), a URL for anything else."""
    return path if isinstance(fs, LocalFileSystem) else fs.unstrip_protocol(path)


def write_outputs(
    settings: Settings, result: DriftResult, snapshot: object | None, quality: list[object]
) -> None:
    fs, root = reports_fs(settings)
    folder = f"{root}/{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}"
    fs.makedirs(folder, exist_ok=True)
    if snapshot is not None:
        with tempfile.TemporaryDirectory() as tmp:
            snapshot.save_html(f"{tmp}/report.html")  # type: ignore[attr-defined]
            fs.put_file(f"{tmp}/report.html", f"{folder}/report.html")
        result.report_html = _location(fs, f"{folder}/report.html")
        if isinstance(fs, LocalFileSystem):
            add_to_workspace(Path(root) / "workspace", settings.model_name, [snapshot, *quality])
    result.summary_json = _location(fs, f"{folder}/summary.json")
    fs.pipe_file(f"{folder}/summary.json", json.dumps(asdict(result), indent=2, default=str).encode())
    write_index(fs, root)


def add_to_workspace(location: Path, model_name: str, snapshots: list[object]) -> None:
    """Keep the run in an Evidently workspace, one project per registered model, so that
    `evidently ui --workspace <reports>/workspace` shows data scientists the history.
    (A local workspace only: with reports in an object store, the HTML and JSON are what is kept.)"""
    workspace = Workspace.create(str(location))
    found = workspace.search_project(model_name)
    project = found[0] if found else _create_project(workspace, model_name)
    for snapshot in snapshots:
        workspace.add_run(project.id, snapshot, include_data=False)


def _create_project(workspace: Workspace, name: str) -> Any:
    project = workspace.create_project(name, description=f"Drift of live traffic for model {name}")
    project.dashboard.add_panel(
        line_plot_panel(
            "Share of drifted columns",
            [
                PanelMetric(
                    metric="DriftedColumnsCount", metric_labels={"value_type": "share"}, legend="share"
                )
            ],
        )
    )
    project.dashboard.add_panel(
        line_plot_panel(
            "Per-column drift score",
            [
                PanelMetric(metric="ValueDrift", metric_labels={"column": column}, legend=column)
                for column in COLUMN_METHODS
            ],
        )
    )
    project.dashboard.add_panel(
        line_plot_panel(
            "Accuracy of the top suggestion on sellers' feedback",
            [PanelMetric(metric="Accuracy", legend="accuracy on feedback")],
        )
    )
    return project


def write_index(fs: AbstractFileSystem, root: str) -> str:
    """A static page listing every run with its decision, for people who just open files."""
    rows = []
    for summary_path in sorted(fs.glob(f"{root}/*/summary.json"), reverse=True):
        summary = json.loads(fs.cat_file(summary_path))
        run = summary_path.rstrip("/").split("/")[-2]
        link = f'<a href="{run}/report.html">report</a>' if summary.get("report_html") else "-"
        rows.append(
            f"<tr><td>{html.escape(run)}</td><td>{html.escape(summary['decision'])}</td>"
            f"<td>v{html.escape(summary['model_version'])}</td><td>{summary['current_rows']}</td>"
            f"<td>{summary['drift_share']}</td><td>{html.escape('; '.join(summary['reasons']))}</td>"
            f'<td>{link}</td><td><a href="{run}/summary.json">json</a></td></tr>'
        )
    page = (
        "<!doctype html><meta charset=utf-8><title>pigeonhole drift reports</title>"
        "<h1>Drift reports</h1><table border=1 cellpadding=4><tr><th>run</th><th>decision</th><th>model</th>"
        "<th>rows</th><th>drift share</th><th>reasons</th><th>report</th><th>summary</th></tr>"
        + "".join(rows)
        + "</table>"
    )
    fs.pipe_file(f"{root}/index.html", page.encode())
    return f"{root}/index.html"
