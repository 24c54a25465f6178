"""The recorder keeps the request path free of the sink, and says what it drops when the sink is down."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from pigeonhole.prediction_log.recorder import PredictionRecorder
from pigeonhole.prediction_log.records import PredictionRecord
from pigeonhole.prediction_log.sinks import FileSink
from tests.prediction_log.test_sinks import _prediction


def test_full_buffer_drops_oldest_and_counts(tmp_path: Path) -> None:
    class DownSink(FileSink):
        def write_predictions(self, records: list[PredictionRecord]) -> None:
            raise OSError("disk gone")

    dropped: list[int] = []
    recorder = PredictionRecorder(
        DownSink(tmp_path), max_buffered=5, flush_seconds=60, on_dropped=dropped.append
    )
    record = _prediction(datetime.now(UTC))
    for i in range(8):
        recorder.record(replace(record, request_id=str(i)))
    assert not recorder.flush()
    assert recorder.pending == 5 and recorder.dropped == 3 and sum(dropped) == 3
    assert [r.request_id for r in recorder._buffer] == ["3", "4", "5", "6", "7"]
