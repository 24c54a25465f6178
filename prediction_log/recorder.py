"""Prediction records written in batches, off the request path, surviving a sink outage and a crash.

Requests only append to a bounded in-memory buffer. A background thread writes the buffer to the
sink every ``flush_seconds``; when the sink fails, the records stay buffered and are retried with
backoff. When the buffer is full, the oldest records are dropped from memory and counted (a metric),
because a service that stops answering to protect its logs helps nobody. A record the sink refuses
for its content (it would be refused forever) becomes a dead letter; the rest of its batch is stored.
With a :class:`~pigeonhole.prediction_log.journal.Journal`, every record is on disk before its answer
leaves: what memory dropped is stored from the journal once the sink is back, and a recorder that
starts replays what a killed process had not stored.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from pigeonhole.prediction_log.journal import Journal
from pigeonhole.prediction_log.records import DeadLetterRecord, PredictionRecord
from pigeonhole.prediction_log.sinks import LogSink, RecordRejected, SinkUnavailable

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 10.0
WRITE_BATCH = 2000


class PredictionRecorder:
    def __init__(
        self,
        sink: LogSink,
        max_buffered: int,
        flush_seconds: float,
        on_dropped: Callable[[int], None] = lambda n: None,
        journal: Journal | None = None,
    ) -> None:
        self.sink = sink
        self.flush_seconds = flush_seconds
        self.journal = journal
        self._buffer: deque[PredictionRecord] = deque(journal.adopt_orphans() if journal else ())
        self._max = max_buffered
        self._lock = threading.Lock()
        self._on_dropped = on_dropped
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prediction-recorder", daemon=True)
        self.dropped = 0
        self.failures = 0
        self.dead_letters = 0
        self.unjournaled = 0
        self._dropped_since_rotation = False  # the buffer dropped records of the current segment
        self._replay_covered = False  # ...of the older segments: store those again before deleting them

    def start(self) -> PredictionRecorder:
        self._thread.start()
        return self

    def record(self, *records: PredictionRecord) -> None:
        """Journal and queue records; never blocks on the sink."""
        with self._lock:
            if self.journal is not None:
                try:
                    self.journal.append(*records)
                # a full disk costs these records their crash safety, not their answers
                except OSError as exc:
                    self.unjournaled += len(records)
                    log.warning("%d prediction(s) not journaled: %s", len(records), exc)
            self._buffer.extend(records)
            overflow = len(self._buffer) - self._max
            for _ in range(max(overflow, 0)):
                self._buffer.popleft()
            self._dropped_since_rotation |= overflow > 0
        if overflow > 0:
            self.dropped += overflow
            self._on_dropped(overflow)

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def flush(self) -> bool:
        """Write what is buffered; True when the buffer is empty afterwards."""
        if self.journal is not None:
            with self._lock:
                self.journal.rotate()  # what is buffered now is all in the older segments
                self._replay_covered |= self._dropped_since_rotation
                self._dropped_since_rotation = False
        while True:
            with self._lock:
                batch = [self._buffer.popleft() for _ in range(min(WRITE_BATCH, len(self._buffer)))]
            if not batch:
                return self._forget_covered()
            try:
                self._write(batch)
            except (SinkUnavailable, OSError) as exc:
                with self._lock:
                    self._buffer.extendleft(reversed(batch))
                self.failures += 1
                log.warning("prediction log sink unavailable (%s); %d records buffered", exc, self.pending)
                return False

    def _forget_covered(self) -> bool:
        """The buffer is drained: the older segments can go, once any record memory dropped is stored."""
        if self.journal is None:
            return True
        if self._replay_covered:
            records = self.journal.covered_records()
            try:
                for start in range(0, len(records), WRITE_BATCH):
                    self._write(records[start : start + WRITE_BATCH])
            except (SinkUnavailable, OSError) as exc:
                log.warning(
                    "prediction log sink unavailable (%s); the journal keeps the dropped records", exc
                )
                return False
            log.warning("stored %d journaled records again after the buffer had dropped some", len(records))
            self._replay_covered = False
        self.journal.forget_covered()
        return True

    def _write(self, batch: list[PredictionRecord]) -> None:
        try:
            self.sink.write_predictions(batch)
        except RecordRejected:
            self._write_one_by_one(batch)

    def _write_one_by_one(self, batch: list[PredictionRecord]) -> None:
        """A batch the sink refused for some record's content: store every other record, and keep each
        refused one as a dead letter with the reason, so one bad record never stalls the log."""
        refused = []
        for record in batch:
            try:
                self.sink.write_predictions([record])
            except RecordRejected as exc:
                refused.append(DeadLetterRecord.of(record, str(exc)))
        if not refused:  # the refusal was the batch's, not a record's: nothing to keep
            return
        self.sink.write_dead_letters(refused)
        self.dead_letters += len(refused)
        log.error("%d prediction record(s) refused by the sink, kept as dead letters", len(refused))

    def _run(self) -> None:
        backoff = self.flush_seconds
        while not self._stop.wait(backoff):
            backoff = self.flush_seconds if self.flush() else min(backoff * 2, MAX_BACKOFF_SECONDS)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread and make a last attempt to write what is left."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        deadline = time.monotonic() + timeout
        while not self.flush() and time.monotonic() < deadline:
            time.sleep(0.2)
        if self.pending:
            log.error(
                "%d prediction records could not be written before shutdown%s",
                self.pending,
                "; the journal keeps them for the next start" if self.journal else "",
            )
        if self.journal is not None:
            self.journal.close(drained=not self.pending)
