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
import shutil
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from psycopg import sql
from psycopg.types.json import Jsonb

from pigeonhole.core.settings import LogSinkKind, Settings
from pigeonhole.prediction_log.records import (
    DEAD_LETTER_COLUMNS,
    FEEDBACK_COLUMNS,
    LIST_COLUMNS,
    PREDICTION_COLUMNS,
    PREDICTION_SCHEMA,
    DeadLetterRecord,
    FeedbackRecord,
    PredictionRecord,
    Record,
    Variant,
    as_json,
    as_row,
    sql_columns,
)

log = logging.getLogger(__name__)


class SinkUnavailable(RuntimeError):
    """The store cannot take writes right now (database down, disk full): worth retrying."""


class RecordRejected(ValueError):
    """The store refuses a record's content (it would refuse it forever): not worth retrying.
    The writer stores the rest and keeps the refused record as a dead letter."""


T = TypeVar("T")


@dataclass(frozen=True)
class Sample:
    """At most the asked-for number of a window's answered predictions (shadow scores left out), drawn
    uniformly without replacement, repeatably for a seed; and how many the window holds."""

    frame: pd.DataFrame
    total: int


class LogSink(Protocol):
    def write_predictions(self, records: list[PredictionRecord]) -> None: ...

    def write_feedback(self, record: FeedbackRecord) -> None: ...

    def write_dead_letters(self, letters: list[DeadLetterRecord]) -> None: ...

    def read_predictions(
        self, since: datetime, until: datetime, columns: list[str] | None = None
    ) -> pd.DataFrame: ...

    def sample_predictions(
        self, since: datetime, until: datetime, columns: list[str], rows: int, seed: int
    ) -> Sample:
        """Drawn inside the store: memory follows ``rows``, not the window."""
        ...

    def maintain(self, today: date, retention_days: int) -> list[str]:
        """Drop predictions older than ``retention_days`` whole days (and prepare days ahead where the
        store needs it); what it did."""
        ...

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


def _columns(records: list[PredictionRecord]) -> pa.Table:
    """Built column by column: a third of the time of a DataFrame from row dicts, on every flush."""
    return pa.Table.from_pydict(
        {name: [getattr(r, name) for r in records] for name in PREDICTION_COLUMNS}, schema=PREDICTION_SCHEMA
    )


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
        by_day: dict[str, list[PredictionRecord]] = {}
        for record in records:
            by_day.setdefault(f"{record.ts:%Y-%m-%d}", []).append(record)
        try:
            for day, batch in by_day.items():
                folder = self._partition("predictions", datetime.fromisoformat(day))
                name = f"part-{datetime.now(UTC):%H%M%S%f}-{uuid.uuid4().hex[:8]}.parquet"
                temporary = folder / f".{name}.tmp"
                try:
                    pq.write_table(_columns(batch), temporary)
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
        self._append("feedback", record.ts, as_json(record))

    def write_dead_letters(self, letters: list[DeadLetterRecord]) -> None:
        for letter in letters:
            self._append("dead-letters", letter.ts, as_json(letter))

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

    def sample_predictions(
        self, since: datetime, until: datetime, columns: list[str], rows: int, seed: int
    ) -> Sample:
        """Bottom-k by a seeded hash of the request id, file by file: uniform, repeatable, and a
        replayed record's copies hash alike, so one of them at most is kept."""
        wanted = list(dict.fromkeys([*columns, "request_id", "ts", "variant"]))
        kept, total = pd.DataFrame(), 0
        for path in self._read("predictions", "*.parquet", since, until):
            part = _read_parquet(path, wanted)
            if part is None:
                continue
            part = _window(part, wanted, since, until)
            part = part[part["variant"] != Variant.shadow.value]
            total += len(part)
            draw = pd.util.hash_pandas_object(part["request_id"], index=False, hash_key=f"{seed:016d}"[-16:])
            merged = pd.concat([kept, part.assign(draw=draw.to_numpy())], ignore_index=True)
            kept = merged.drop_duplicates("request_id").nsmallest(rows, "draw")
        if kept.empty:
            return Sample(pd.DataFrame(columns=columns), total)
        return Sample(kept.sort_values("ts")[columns].reset_index(drop=True), total)

    def maintain(self, today: date, retention_days: int) -> list[str]:
        cutoff, done = today - timedelta(days=retention_days), []
        for folder in sorted((self.root / "predictions").glob("date=*")):
            try:
                day = date.fromisoformat(folder.name.removeprefix("date="))
            except ValueError:
                continue
            if day < cutoff:
                shutil.rmtree(folder)
                done.append(f"{folder} deleted (older than {retention_days} days)")
        return done

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


