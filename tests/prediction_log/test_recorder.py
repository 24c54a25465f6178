"""The recorder keeps the request path free of the sink, and says what it drops when the sink is down."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from pigeonhole.prediction_log.journal import Journal
from pigeonhole.prediction_log.recorder import PredictionRecorder
from pigeonhole.prediction_log.records import PredictionRecord
from pigeonhole.prediction_log.sinks import FileSink, SinkUnavailable
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


def test_a_stopped_processs_journal_is_replayed_once_torn_tail_and_all(tmp_path: Path) -> None:
    sink = FileSink(tmp_path / "logs")
    journal_dir = tmp_path / "journal"
    crashed = PredictionRecorder(sink, 100, 60, journal=Journal(journal_dir))
    records = [_prediction(datetime.now(UTC)) for _ in range(5)]
    for record in records:
        crashed.record(record)
    sink.write_predictions(records[:2])  # stored just before the crash: the replay must not double them
    assert crashed.journal is not None
    crashed.journal.close(drained=False)  # what a killed process leaves: segments, no locks
    (segment,) = journal_dir.glob("segment-*.jsonl")
    with segment.open("a") as handle:
        handle.write('{"request_id": "to')  # the write the kill interrupted
    restarted = PredictionRecorder(sink, 100, 60, journal=Journal(journal_dir))
    assert restarted.pending == 5 and restarted.flush()
    window = sink.read_predictions(records[0].ts.replace(year=2000), datetime.now(UTC))
    assert sorted(window["request_id"]) == sorted(r.request_id for r in records)
    assert not segment.exists(), "a replayed segment is deleted once its records are stored"
    restarted.close()
    assert list(journal_dir.glob("segment-*.jsonl")) == [], "a drained recorder leaves no segment"


class _Outage(FileSink):
    """A file sink that is down until told otherwise."""

    down = True

    def write_predictions(self, records: list[PredictionRecord]) -> None:
        if self.down:
            raise SinkUnavailable("down")
        super().write_predictions(records)


def test_what_memory_drops_during_a_long_outage_the_journal_stores_once_the_sink_is_back(
    tmp_path: Path,
) -> None:
    sink = _Outage(tmp_path / "logs")
    recorder = PredictionRecorder(
        sink, max_buffered=5, flush_seconds=60, journal=Journal(tmp_path / "journal")
    )
    answered = [_prediction(datetime.now(UTC)) for _ in range(20)]
    for record in answered:
        recorder.record(record)
    assert not recorder.flush() and recorder.dropped == 15 and recorder.pending == 5
    sink.down = False
    assert recorder.flush()
    window = sink.read_predictions(answered[0].ts.replace(year=2000), datetime.now(UTC))
    assert sorted(window["request_id"]) == sorted(r.request_id for r in answered), "none lost, none twice"
    recorder.close()
    assert list((tmp_path / "journal").glob("segment-*.jsonl")) == []


def test_a_record_no_utf8_can_hold_is_still_journaled_and_its_answer_kept(tmp_path: Path) -> None:
    """The edge refuses lone surrogates; past it, a record holding one must not fail its answer."""
    journal = Journal(tmp_path / "journal")
    records = [replace(_prediction(datetime.now(UTC)), title="sofa \ud800"), _prediction(datetime.now(UTC))]
    journal.append(*records)
    journal.close(drained=False)
    assert Journal(tmp_path / "journal").adopt_orphans() == records, "every field read back as written"
