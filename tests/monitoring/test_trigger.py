"""Triggers: what drift starts, how often, and the retraining that closes the loop."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import pytest
from typer.testing import CliRunner

from pigeonhole.cli import app
from pigeonhole.core.settings import Settings, TriggerKind
from pigeonhole.model import data
from pigeonhole.model.promote import run_gate
from pigeonhole.model.registry import CHAMPION, connect
from pigeonhole.model.train import train_and_register
from pigeonhole.monitoring.drift import run_drift
from pigeonhole.monitoring.result import Decision, DriftResult
from pigeonhole.monitoring.retrain import feedback_listings, retrain
from pigeonhole.monitoring.trigger import TriggerError, fire
from pigeonhole.serving.process import free_port
from tests.monitoring.test_drift import _replay


def _drift(decision: Decision = Decision.drift) -> DriftResult:
    return DriftResult(
        decision=decision,
        reasons=["predicted_category drifted"],
        since="a",
        until="b",
        model_name="listing-category",
        model_version="3",
        current_rows=900,
        reference_rows=600,
    )


class _Recorder(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []
    status: ClassVar[int] = 204

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).received.append({"path": self.path, "auth": self.headers["Authorization"], "body": body})
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def github(tmp_path: Path) -> Any:
    port = free_port()
    _Recorder.received, _Recorder.status = [], 204
    server = HTTPServer(("127.0.0.1", port), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield Settings(
        home=tmp_path,
        trigger=TriggerKind.github,
        github_repository="acme/pigeonhole",
        github_api_url=f"http://127.0.0.1:{port}",
        github_token="s3cret",
    )
    server.shutdown()


def test_github_dispatch_is_sent_once_per_cooldown(github: Settings) -> None:
    assert "sent repository_dispatch 'drift-detected'" in fire(github, _drift())
    [request] = _Recorder.received
    assert request["path"] == "/repos/acme/pigeonhole/dispatches" and request["auth"] == "Bearer s3cret"
    assert request["body"]["event_type"] == "drift-detected"
    assert request["body"]["client_payload"]["model_version"] == "3"
    assert fire(github, _drift()).startswith("cooldown"), "one drift episode must not trigger a storm"
    assert len(_Recorder.received) == 1


def test_github_refusal_is_an_error_not_silence(github: Settings) -> None:
    _Recorder.status = 401
    with pytest.raises(TriggerError, match="refused the dispatch: 401"):
        fire(github, _drift())


def test_nothing_fires_without_drift_or_backend(tmp_path: Path) -> None:
    assert (
        fire(Settings(home=tmp_path, trigger=TriggerKind.github), _drift(Decision.no_drift))
        == "nothing to trigger"
    )
    assert fire(Settings(home=tmp_path), _drift()) == "trigger=none: report only"


def test_retraining_on_feedback_recovers_accuracy_and_is_promoted(
    tmp_path: Path, listings: pd.DataFrame
) -> None:
    """v1 knows a small market (1,500 listings), so the drifted market's new brands and phrasings
    cost it accuracy that sellers' feedback wins back: the loop a deployed platform closes."""
    settings = Settings(home=tmp_path / "state", min_class_count=5)
    small = listings.head(1500)
    small.to_csv(tmp_path / "listings.csv", index=False)
    train_and_register(settings, data.validate(small), source=str(tmp_path / "listings.csv"))
    assert run_gate(connect(settings), settings).promoted
    _replay(settings, 1500, seed=31, drift=1.0, feedback_share=0.6)
    now = datetime.now(UTC)
    labelled = feedback_listings(settings, now.replace(year=now.year - 1), now)
    assert len(labelled) > 800 and labelled["listing_id"].str.startswith("feedback-").all()
    outcome = retrain(settings)  # the champion's own dataset, found through its run
    assert outcome.feedback_rows + sum(outcome.capped.values()) == len(labelled)
    assert outcome.base_rows == len(small) and outcome.feedback_rows == 0.3 * len(small), "capped"
    assert outcome.decision.promoted, outcome.decision.reasons
    champion = connect(settings).get_model_version_by_alias(settings.model_name, CHAMPION)
    assert str(champion.version) == outcome.version == "2"
    run = connect(settings).get_run(champion.run_id)
    assert run.info.run_name == f"retrain on request (+{outcome.feedback_rows:,} feedback rows)"
    # Retraining again on the same data and feedback cannot beat v2: the gate keeps it. For
    # workflows, --exit-zero turns "kept" into success and $GITHUB_OUTPUT carries the decision.
    outputs = tmp_path / "github_output"
    command = ["retrain", "--home", str(settings.home)]
    env = {"GITHUB_OUTPUT": str(outputs), "PIGEONHOLE_MIN_CLASS_COUNT": "5"}
    assert CliRunner().invoke(app, command, env=env).exit_code == 3
    kept = CliRunner().invoke(app, [*command, "--exit-zero"], env=env)
    assert kept.exit_code == 0, kept.output
    assert outputs.read_text().splitlines()[-2:] == ["promoted=false", "version=4"]

    # v2 now serves the market it was retrained for: its first stable window becomes its reference,
    # firing nothing (the retraining answered that drift), and later windows of that market are calm
    since = datetime.now(UTC)
    _replay(settings, 1500, seed=32, drift=1.0, feedback_share=0.3)
    first = run_drift(settings, since, datetime.now(UTC) + timedelta(minutes=1))
    assert first.reference_refreshed and first.reference_source.startswith("a sample of v2's training rows")
    assert fire(settings.model_copy(update={"trigger": TriggerKind.local}), first).startswith("not fired")
    since = datetime.now(UTC)
    _replay(settings, 1500, seed=33, drift=1.0)
    later = run_drift(settings, since, datetime.now(UTC) + timedelta(minutes=1))
    assert later.reference_source.startswith("live traffic v2 served") and not later.reference_refreshed
    assert later.decision is Decision.no_drift, later.reasons
