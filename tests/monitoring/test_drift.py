"""The drift job on traffic logged by the real engine: quiet on healthy traffic, firing on drift."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import fsspec
import numpy as np
import pytest
from evidently.ui.workspace import Workspace
from typer.testing import CliRunner

from pigeonhole.cli import app
from pigeonhole.core.settings import Settings
from pigeonhole.model.synthetic import generate
from pigeonhole.monitoring.compare import METHODS
from pigeonhole.monitoring.drift import run_drift
from pigeonhole.monitoring.result import Decision
from pigeonhole.monitoring.stattests import TOKEN_SHIFT
from pigeonhole.prediction_log.recorder import PredictionRecorder
from pigeonhole.prediction_log.sinks import FileSink
from pigeonhole.serving.engine import ModelHolder, SuggestionEngine
from pigeonhole.serving.schemas import FeedbackRequest, SuggestRequest
from pigeonhole.serving.tokens import FeedbackTokens


def _settings(served_home: Path, tmp_path: Path) -> Settings:
    """Registry from the shared trained home; logs and reports in this test's own folder."""
    return Settings(
        home=tmp_path / "state", tracking_uri=f"sqlite:///{served_home / 'mlflow.db'}", drift_min_rows=300
    )


APPS = ("web", "ios", "android")  # the marketplace's own callers, each with its API key