def _column_sql(record_type: type[Record]) -> list[str]:
    return [
        f"{name} {sql}{'' if nullable else ' NOT NULL'}" for name, sql, nullable in sql_columns(record_type)
    ]


def _table_sql(
    table: str,
    record_type: type[Record],
    primary_key: str,
    extra_columns: tuple[str, ...] = (),
    partitioned: bool = False,
) -> str:
    columns = [*extra_columns, *_column_sql(record_type), f"PRIMARY KEY ({primary_key})"]
    # a table made by an older release gains the fields added since (nullable: its rows lack them)
    added = "".join(
        f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {name} {sql};\n"
        for name, sql, _ in sql_columns(record_type)
    )
    partitions = (
        f" PARTITION BY RANGE (ts);\nCREATE TABLE IF NOT EXISTS {table}_default PARTITION OF {table} DEFAULT"
        if partitioned
        else ""
    )
    return (
        f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(columns)}){partitions};\n"
        + added
        + f"CREATE INDEX IF NOT EXISTS {table}_ts ON {table} (ts);\n"
    )


# predictions, nearly all of the log, are partitioned by day (see maintain_partitions) and keyed by
# request id and time, so a retried batch is not doubled; the others get a serial id
SCHEMA_SQL = (
    _table_sql("predictions", PredictionRecord, "request_id, ts", partitioned=True)
    + _table_sql("feedback", FeedbackRecord, "id", ("id bigserial",))
    + _table_sql("dead_letters", DeadLetterRecord, "id", ("id bigserial",))
)
TABLES = {
    "predictions": PREDICTION_COLUMNS,
    "feedback": FEEDBACK_COLUMNS,
    "dead_letters": DEAD_LETTER_COLUMNS,
}
SEQUENCES = ["feedback_id_seq", "dead_letters_id_seq"]
UNPARTITIONED = "predictions_unpartitioned"  # an older release's table, while its rows move over
# a batch arrives here by COPY, then joins the table skipping rows a retry already stored (COPY alone
# cannot skip them); a temporary table, so the insert-only role needs no other grant than TEMPORARY
INCOMING_SQL = (
    f"CREATE TEMPORARY TABLE IF NOT EXISTS incoming_predictions ({', '.join(_column_sql(PredictionRecord))}) "
    "ON COMMIT DELETE ROWS"
)
PARTITIONS_AHEAD = 7  # days made in advance, so a missed maintenance run never sends rows to the default


def migrate(conn: psycopg.Connection[Any]) -> bool:
    """Create or upgrade the tables unless they already have every column and predictions are
    partitioned; True when it changed them.

    Checking first lets a role that may only insert (the deployed service's) use tables its owner made,
    while a local run's single role creates them on first use. An older release's unpartitioned
    predictions move into the partitioned table, in the same transaction.
    """
    present = set(
        conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ANY(%s)",
            (list(TABLES),),
        ).fetchall()
    )
    kind = conn.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass('predictions')").fetchone()
    partitioned = kind is not None and kind[0] == "p"
    if (
        partitioned
        and {(table, column) for table, columns in TABLES.items() for column in columns} <= present
    ):
        return False
    try:
        with conn.transaction():
            if kind is not None and not partitioned:
                conn.execute(
                    f"ALTER TABLE predictions RENAME TO {UNPARTITIONED}; "
                    f"ALTER INDEX IF EXISTS predictions_ts RENAME TO {UNPARTITIONED}_ts; "
                    f"ALTER TABLE {UNPARTITIONED} RENAME CONSTRAINT predictions_pkey TO {UNPARTITIONED}_pkey"
                )
            conn.execute(SCHEMA_SQL)
            maintain_partitions(conn, datetime.now(UTC).date())
            if kind is not None and not partitioned:
                _move_unpartitioned(conn, {name for table, name in present if table == "predictions"})
    except psycopg.errors.InsufficientPrivilege as exc:
        raise SinkUnavailable(
            "the log's tables are missing or out of date, and this role may not change them: "
            "the database's owner runs `pigeonhole db setup`"
        ) from exc
    return True


