"""Where drift runs are kept: a folder or any fsspec URL with one sub-folder per run, an index page,
the Evidently workspace (local folders only), and the trigger's state.

    <reports>/<run>/report.html    Evidently's report (when the window had enough rows)
    <reports>/<run>/summary.json   the DriftResult
    <reports>/index.html           every run, newest first
    <reports>/workspace/           `evidently ui --workspace <reports>/workspace`
    <reports>/last_trigger.json    when a retraining was last started (the cooldown)
    <reports>/references/<model>/v<version>/   a promoted champion's reference, refreshed from live
                                   traffic (reference.parquet, source.json): see monitoring/drift.py
"""

from __future__ import annotations

import html
import json
import tempfile
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fsspec
import pandas as pd
from evidently.sdk.models import PanelMetric
from evidently.sdk.panels import line_plot_panel
from evidently.ui.workspace import Workspace
from fsspec.implementations.local import LocalFileSystem
from fsspec.spec import AbstractFileSystem

from pigeonhole.core.settings import Settings
from pigeonhole.monitoring.compare import METHODS
from pigeonhole.monitoring.result import DriftResult

TRIGGER_STATE = "last_trigger.json"


def reports_fs(settings: Settings) -> tuple[AbstractFileSystem, str]:
    """The reports location as a filesystem and a root path: a local folder or any fsspec URL."""
    fs, root = fsspec.core.url_to_fs(settings.reports_location)
    return fs, root.rstrip("/")


def _location(fs: AbstractFileSystem, path: str) -> str:
    """A plain path for local files (what people paste into a browser), a URL for anything else."""
    return path if isinstance(fs, LocalFileSystem) else fs.unstrip_protocol(path)


def store_run(settings: Settings, result: DriftResult, snapshot: Any | None, quality: list[Any]) -> None:
    """Write the run's report and summary (filling in their locations on ``result``), and the index."""
    fs, root = reports_fs(settings)
    folder = f"{root}/{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}"
    fs.makedirs(folder, exist_ok=True)
    if snapshot is not None:
        with tempfile.TemporaryDirectory() as tmp:
            snapshot.save_html(f"{tmp}/report.html")
            fs.put_file(f"{tmp}/report.html", f"{folder}/report.html")
        result.report_html = _location(fs, f"{folder}/report.html")
        if isinstance(fs, LocalFileSystem):
            add_to_workspace(Path(root) / "workspace", settings.model_name, [snapshot, *quality])
    result.summary_json = _location(fs, f"{folder}/summary.json")
    fs.pipe_file(f"{folder}/summary.json", json.dumps(asdict(result), indent=2, default=str).encode())
    write_index(fs, root)


def add_to_workspace(location: Path, model_name: str, snapshots: list[Any]) -> None:
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
                for column in METHODS
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