def _replay(settings: Settings, rows: int, seed: int, drift: float, feedback_share: float = 0.0) -> None:
    """Send generated listings through the real suggestion engine, which logs them like the service."""
    holder = ModelHolder(settings)
    assert holder.refresh()
    sink = FileSink(settings.log_dir)
    recorder = PredictionRecorder(sink, 100_000, 60)
    engine = SuggestionEngine(settings, holder, recorder, sink, FeedbackTokens(settings))
    listings = generate(rows, seed=seed, drift=drift)
    answered = np.random.default_rng(seed).random(rows) < feedback_share  # the same sellers every run
    for start in range(0, rows, 64):
        chunk = listings.iloc[start : start + 64]
        asked = [
            SuggestRequest(
                title=r.title,
                description=r.description or None,
                price=None if r.price != r.price else r.price,
            )
            for r in chunk.itertuples()
        ]
        for item, answer, truth, reports in zip(
            asked, engine.suggest(asked), chunk["category_path"], answered[start : start + 64], strict=True
        ):
            if reports:
                feedback = FeedbackRequest.answering(item, answer.feedback_token, truth)
                engine.feedback(feedback, APPS[start // 64 % len(APPS)])
    assert recorder.flush()


def _window() -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - timedelta(hours=1), now + timedelta(minutes=1)


def test_healthy_traffic_is_not_drift(served_home: Path, tmp_path: Path) -> None:
    settings = _settings(served_home, tmp_path)
    _replay(settings, 1200, seed=21, drift=0.0)
    result = run_drift(settings, *_window())
    assert result.decision is Decision.no_drift, result.reasons
    assert result.exit_code == 0 and result.current_rows == 1200 and result.model_version == "1"
    assert set(result.columns) >= {"title", "predicted_category", "top_score", "price"}
    assert not any(column.drifted for column in result.columns.values())
    assert result.report_html and Path(result.report_html).stat().st_size > 10_000
    summary = json.loads(Path(result.summary_json or "").read_text())
    assert summary["decision"] == "no_drift" and summary["columns"]["title"]["method"] == TOKEN_SHIFT
    assert summary["thresholds"].startswith("calibrated for this model to 1% false alarms per window")
    assert summary["reference_source"].startswith("a sample of v1's training rows")
    reports = Path(settings.reports_location)
    assert "no_drift" in (reports / "index.html").read_text()
    workspace = Workspace.create(str(reports / "workspace"))
    [project] = workspace.search_project("listing-category")
    assert len(workspace.list_runs(project.id)) == 1, "the run is in the Evidently workspace"
    assert len(workspace.get_dashboard(project.id).panels) == 2 + len(METHODS), (
        "share, accuracy, a column each"
    )


@pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")  # no noise in a user's terminal
def test_drifted_traffic_fires_and_feedback_accuracy_is_reported(served_home: Path, tmp_path: Path) -> None:
    settings = _settings(served_home, tmp_path)
    _replay(settings, 1200, seed=22, drift=1.0, feedback_share=0.3)
    result = run_drift(settings, *_window())
    assert result.decision is Decision.drift and result.exit_code == 3
    assert result.columns["predicted_category"].drifted and result.columns["title"].drifted
    assert result.feedback_rows > 200 and result.feedback_accuracy is not None
    assert result.reference_accuracy is not None and result.feedback_accuracy < result.reference_accuracy
    workspace = Workspace.create(str(Path(settings.reports_location) / "workspace"))
    [project] = workspace.search_project("listing-category")
    [run_id] = workspace.list_runs(project.id)
    run = workspace.get_run(project.id, run_id)
    assert run is not None and set(run.tags) == {"v1", "drift", "cli"}, "one snapshot per run, tagged"
    assert run.metadata["model_version"] == "1" and run.metadata["trigger"] == "trigger=none: report only"
    shown = {result.display_name for result in run.metric_results.values()}
    assert {"Accuracy metric", "Count of Drifted Columns", "Value drift for title"} <= shown

    summary = _summary_section(Path(result.report_html or ""))
    assert "Drift" in summary and "listing-category v1" in summary and "trigger=none: report only" in summary
    assert summary.index("predicted_category") < summary.index("price"), "drifted columns come first"
    assert f"{result.feedback_accuracy:.3f}" in summary and f"{result.reference_accuracy:.3f}" in summary
    assert 'href="../index.html"' in summary and "/#/models/listing-category/versions/1" in summary


def _summary_section(report: Path) -> str:
    """Pigeonhole's summary, which opens the report before Evidently's part."""
    page = report.read_text()
    return page[page.index('<section class="ph" id="summary">') : page.index("</section>")]


def test_too_few_rows_is_insufficient_data_not_drift(served_home: Path, tmp_path: Path) -> None:
    settings = _settings(served_home, tmp_path)
    _replay(settings, 100, seed=23, drift=1.0)
    result = run_drift(settings, *_window())
    assert result.decision is Decision.insufficient_data and result.exit_code == 0
    assert result.report_html is None and "at least 300" in result.reasons[0]


def test_cli_exit_codes_for_schedulers(served_home: Path, tmp_path: Path) -> None:
    settings = _settings(served_home, tmp_path)
    _replay(settings, 800, seed=24, drift=1.0)
    runner = CliRunner()
    common = ["--home", str(settings.home), "--tracking-uri", settings.resolved_tracking_uri]
    fired = runner.invoke(
        app, ["monitor", "drift", "--window", "1h", *common], env={"PIGEONHOLE_DRIFT_MIN_ROWS": "300"}
    )
    assert fired.exit_code == 3, fired.output
    assert "DRIFT" in fired.output and "report:" in fired.output
    assert "thresholds calibrated for this model" in fired.output
    bad_window = runner.invoke(app, ["monitor", "drift", "--window", "soon", *common])
    assert bad_window.exit_code == 2 and "30m, 24h, 7d" in bad_window.output
    no_model = runner.invoke(app, ["monitor", "drift", "--home", str(tmp_path / "empty")])
    assert no_model.exit_code == 2 and "no registry in" in no_model.output, "a mistyped --home is named"


def test_reports_go_to_any_fsspec_location(served_home: Path, tmp_path: Path) -> None:
    settings = _settings(served_home, tmp_path).model_copy(update={"reports": "memory://pigeonhole/reports"})
    _replay(settings, 400, seed=25, drift=1.0)
    result = run_drift(settings, *_window())
    fs = fsspec.filesystem("memory")
    assert result.report_html and result.report_html.startswith("memory://")
    assert fs.exists(result.report_html) and fs.exists(result.summary_json or "")
    assert "drift" in fs.cat_file("/pigeonhole/reports/index.html").decode()
