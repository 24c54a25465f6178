"""`pigeonhole log stats`: what the log holds for a time window, the same way for every sink.

Operators read it after an incident (was anything lost, refused, replayed?) and before trusting a
drift report or a retraining (how much feedback joins a prediction it labels).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from pigeonhole.prediction_log.sinks import LogSink


@dataclass(frozen=True)
class LogStats:
    since: datetime
    until: datetime
    predictions: int
    feedback: int
    feedback_joined: int  # feedback whose prediction is in the log (the rest: predictions lost or expired)
    dead_letters: int
    stored_twice: int  # predictions a journal replay stored again; readers show them once
    first: datetime | None
    last: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            key: value.isoformat() if isinstance(value, datetime) else value
            for key, value in asdict(self).items()
        }


def log_stats(sink: LogSink, since: datetime, until: datetime) -> LogStats:
    predictions = sink.read_predictions(since, until, ["request_id", "ts"])
    feedback = sink.read_feedback(since, until)
    times = predictions["ts"]
    return LogStats(
        since=since,
        until=until,
        predictions=len(predictions),
        feedback=len(feedback),
        feedback_joined=int(feedback["request_id"].isin(predictions["request_id"]).sum()),
        dead_letters=len(sink.read_dead_letters(since, until)),
        stored_twice=sink.stored_twice(since, until),
        first=times.min().to_pydatetime() if len(times) else None,
        last=times.max().to_pydatetime() if len(times) else None,
    )