def _move_unpartitioned(conn: psycopg.Connection[Any], columns: set[str]) -> None:
    """An older release's rows into the partitioned table; fields added since stay empty for them."""
    for name in set(PREDICTION_COLUMNS) - columns:
        conn.execute(f"ALTER TABLE predictions ALTER COLUMN {name} DROP NOT NULL")
    names = ", ".join(sorted(columns))
    conn.execute(
        f"INSERT INTO predictions ({names}) SELECT {names} FROM {UNPARTITIONED} ON CONFLICT DO NOTHING; "
        f"DROP TABLE {UNPARTITIONED}"
    )


def _partition(day: date) -> str:
    return f"predictions_{day:%Y%m%d}"


def _partition_day(name: str) -> date | None:
    """The day a partition made by :func:`maintain_partitions` holds; None for any other table."""
    try:
        return datetime.strptime(name.removeprefix("predictions_"), "%Y%m%d").date()
    except ValueError:
        return None


def _day_range(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


def maintain_partitions(
    conn: psycopg.Connection[Any], today: date, retention_days: int | None = None
) -> list[str]:
    """Give each day from ``today`` to ``PARTITIONS_AHEAD`` days on a partition of its own, and each
    earlier day whose rows fell into the default partition (a missed run, a slow clock); with
    ``retention_days``, drop the days before that many whole days ago. What it did, in order.

    Dropping a day's partition is instant and leaves no dead rows to vacuum, unlike a DELETE.
    """
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('pigeonhole.predictions partitions'))")
    conn.execute(f"SET LOCAL statement_timeout = '{LONG_STATEMENT}'")
    existing = {
        name
        for (name,) in conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'predictions'::regclass"
        )
    }
    cutoff = today - timedelta(days=retention_days) if retention_days else None
    strays = {
        day
        for (day,) in conn.execute(
            "SELECT DISTINCT (ts AT TIME ZONE 'UTC')::date FROM predictions_default WHERE ts >= %s",
            (_day_range(cutoff)[0] if cutoff else datetime.min.replace(tzinfo=UTC),),
        )
    }
    days = {today + timedelta(days=ahead) for ahead in range(PARTITIONS_AHEAD + 1)} | strays
    done = []
    for day in sorted(d for d in days if _partition(d) not in existing):
        start, end = _day_range(day)
        columns = ", ".join(PREDICTION_COLUMNS)
        # rows of that day already in the default move over first: attaching checks it holds none
        conn.execute(
            f"CREATE TABLE {_partition(day)} (LIKE predictions INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        )
        moved = conn.execute(
            f"WITH moved AS (DELETE FROM predictions_default WHERE ts >= %(start)s AND ts < %(end)s "
            f"RETURNING {columns}) INSERT INTO {_partition(day)} ({columns}) SELECT {columns} FROM moved",
            {"start": start, "end": end},
        ).rowcount
        conn.execute(  # DDL takes no parameters: the bounds are quoted client-side
            sql.SQL("ALTER TABLE predictions ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
                sql.Identifier(_partition(day)), sql.Literal(start), sql.Literal(end)
            )
        )
        done.append(
            f"partition {_partition(day)} created" + (f" ({moved:,} rows moved in)" if moved > 0 else "")
        )
    if cutoff is not None:
        for name in sorted(existing):
            day = _partition_day(name)
            if day is not None and day < cutoff:
                conn.execute(f"DROP TABLE {name}")
                done.append(f"partition {name} dropped (older than {retention_days} days)")
        expired = conn.execute(
            "DELETE FROM predictions_default WHERE ts < %s", (_day_range(cutoff)[0],)
        ).rowcount
        if expired > 0:
            done.append(f"{expired:,} rows older than {retention_days} days deleted from predictions_default")
    return done


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
LONG_STATEMENT = "10min"  # reading a whole window back, or moving a day between partitions


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

    def _work(self, work: Callable[[psycopg.Cursor[Any]], T]) -> T:
        """``work`` in one transaction; a failure tells the record's content from the server's state."""
        with self._lock:
            try:
                conn = self._connection()
                with conn.transaction(), conn.cursor() as cursor:
                    return work(cursor)
            except (psycopg.DataError, psycopg.IntegrityError, UnicodeEncodeError) as exc:
                raise RecordRejected(str(exc).strip()) from exc  # the content; the connection is fine
            except psycopg.Error as exc:
                if self._conn is not None:
                    self._conn.close()
                raise SinkUnavailable(str(exc).strip()) from exc

    def write_predictions(self, records: list[PredictionRecord]) -> None:
        columns = ", ".join(PREDICTION_COLUMNS)
        rows = [
            tuple(Jsonb(value) if name in LIST_COLUMNS else value for name, value in as_row(r).items())
            for r in records
        ]

        def copy(cursor: psycopg.Cursor[Any]) -> None:
            cursor.execute(INCOMING_SQL)
            with cursor.copy(f"COPY incoming_predictions ({columns}) FROM STDIN") as incoming:
                for row in rows:
                    incoming.write_row(row)
            # ON CONFLICT: a retried batch that had reached the server before a failure is not doubled
            # (no conflict target: naming one needs SELECT on it, which the insert-only role lacks)
            cursor.execute(
                f"INSERT INTO predictions ({columns}) SELECT {columns} FROM incoming_predictions "
                "ON CONFLICT DO NOTHING"
            )

        self._work(copy)

    def write_feedback(self, record: FeedbackRecord) -> None:
        self._insert("feedback", FEEDBACK_COLUMNS, [record])

    def write_dead_letters(self, letters: list[DeadLetterRecord]) -> None:
        self._insert("dead_letters", DEAD_LETTER_COLUMNS, letters)

    def _insert(
        self, table: str, columns: list[str], records: list[FeedbackRecord] | list[DeadLetterRecord]
    ) -> None:
        marks = ", ".join(["%s"] * len(columns))
        rows = [tuple(as_row(record).values()) for record in records]
        self._work(
            lambda cursor: cursor.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows
            )
        )

    def _select(self, table: str, columns: list[str], since: datetime, until: datetime) -> pd.DataFrame:
        def select(cursor: psycopg.Cursor[Any]) -> list[tuple[Any, ...]]:
            cursor.execute(f"SET LOCAL statement_timeout = '{LONG_STATEMENT}'")
            cursor.execute(
                f"SELECT {', '.join(columns)} FROM {table} WHERE ts >= %s AND ts < %s ORDER BY ts",
                (since, until),
            )
            return cursor.fetchall()

        frame = pd.DataFrame(self._work(select), columns=columns)
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
        return frame

    def sample_predictions(
        self, since: datetime, until: datetime, columns: list[str], rows: int, seed: int
    ) -> Sample:
        """Bernoulli sampling in the server (each row kept with the same chance, repeatably for a
        seed), at a rate that leaves a margin over ``rows``; only the sample crosses the network."""
        where = "ts >= %(since)s AND ts < %(until)s AND variant <> %(shadow)s"
        params = {"since": since, "until": until, "shadow": Variant.shadow.value}

        def sample(cursor: psycopg.Cursor[Any]) -> tuple[int, list[tuple[Any, ...]]]:
            cursor.execute(f"SET LOCAL statement_timeout = '{LONG_STATEMENT}'")
            (total,) = cursor.execute(
                f"SELECT count(*) FROM predictions WHERE {where}", params
            ).fetchone() or (0,)
            percent = 100.0 * (rows + 5 * rows**0.5 + 10) / max(total, 1)  # five deviations short: ~3e-7
            sampled = "" if percent >= 100 else f" TABLESAMPLE BERNOULLI ({percent:.6f}) REPEATABLE ({seed})"
            cursor.execute(f"SELECT {', '.join(columns)} FROM predictions{sampled} WHERE {where}", params)
            return total, cursor.fetchall()

        total, found = self._work(sample)
        frame = pd.DataFrame(found, columns=columns)
        if len(frame) > rows:
            frame = frame.sample(n=rows, random_state=seed)
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
        return Sample(frame.sort_values("ts").reset_index(drop=True), total)

    def maintain(self, today: date, retention_days: int) -> list[str]:
        return self._work(lambda cursor: maintain_partitions(cursor.connection, today, retention_days))

    def read_predictions(
        self, since: datetime, until: datetime, columns: list[str] | None = None
    ) -> pd.DataFrame:
        return self._select("predictions", columns or PREDICTION_COLUMNS, since, until)

    def read_feedback(self, since: datetime, until: datetime) -> pd.DataFrame:
        return self._select("feedback", FEEDBACK_COLUMNS, since, until)

    def read_dead_letters(self, since: datetime, until: datetime) -> pd.DataFrame:
        return self._select("dead_letters", DEAD_LETTER_COLUMNS, since, until)

    def stored_twice(self, since: datetime, until: datetime) -> int:
        return 0  # the primary key holds the request id (and its time, the partition key)

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
