"""Where drift runs are kept: a folder or any fsspec URL with one sub-folder per run, an index page,
the Evidently workspace (local folders only), and the trigger's state.

    <reports>/<run>/report.html    the run's summary, then Evidently's report (when the window had
                                   enough rows); templates/summary.html
    <reports>/<run>/summary.json   the DriftResult
    <reports>/index.html           every run, newest first, sortable, with a trend; templates/index.html
    <reports>/workspace/           `evidently ui --workspace <reports>/workspace`
    <reports>/last_trigger.json    when a retraining was last started (the cooldown)
    <reports>/references/<model>/v<version>/   a promoted champion's reference, refreshed from live
                                   traffic (reference.parquet, source.json): see monitoring/drift.py
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fsspec
import pandas as pd
from evidently.core.report import Snapshot
from evidently.sdk.models import PanelMetric
from evidently.sdk.panels import bar_plot_panel
from evidently.ui.workspace import Workspace
from fsspec.implementations.local import LocalFileSystem
from fsspec.spec import AbstractFileSystem
from jinja2 import Environment, PackageLoader

from pigeonhole.core.settings import Settings
from pigeonhole.model.registry import version_page
from pigeonhole.monitoring.compare import METHODS
from pigeonhole.monitoring.result import Decision, DriftResult

TRIGGER_STATE = "last_trigger.json"
RUN_FOLDER = "%Y%m%dT%H%M%S%fZ"  # a run's folder: when it was stored, sortable
TEMPLATES = Environment(loader=PackageLoader("pigeonhole.monitoring", "templates"), autoescape=True)
STYLE = (Path(__file__).parent / "templates" / "style.css").read_text()
# runs the index shows: every rewrite reads each one's summary (a GET on object storage), and a year
# of hourly runs is 8,760 of them; older runs keep their folders, and the workspace keeps them all
INDEX_RUNS = 1000
DECISION_WORDS = {
    Decision.drift: "Drift",
    Decision.no_drift: "No drift",
    Decision.insufficient_data: "Too little data",
}


def reports_fs(settings: Settings) -> tuple[AbstractFileSystem, str]:
    """The reports location as a filesystem and a root path: a local folder or any fsspec URL."""
    fs, root = fsspec.core.url_to_fs(settings.reports_location)
    return fs, root.rstrip("/")


def _location(fs: AbstractFileSystem, path: str) -> str:
    """A plain path for local files (what people paste into a browser), a URL for anything else."""
    return path if isinstance(fs, LocalFileSystem) else fs.unstrip_protocol(path)


def store_run(
    settings: Settings, result: DriftResult, snapshot: Snapshot | None, quality: Snapshot | None
) -> None:
    """Write the run's report (our summary, then Evidently's) and summary, filling in their locations
    on ``result``; keep the run in the workspace and rewrite the index."""
    fs, root = reports_fs(settings)
    result.run = f"{datetime.now(UTC):{RUN_FOLDER}}"
    folder = f"{root}/{result.run}"
    previous = _report_folders(fs, root)
    fs.makedirs(folder, exist_ok=True)
    if snapshot is not None:
        run = one_snapshot(result, snapshot, quality)
        result.report_html = _location(fs, f"{folder}/report.html")
        page = run.get_html_str(as_iframe=False)
        summary = _summary_html(settings, result, previous[0] if previous else None)
        fs.pipe_file(f"{folder}/report.html", page.replace("<body>", f"<body>{summary}", 1).encode())
        if isinstance(fs, LocalFileSystem):
            add_to_workspace(Path(root) / "workspace", settings.model_name, run)
    result.summary_json = _location(fs, f"{folder}/summary.json")
    fs.pipe_file(f"{folder}/summary.json", json.dumps(asdict(result), indent=2, default=str).encode())
    write_index(fs, root)


def one_snapshot(result: DriftResult, drift: Snapshot, quality: Snapshot | None) -> Snapshot:
    """The run as one Evidently snapshot, the drift metrics and (with feedback) the accuracy, named
    and tagged so the workspace can be filtered by model version, decision and source."""
    parts = [drift.to_snapshot_model()] + ([quality.to_snapshot_model()] if quality is not None else [])
    merged = parts[0].copy(  # Evidently's models are pydantic v1 style
        update={
            "name": f"{result.decision.value} v{result.model_version} {_window(result)}",
            "tags": [f"v{result.model_version}", result.decision.value, result.source.value],
            "metadata": {
                "model_name": result.model_name,
                "model_version": result.model_version,
                "decision": result.decision.value,
                "source": result.source.value,
                "window": _window(result),
                "current_rows": str(result.current_rows),
                "trigger": result.trigger,
            },
            "metric_results": {k: v for part in parts for k, v in part.metric_results.items()},
            "top_level_metrics": [m for part in parts for m in part.top_level_metrics],
            "widgets": [w for part in parts for w in part.widgets],
        }
    )
    return Snapshot.load_model(merged)


def _window(result: DriftResult) -> str:
    return f"{result.since[:16]} .. {result.until[:16]}".replace("T", " ")


def _runs_with(fs: AbstractFileSystem, root: str, name: str) -> list[tuple[str, str]]:
    """(run folder, path) of every run that has the file ``name``, newest first."""
    paths = sorted(fs.glob(f"{root}/*/{name}"), reverse=True)
    return [(path.rstrip("/").split("/")[-2], path) for path in paths]


def _report_folders(fs: AbstractFileSystem, root: str) -> list[str]:
    """The runs that have a report, newest first."""
    return [folder for folder, _ in _runs_with(fs, root, "report.html")]


def _summary_html(settings: Settings, result: DriftResult, previous: str | None) -> str:
    columns = sorted(result.columns.items(), key=lambda item: (not item[1].drifted, -item[1].ratio))
    return TEMPLATES.get_template("summary.html").render(
        r=result,
        columns=columns,
        previous=previous,
        version_page=version_page(settings, result.model_name, result.model_version),
        drift_share_threshold=settings.drift_share,
        decision_words=DECISION_WORDS,
        bar_width=_bar_width,
        style=STYLE,
    )


def _bar_width(ratio: float) -> float:
    """Bars are drawn to twice the threshold, which sits in the middle."""
    return round(min(ratio / 2, 1.0) * 100, 1)


def add_to_workspace(location: Path, model_name: str, run: Snapshot) -> None:
    """Keep the run in an Evidently workspace, one project per registered model, so that
    `evidently ui --workspace <reports>/workspace` shows data scientists the history.
    (A local workspace only: with reports in an object store, the HTML and JSON are what is kept.)"""
    workspace = Workspace.create(str(location))
    found = workspace.search_project(model_name)
    project = found[0] if found else _create_project(workspace, model_name)
    workspace.add_run(project.id, run, include_data=False)


def _create_project(workspace: Workspace, name: str) -> Any:
    """Bars (so every axis starts at 0 and nothing is smoothed); each column on its own panel, since
    the methods' scales differ (their thresholds are in each report's summary)."""
    project = workspace.create_project(name, description=f"Drift of live traffic for model {name}")
    share = PanelMetric(metric="DriftedColumnsCount", metric_labels={"value_type": "share"}, legend="share")
    project.dashboard.add_panel(
        bar_plot_panel("Share of drifted columns", [share], "drift from the drift_share setting up")
    )
    project.dashboard.add_panel(
        bar_plot_panel(
            "Accuracy of the top suggestion on sellers' feedback",
            [PanelMetric(metric="Accuracy", legend="accuracy on feedback")],
            "compare with the champion's held-out accuracy in each report's summary",
        )
    )
    for column, method in METHODS.items():
        project.dashboard.add_panel(
            bar_plot_panel(
                f"{column}: {method}",
                [PanelMetric(metric="ValueDrift", metric_labels={"column": column}, legend=column)],
                "drifted at or above its threshold (each report's summary gives it)",
                size="half",
            )
        )
    return project


def write_index(fs: AbstractFileSystem, root: str, newest: int = INDEX_RUNS) -> str:
    """The history page: the newest runs first, sortable and filterable, with a trend; offline."""
    found = _runs_with(fs, root, "summary.json")
    shown = found[:newest]
    summaries = fs.cat([path for _, path in shown]) if shown else {}  # concurrent on object storage
    runs: list[dict[str, Any]] = []
    for folder, summary_path in shown:
        result = DriftResult.from_summary(json.loads(summaries[summary_path]))
        started = datetime.strptime(folder, RUN_FOLDER).replace(tzinfo=UTC)
        runs.append(
            {
                "r": result,
                "folder": folder,
                "started": f"{started:%Y-%m-%d %H:%M:%S}",
                "window": _window(result),
            }
        )
    page = TEMPLATES.get_template("index.html").render(
        runs=runs,
        total=len(found),
        columns=[c for c in METHODS if any(c in run["r"].columns for run in runs)],
        versions=sorted({run["r"].model_version for run in runs}, key=_version_order),
        decisions=[d.value for d in Decision],
        chart=_trend([run["r"] for run in reversed(runs)]),
        style=STYLE,
    )
    fs.pipe_file(f"{root}/index.html", page.encode())
    return f"{root}/index.html"


def _version_order(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (0, version)


def _trend(results: list[DriftResult], width: int = 640, height: int = 120) -> dict[str, Any]:
    """Points for drift share and accuracy on feedback, oldest run left, 0 at the bottom."""
    step = (width - 50) / max(len(results) - 1, 1)

    def points(values: list[float | None]) -> list[tuple[float, float]]:
        return [
            (40 + i * step, height - value * height) for i, value in enumerate(values) if value is not None
        ]

    judged = [r.drift_share if r.decision is not Decision.insufficient_data else None for r in results]
    return {
        "width": width,
        "height": height,
        "share": points(judged),
        "accuracy": points([r.feedback_accuracy for r in results]),
    }


def _live_reference_folder(
    settings: Settings, model_name: str, version: str
) -> tuple[AbstractFileSystem, str]:
    fs, root = reports_fs(settings)
    return fs, f"{root}/references/{model_name}/v{version}"


def load_live_reference(
    settings: Settings, model_name: str, version: str
) -> tuple[pd.DataFrame, dict[str, Any]] | None:
    """The reference refreshed from live traffic for this model version, and where it came from."""
    fs, folder = _live_reference_folder(settings, model_name, version)
    if not fs.exists(f"{folder}/source.json"):
        return None
    with fs.open(f"{folder}/reference.parquet", "rb") as handle:
        frame = pd.read_parquet(handle)
    return frame, json.loads(fs.cat_file(f"{folder}/source.json"))


def store_live_reference(
    settings: Settings, model_name: str, version: str, frame: pd.DataFrame, source: dict[str, Any]
) -> None:
    """Keep ``frame`` as the version's reference; source.json is written last, so a reader never
    sees a reference without its provenance or half a file."""
    fs, folder = _live_reference_folder(settings, model_name, version)
    fs.makedirs(folder, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        frame.to_parquet(f"{tmp}/reference.parquet", index=False)
        fs.put_file(f"{tmp}/reference.parquet", f"{folder}/reference.parquet")
    fs.pipe_file(f"{folder}/source.json", json.dumps(source, indent=2).encode())


def last_trigger(settings: Settings) -> datetime | None:
    """When a retraining was last started, if ever."""
    fs, root = reports_fs(settings)
    if not fs.exists(f"{root}/{TRIGGER_STATE}"):
        return None
    return datetime.fromisoformat(json.loads(fs.cat_file(f"{root}/{TRIGGER_STATE}"))["at"])


def record_trigger(settings: Settings, backend: str) -> None:
    fs, root = reports_fs(settings)
    fs.makedirs(root, exist_ok=True)
    fs.pipe_file(
        f"{root}/{TRIGGER_STATE}",
        json.dumps({"at": datetime.now(UTC).isoformat(), "backend": backend}).encode(),
    )


def forget_trigger(settings: Settings) -> None:
    """Start a new drift episode: the next drift may trigger a retraining at once."""
    fs, root = reports_fs(settings)
    if fs.exists(f"{root}/{TRIGGER_STATE}"):
        fs.rm(f"{root}/{TRIGGER_STATE}")
