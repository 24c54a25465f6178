"""`pigeonhole log stats` counts the same things, the same way, on both sinks."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pigeonhole.cli import app
from pigeonhole.prediction_log.records import DeadLetterRecord
from pigeonhole.prediction_log.sinks import FileSink, LogSink, PostgresSink
from tests.prediction_log.test_sinks import _feedback, _prediction


@pytest.mark.parametrize("kind", ["files", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_log_stats_counts_what_operators_ask_after_an_incident(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    env = {"PIGEONHOLE_LOG_SINK": kind}
    sink: LogSink
    if kind == "postgres":
        env["PIGEONHOLE_LOG_DATABASE_URL"] = request.getfixturevalue("postgres_database")
        sink = PostgresSink(env["PIGEONHOLE_LOG_DATABASE_URL"])
    else:
        sink = FileSink(tmp_path / "logs")
    now = datetime.now(UTC)
    answered = [_prediction(now - timedelta(minutes=m)) for m in (30, 20, 10)]
    sink.write_predictions(answered)
    sink.write_predictions(answered[:1])  # a journal replay of a record already stored
    sink.write_feedback(replace(_feedback(now), request_id=answered[0].request_id))
    sink.write_feedback(_feedback(now))  # its prediction is not in the log
    sink.write_dead_letters([DeadLetterRecord.of(_prediction(now), "NUL")])
    sink.write_predictions([_prediction(now - timedelta(days=2))])  # outside the window
    sink.close()

    done = CliRunner().invoke(app, ["log", "stats", "--json", "--home", str(tmp_path)], env=env)
    assert done.exit_code == 0, done.output
    stats = json.loads(done.output)
    assert {k: stats[k] for k in ("predictions", "feedback", "feedback_joined", "dead_letters")} == {
        "predictions": 3,
        "feedback": 2,
        "feedback_joined": 1,
        "dead_letters": 1,
    }
    assert stats["stored_twice"] == (1 if kind == "files" else 0)
    assert stats["first"] == answered[0].ts.isoformat() and stats["last"] == answered[2].ts.isoformat()
    table = CliRunner().invoke(app, ["log", "stats", "--home", str(tmp_path)], env=env)
    assert "joining its prediction" in table.output and f"{kind} log" in table.output


def test_log_retain_deletes_expired_days_and_says_so(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    sink = FileSink(tmp_path / "logs")
    sink.write_predictions([_prediction(now - timedelta(days=10)), _prediction(now)])
    env = {"PIGEONHOLE_LOG_SINK": "files"}
    done = CliRunner().invoke(app, ["log", "retain", "--days", "7", "--home", str(tmp_path)], env=env)
    assert done.exit_code == 0, done.output
    assert "older than 7 days" in done.output
    assert len(sink.read_predictions(now - timedelta(days=30), now + timedelta(minutes=1))) == 1
    refused = CliRunner().invoke(app, ["log", "retain", "--days", "0", "--home", str(tmp_path)], env=env)
    assert refused.exit_code == 2 and "greater than or equal to 1" in refused.output
