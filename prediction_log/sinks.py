"""Where predictions and feedback are stored, behind one interface that writers and readers share.

Two sinks: date-partitioned files under the state folder (the embedded default: Parquet for the
batched prediction records, written atomically; append-only JSON lines with fsync for feedback, which
must be durable before the service acknowledges it) and PostgreSQL (a table per record kind, created
on first use). Columns and tables come from the record types in
:mod:`pigeonhole.prediction_log.records`. A sink tells a store that is down (:class:`SinkUnavailable`:
retry) from a record it will never take (:class:`RecordRejected`: keep it as a dead letter).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import psycopg
import pyarrow as pa
from psycopg.types.json import Jsonb

from pigeonhole.core.settings import LogSinkKind, Settings
from pigeonhole.prediction_log.records import (
    DEAD_LETTER_COLUMNS,
    FEEDBACK_COLUMNS,
    LIST_COLUMNS,
    PREDICTION_COLUMNS,
    DeadLetterRecord,
    FeedbackRecord,
    PredictionRecord,
    Record,
    as_row,
    sql_columns,
)

log = logging.getLogger(__name__)


class SinkUnavailable(RuntimeError):
    """The store cannot take writes right now (database down, disk full): worth retrying."""


class RecordRejected(ValueError):
    """The store refuses a record's content (it would refuse it forever): not worth retrying.
    The writer stores the rest and keeps the refused record as a dead letter."""


class LogSink(Protocol):
    def write_predictions(self, records: list[PredictionRecord]) -> None: ...

    def write_feedback(self, record: FeedbackRecord) -> None: ...

    def write_dead_letters(self, letters: list[DeadLetterRecord]) -> None: ...

    def read_predictions(
        self, since: datetime, until: datetime, columns: list[str] | None = None
    ) -> pd.DataFrame: ...

    def read_feedback(self, since: datetime, until: datetime) -> pd.DataFrame: ...

    def read_dead_letters(self, since: datetime, until: datetime) -> pd.DataFrame: ...

    def stored_twice(self, since: datetime, until: datetime) -> int:
        """Prediction records stored more than once (a journal replay), which readers show once."""
        ...

    def close(self) -> None: ...


def _window(frame: pd.DataFrame, columns: list[str], since: datetime, until: datetime) -> pd.DataFrame:
    if frame.empty:
        return pd.DataFrame(columns=columns)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True, format="ISO8601")
    return frame[(frame["ts"] >= since) & (frame["ts"] < until)].sort_values("ts").reset_index(drop=True)


def _days(since: datetime, until: datetime) -> list[str]:
    return [d.strftime("%Y-%m-%d") for d in pd.date_range(since.date(), until.date(), freq="D")]


def _append_line(path: Path, line: str) -> None:
    """Append one whole line durably, or nothing: a failed write (a full disk) is cut back off, and a
    torn tail left by a crash is ended first, so it can never swallow the acknowledged line after it."""
    try:
        data = line.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RecordRejected(f"text that UTF-8 cannot encode: {exc.reason}") from exc
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except OSError:
            os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)


def _read_lines(path: Path) -> list[dict[str, Any]]:
    """Every whole JSON line of ``path``; lines a crash tore are skipped and reported."""
    rows, torn = [], 0
    with path.open("rb") as handle:
        for raw in handle:
            try:
                rows.append(json.loads(raw))
            except ValueError:
                torn += 1
    if torn:
        log.warning("skipped %d unreadable line(s) of %s (a torn write)", torn, path)
    return rows


def _read_parquet(path: Path, columns: list[str] | None) -> pd.DataFrame | None:
    try:
        return pd.read_parquet(path, columns=columns)
    except (OSError, ValueError, pa.ArrowException) as exc:
        log.warning("skipped unreadable file %s: %s", path, exc)
        return None


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileSink:
    """``<root>/predictions/date=YYYY-MM-DD/*.parquet``, ``<root>/feedback/date=YYYY-MM-DD/*.jsonl`` and
    ``<root>/dead-letters/date=YYYY-MM-DD/*.jsonl``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._append_lock = threading.Lock()

    def _partition(self, kind: str, ts: datetime) -> Path:
        folder = self.root / kind / f"date={ts:%Y-%m-%d}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def write_predictions(self, records: list[PredictionRecord]) -> None:
        by_day: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            by_day.setdefault(f"{record.ts:%Y-%m-%d}", []).append(as_row(record))
        try:
            for day, rows in by_day.items():
                folder = self._partition("predictions", datetime.fromisoformat(day))
                name = f"part-{datetime.now(UTC):%H%M%S%f}-{uuid.uuid4().hex[:8]}.parquet"
                frame = pd.DataFrame.from_records(rows, columns=PREDICTION_COLUMNS)
                temporary = folder / f".{name}.tmp"
                try:
                    frame.to_parquet(temporary, index=False)
                except (UnicodeEncodeError, pa.ArrowException) as exc:
                    temporary.unlink(missing_ok=True)
                    raise RecordRejected(str(exc)) from exc
                with temporary.open("rb") as handle:
                    os.fsync(handle.fileno())
                os.replace(temporary, folder / name)  # readers never see half a file
                _fsync_folder(folder)
        except OSError as exc:
            raise SinkUnavailable(str(exc)) from exc

    def write_feedback(self, record: FeedbackRecord) -> None:
        self._append("feedback", record.ts, json.dumps(as_row(record), default=datetime.isoformat))

    def write_dead_letters(self, letters: list[DeadLetterRecord]) -> None:
        for letter in letters:
            self._append("dead-letters", letter.ts, json.dumps(as_row(letter), default=datetime.isoformat))

    def _append(self, kind: str, ts: datetime, line: str) -> None:
        try:
            path = self._partition(kind, ts) / f"{kind}-{os.getpid()}.jsonl"
            with self._append_lock:
                _append_line(path, line + "\n")
        except OSError as exc:
            raise SinkUnavailable(str(exc)) from exc

    def _read(self, kind: str, pattern: str, since: datetime, until: datetime) -> list[Path]:
        return [
            p for day in _days(since, until) for p in sorted((self.root / kind / f"date={day}").glob(pattern))
        ]

    def read_predictions(
        self, since: datetime, until: datetime, columns: list[str] | None = None
    ) -> pd.DataFrame:
        """The window's predictions; ``columns`` (with ``ts``) reads only those, to save memory."""
        wanted = columns or PREDICTION_COLUMNS
        # request_id too: a replayed journal may have stored a record twice, readers see it once
        frame = self._stored_predictions(list(dict.fromkeys([*wanted, "request_id"])), since, until)
        return frame.drop_duplicates("request_id")[wanted]

    def _stored_predictions(self, columns: list[str], since: datetime, until: datetime) -> pd.DataFrame:
        """Every stored row of the window, duplicates included."""
        files = self._read("predictions", "*.parquet", since, until)
        parts = [part for part in (_read_parquet(p, columns) for p in files) if part is not None]
        return _window(
            pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(), columns, since, until
        )

    def read_feedback(self, since: datetime, until: datetime) -> pd.DataFrame:
        return self._read_jsonl("feedback", FEEDBACK_COLUMNS, since, until)

    def read_dead_letters(self, since: datetime, until: datetime) -> pd.DataFrame:
        return self._read_jsonl("dead-letters", DEAD_LETTER_COLUMNS, since, until)

    def _read_jsonl(self, kind: str, columns: list[str], since: datetime, until: datetime) -> pd.DataFrame:
        rows = [row for p in self._read(kind, "*.jsonl", since, until) for row in _read_lines(p)]
        # columns: a field added since a line was written reads as missing, never as a KeyError
        return _window(pd.DataFrame.from_records(rows, columns=columns), columns, since, until)

    def stored_twice(self, since: datetime, until: datetime) -> int:
        return int(
            self._stored_predictions(["request_id", "ts"], since, until)["request_id"].duplicated().sum()
        )

    def close(self) -> None:
        return None


def _table_sql(
    table: str,
    record_type: type[Record],
    primary_key: str,
    extra_columns: tuple[str, ...] = (),
) -> str:
    columns = [
        *extra_columns,
        *(
            f"{name} {sql}{'' if nullable else ' NOT NULL'}"
            for name, sql, nullable in sql_columns(record_type)
        ),
        f"PRIMARY KEY ({primary_key})",
    ]
    # a table made by an older release gains the fields added since (nullable: its rows lack them)
    added = "".join(
        f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {name} {sql};\n"
        for name, sql, _ in sql_columns(record_type)
    )
    return (
        f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(columns)});\n"
        + added
        + f"CREATE INDEX IF NOT EXISTS {table}_ts ON {table} (ts);\n"
    )


# predictions are keyed by request id, so a retried batch is not doubled; the others get a serial id
SCHEMA_SQL = (
    _table_sql("predictions", PredictionRecord, "request_id")
    + _table_sql("feedback", FeedbackRecord, "id", ("id bigserial",))
    + _table_sql("dead_letters", DeadLetterRecord, "id", ("id bigserial",))
)
TABLES = {
    "predictions": PREDICTION_COLUMNS,
    "feedback": FEEDBACK_COLUMNS,
    "dead_letters": DEAD_LETTER_COLUMNS,
}
SEQUENCES = ["feedback_id_seq", "dead_letters_id_seq"]


def migrate(conn: psycopg.Connection[Any]) -> bool:
    """Create or upgrade the tables unless they already have every column; True when it changed them.

    Checking first lets a role that may only insert (the deployed service's) use tables its owner made,
    while a local run's single role creates them on first use.
    """
    present = set(
        conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ANY(%s)",
            (list(TABLES),),
        ).fetchall()
    )
    if {(table, column) for table, columns in TABLES.items() for column in columns} <= present:
        return False
    try:
        with conn.transaction():
            conn.execute(SCHEMA_SQL)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise SinkUnavailable(
            "the log's tables are missing or out of date, and this role may not change them: "
            "the database's owner runs `pigeonhole db setup`"
        ) from exc
    return True


# a hung server or a dead peer must not hold the sink's lock for ever: TCP keepalives notice a peer that
# vanished within about a minute, and no statement may run longer than ten seconds
CONNECTION_OPTIONS: dict[str, Any] = {
    "connect_timeout": 3,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "options": "-c statement_timeout=10000",
}


class PostgresSink:
    """A table per record kind, created on first use when the role may (else by `pigeonhole db setup`).
    Reconnects after the server restarts."""

    def __init__(self, url: str) -> None:
        self.url = url.replace("postgresql+psycopg://", "postgresql://")
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            conn = psycopg.connect(self.url, autocommit=False, **CONNECTION_OPTIONS)
            try:
                with conn.transaction():
                    migrate(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _run(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        with self._lock:
            try:
                conn = self._connection()
                with conn.transaction(), conn.cursor() as cursor:
                    cursor.executemany(sql, rows)
            except (psycopg.DataError, psycopg.IntegrityError, UnicodeEncodeError) as exc:
                raise RecordRejected(str(exc).strip()) from exc  # the content; the connection is fine
            except psycopg.Error as exc:
                if self._conn is not None:
                    self._conn.close()
                raise SinkUnavailable(str(exc).strip()) from exc

    def write_predictions(self, records: list[PredictionRecord]) -> None:
        columns = ", ".join(PREDICTION_COLUMNS)
        marks = ", ".join(["%s"] * len(PREDICTION_COLUMNS))
        rows = [
            tuple(Jsonb(value) if name in LIST_COLUMNS else value for name, value in as_row(r).items())
            for r in records
        ]
        # ON CONFLICT: a retried batch that had reached the server before a failure is not doubled (no
        # conflict target: naming one needs SELECT on it, which the service's insert-only role lacks)
        self._run(f"INSERT INTO predictions ({columns}) VALUES ({marks}) ON CONFLICT DO NOTHING", rows)

    def write_feedback(self, record: FeedbackRecord) -> None:
        self._insert("feedback", FEEDBACK_COLUMNS, [record])

    def write_dead_letters(self, letters: list[DeadLetterRecord]) -> None:
        self._insert("dead_letters", DEAD_LETTER_COLUMNS, letters)

    def _insert(
        self, table: str, columns: list[str], records: list[FeedbackRecord] | list[DeadLetterRecord]
    ) -> None:
        marks = ", ".join(["%s"] * len(columns))
        self._run(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
            [tuple(as_row(record).values()) for record in records],
        )

    def _select(self, table: str, columns: list[str], since: datetime, until: datetime) -> pd.DataFrame:
        with self._lock:
            try:
                conn = self._connection()
                with conn.transaction(), conn.cursor() as cursor:
                    cursor.execute(
                        f"SELECT {', '.join(columns)} FROM {table} WHERE ts >= %s AND ts < %s ORDER BY ts",
                        (since, until),
                    )
                    rows = cursor.fetchall()
            except psycopg.Error as exc:
                if self._conn is not None:
                    self._conn.close()
                raise SinkUnavailable(str(exc).strip()) from exc
        frame = pd.DataFrame(rows, columns=columns)
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
        return frame

    def read_predictions(
        self, since: datetime, until: datetime, columns: list[str] | None = None
    ) -> pd.DataFrame:
        return self._select("predictions", columns or PREDICTION_COLUMNS, since, until)

    def read_feedback(self, since: datetime, until: datetime) -> pd.DataFrame:
        return self._select("feedback", FEEDBACK_COLUMNS, since, until)

    def read_dead_letters(self, since: datetime, until: datetime) -> pd.DataFrame:
        return self._select("dead_letters", DEAD_LETTER_COLUMNS, since, until)

    def stored_twice(self, since: datetime, until: datetime) -> int:
        return 0  # the request id is the table's primary key

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


def open_sink(settings: Settings) -> LogSink:
    """The sink the settings choose; the postgres sink needs ``log_database_url``."""
    if settings.log_sink is LogSinkKind.postgres:
        if not settings.log_database_url:
            raise ValueError("PIGEONHOLE_LOG_SINK=postgres needs PIGEONHOLE_LOG_DATABASE_URL")
        return PostgresSink(settings.log_database_url)
    return FileSink(settings.log_dir)
