"""Both log sinks store and read back by time window; PostgreSQL survives a real server restart."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from pigeonhole.prediction_log.recorder import PredictionRecorder
from pigeonhole.prediction_log.records import (
    FEEDBACK_COLUMNS,
    DeadLetterRecord,
    FeedbackRecord,
    PredictionRecord,
    Variant,
)
from pigeonhole.prediction_log.sinks import FileSink, LogSink, PostgresSink, RecordRejected, SinkUnavailable
from pigeonhole.prediction_log.window import labelled_listings
from tests.serving.conftest import start_server, stop_server


def _prediction(ts: datetime) -> PredictionRecord:
    return PredictionRecord(
        request_id=uuid.uuid4().hex,
        ts=ts,
        listing_id="l1",
        title="sofa",
        description=None,
        price=10.0,
        top_category="A",
        top_score=0.9,
        categories=["A", "B"],
        scores=[0.9, 0.05],
        abstained=False,
        model_version="1",
        variant=Variant.control,
        latency_ms=1.5,
    )


def _feedback(ts: datetime) -> FeedbackRecord:
    return FeedbackRecord(
        request_id=uuid.uuid4().hex,
        listing_id=None,
        title="Trek Marlin 5",
        description=None,
        price=None,
        top_category="A",
        top_score=0.8,
        chosen_category="A",
        accepted=True,
        variant=Variant.control,
        model_version="1",
        caller="web",
        ts=ts,
    )


@pytest.fixture(params=["files", "postgres"])
def sink(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LogSink]:
    if request.param == "files":
        yield FileSink(tmp_path / "logs")
        return
    store = PostgresSink(request.getfixturevalue("postgres_database"))
    yield store
    store.close()


def test_round_trip_by_time_window(sink: LogSink) -> None:
    now = datetime.now(UTC)
    old, recent = _prediction(now - timedelta(days=2)), _prediction(now - timedelta(minutes=5))
    sink.write_predictions([old, recent])
    sink.write_feedback(_feedback(now - timedelta(minutes=1)))
    window = sink.read_predictions(now - timedelta(hours=1), now)
    assert window["request_id"].tolist() == [recent.request_id]
    assert list(window.loc[0, "categories"]) == ["A", "B"] and window.loc[0, "top_score"] == 0.9
    assert len(sink.read_predictions(now - timedelta(days=3), now)) == 2
    assert len(sink.read_feedback(now - timedelta(hours=1), now)) == 1
    assert sink.read_predictions(now + timedelta(hours=1), now + timedelta(hours=2)).empty
    # the drift job reads only the columns it uses
    slim = sink.read_predictions(now - timedelta(hours=1), now, ["request_id", "ts", "title"])
    assert list(slim.columns) == ["request_id", "ts", "title"] and slim["title"].tolist() == [recent.title]


def test_the_drift_sample_is_drawn_in_the_store(sink: LogSink) -> None:
    """The drift job asks the store for a few thousand rows of a window of any size: uniform over the
    window (not its first rows), shadow scores left out, the same rows for the same seed, and the
    window's true size beside them."""
    now = datetime.now(UTC).replace(microsecond=0)
    since, until = now - timedelta(hours=2), now
    answered = [_prediction(since + timedelta(seconds=3 * i)) for i in range(2_400)]  # 2 hours, evenly
    shadow = [replace(_prediction(now - timedelta(minutes=5)), variant=Variant.shadow) for _ in range(300)]
    outside = [_prediction(until + timedelta(minutes=1)), _prediction(since - timedelta(minutes=1))]
    for start in range(0, len(answered), 800):  # the recorder's batches, several files or statements
        sink.write_predictions(answered[start : start + 800])
    sink.write_predictions(shadow + outside)

    sample = sink.sample_predictions(since, until, ["request_id", "ts", "variant"], 500, seed=0)
    assert sample.total == 2_400 and len(sample.frame) == 500
    assert set(sample.frame["request_id"]) <= {r.request_id for r in answered}
    first_hour = (sample.frame["ts"] < since + timedelta(hours=1)).sum()
    assert 200 <= first_hour <= 300, f"{first_hour} of 500 rows from the first of two hours"
    again = sink.sample_predictions(since, until, ["request_id", "ts", "variant"], 500, seed=0)
    other = sink.sample_predictions(since, until, ["request_id", "ts", "variant"], 500, seed=1)
    assert again.frame["request_id"].tolist() == sample.frame["request_id"].tolist()
    assert set(other.frame["request_id"]) != set(sample.frame["request_id"])
    whole = sink.sample_predictions(since, until, ["request_id", "ts"], 5_000, seed=0)
    assert len(whole.frame) == whole.total == 2_400 and list(whole.frame.columns) == ["request_id", "ts"]


def test_retention_deletes_old_predictions_and_keeps_feedback(sink: LogSink) -> None:
    now = datetime.now(UTC)
    expired, kept = _prediction(now - timedelta(days=40)), _prediction(now - timedelta(days=29))
    sink.write_predictions([expired, kept, _prediction(now)])
    sink.write_feedback(_feedback(now - timedelta(days=40)))
    done = sink.maintain(now.date(), retention_days=30)
    assert any("older than 30 days" in line for line in done), done
    stored = sink.read_predictions(now - timedelta(days=60), now + timedelta(minutes=1))
    assert expired.request_id not in set(stored["request_id"]) and kept.request_id in set(
        stored["request_id"]
    )
    assert len(stored) == 2
    assert len(sink.read_feedback(now - timedelta(days=60), now)) == 1, "feedback is retraining's labels"
    assert not any("older than" in line for line in sink.maintain(now.date(), retention_days=30))


@pytest.mark.postgres
def test_predictions_live_in_day_partitions_and_strays_move_to_theirs(postgres_database: str) -> None:
    """Each day is a partition (dropped whole by retention); a row that came before its day had one
    (a missed maintenance run) waits in the default partition and moves into its day later."""
    now = datetime.now(UTC)
    sink = PostgresSink(postgres_database)
    try:
        stray = _prediction(now - timedelta(days=12))
        sink.write_predictions([_prediction(now), stray])
        done = sink.maintain(now.date(), retention_days=30)
        stored = sink.read_predictions(now - timedelta(days=13), now + timedelta(minutes=1))
    finally:
        sink.close()
    day = f"predictions_{stray.ts:%Y%m%d}"
    assert f"partition {day} created (1 rows moved in)" in done and len(stored) == 2
    with psycopg.connect(postgres_database.replace("+psycopg", "")) as conn:
        counts = dict(
            conn.execute("SELECT tableoid::regclass::text, count(*) FROM predictions GROUP BY 1").fetchall()
        )
    assert counts == {f"predictions_{now:%Y%m%d}": 1, day: 1}


def _older_release(url: str, *statements: str) -> str:
    """A log table as an older release left it (made and filled by ``statements``); the libpq URL."""
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)
    return dsn


@pytest.mark.postgres
def test_an_older_releases_unpartitioned_predictions_move_over(postgres_database: str) -> None:
    dsn = _older_release(
        postgres_database,
        "CREATE TABLE predictions (request_id text PRIMARY KEY, ts timestamptz NOT NULL, title text, "
        "top_category text, variant text); CREATE INDEX predictions_ts ON predictions (ts)",
        "INSERT INTO predictions VALUES ('old', now(), 'sofa', 'A', 'control')",
    )
    sink = PostgresSink(postgres_database)
    try:
        sink.write_predictions([_prediction(datetime.now(UTC))])
        stored = sink.read_predictions(datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC))
    finally:
        sink.close()
    assert len(stored) == 2 and "old" in set(stored["request_id"])
    with psycopg.connect(dsn) as conn:
        kind = conn.execute("SELECT relkind FROM pg_class WHERE relname = 'predictions'").fetchone()
    assert kind == ("p",)


@pytest.mark.postgres
def test_a_log_table_of_an_older_release_gains_the_new_fields(postgres_database: str) -> None:
    """Upgrading the service must not stop feedback: the old table gets the caller column."""
    _older_release(
        postgres_database,
        "CREATE TABLE feedback (id bigserial PRIMARY KEY, request_id text, listing_id text, "
        "chosen_category text NOT NULL, accepted boolean, variant text, model_version text, "
        "ts timestamptz NOT NULL)",
        "INSERT INTO feedback (chosen_category, ts) VALUES ('A', now())",
    )
    sink = PostgresSink(postgres_database)
    try:
        sink.write_feedback(_feedback(datetime.now(UTC)))
        stored = sink.read_feedback(datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC))
    finally:
        sink.close()
    assert len(stored) == 2 and stored["caller"].tolist()[-1] == "web" and stored["caller"].isna().iloc[0]
    assert len(labelled_listings(stored)) == 1, "a record without its listing's text trains nothing"


def test_feedback_lines_written_before_a_field_existed_still_read(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    sink = FileSink(tmp_path / "logs")
    current = _feedback(now)
    sink.write_feedback(current)
    older = {"request_id": "r-old", "chosen_category": "A", "accepted": True, "ts": now.isoformat()}
    folder = tmp_path / "logs" / "feedback" / f"date={now:%Y-%m-%d}"
    (folder / "feedback-1.jsonl").write_text(json.dumps(older) + "\n")
    stored = sink.read_feedback(now - timedelta(hours=1), now + timedelta(minutes=1))
    assert list(stored.columns) == FEEDBACK_COLUMNS and len(stored) == 2
    assert labelled_listings(stored)["request_id"].tolist() == [current.request_id]


def test_unreachable_database_is_reported_not_crashed() -> None:
    sink = PostgresSink("postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(SinkUnavailable):
        sink.write_feedback(_feedback(datetime.now(UTC)))


def _pg_ctl(action: str) -> None:
    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[0]
    # root here; a CI runner's user restarts the cluster through passwordless sudo
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    subprocess.run(
        [*sudo, "pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action],
        check=True,
        capture_output=True,
        timeout=60,
    )


BUFFER = 50


@pytest.mark.postgres
def test_postgres_down_longer_than_the_buffer_loses_nothing_acknowledged(
    postgres_database: str, served_home: Path, tmp_path: Path
) -> None:
    if shutil.which("pg_ctlcluster") is None or not Path("/etc/postgresql").is_dir():
        pytest.skip("needs a local PostgreSQL cluster managed by pg_ctlcluster to restart")
    server = start_server(
        tmp_path,
        {
            "PIGEONHOLE_HOME": str(served_home),
            "PIGEONHOLE_LOG_SINK": "postgres",
            "PIGEONHOLE_LOG_DATABASE_URL": postgres_database,
            # the outage outlasts the memory buffer: what it drops, the journal still holds
            "PIGEONHOLE_LOG_BUFFER_MAX": str(BUFFER),
        },
    )
    suggest_codes: list[int] = []
    acknowledged: list[str] = []
    refused = 0
    stop = threading.Event()

    def traffic() -> None:
        with server.client() as client:
            while not stop.is_set():
                suggest_codes.append(
                    client.post("/suggest", json={"title": "Trek Marlin 5 bike"}).status_code
                )

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        with server.client() as client:
            listing = {"title": "Trek Marlin 5 bike"}
            answer = client.post("/suggest", json=listing).json()
            request_id, top = answer["request_id"], answer["suggestions"][0]["category"]
            body = {"feedback_token": answer["feedback_token"], "chosen_category": top, "listing": listing}

            def send_feedback() -> None:
                nonlocal refused
                response = client.post("/feedback", json=body)
                assert response.status_code in (200, 503), response.text
                if response.status_code == 200:
                    acknowledged.append(request_id)
                else:
                    refused += 1

            for _ in range(10):
                send_feedback()
            _pg_ctl("stop")
            try:
                answered_before, give_up = len(suggest_codes), time.monotonic() + 60
                for _ in range(10):
                    send_feedback()
                while len(suggest_codes) - answered_before < 3 * BUFFER and time.monotonic() < give_up:
                    time.sleep(0.1)
                answered_in_outage = len(suggest_codes) - answered_before
            finally:
                _pg_ctl("start")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and len(acknowledged) < 20:
                send_feedback()
                time.sleep(0.2)
    finally:
        stop.set()
        worker.join()
    try:
        assert answered_in_outage >= 3 * BUFFER, "the outage must outlast the buffer"
        assert refused >= 10, "feedback during the outage must be refused with 503, not acknowledged"
        assert suggest_codes and set(suggest_codes) == {200}, (
            "suggestions keep flowing while the sink is down"
        )
        dsn = postgres_database.replace("postgresql+psycopg://", "postgresql://")
        deadline = time.monotonic() + 30
        while True:
            with psycopg.connect(dsn) as conn:
                stored = {row[0] for row in conn.execute("SELECT request_id FROM feedback")}
                logged = conn.execute("SELECT count(*) FROM predictions").fetchone()[0]  # type: ignore[index]
            if logged >= len(suggest_codes) + 1 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        with psycopg.connect(dsn) as conn:
            stored_count = conn.execute("SELECT count(*) FROM feedback").fetchone()[0]  # type: ignore[index]
        assert set(acknowledged) <= stored and stored_count >= len(acknowledged), (
            "every acknowledged feedback survives the restart"
        )
        # + 1: the suggestion whose feedback token the feedback carries
        assert logged == len(suggest_codes) + 1, "buffered predictions are written once the database is back"
    finally:
        stop_server(server)


# what a client could once get into the log: each would make a store refuse its record (or its batch)
UNSTORABLE = ["iphone\x00 13", "sofa \ud800", "bell\x07", "tab\tnewline\nfine", "zero\u200bwidth"]


def test_a_record_the_store_refuses_never_stalls_the_rest(sink: LogSink) -> None:
    """Past the edge (or from an older release), a bad record becomes a dead letter with the reason;
    every other record of its batch is stored, and the recorder keeps going."""
    now = datetime.now(UTC)
    batch = [replace(_prediction(now), title=title) for title in UNSTORABLE]
    recorder = PredictionRecorder(sink, max_buffered=100, flush_seconds=60)
    for record in batch:
        recorder.record(record)
    assert recorder.flush() and recorder.pending == 0
    stored = set(sink.read_predictions(now - timedelta(minutes=1), now + timedelta(minutes=1))["request_id"])
    refused = {r.request_id for r in batch} - stored
    # the file sink takes NUL and control characters (Parquet holds them); no store takes a lone surrogate
    assert batch[1].request_id in refused and {batch[3].request_id, batch[4].request_id} <= stored
    assert recorder.dead_letters == len(refused) >= 1
    recorder.record(_prediction(now))  # the log is not stalled
    assert recorder.flush() and recorder.pending == 0


@pytest.mark.postgres
def test_dead_letters_keep_the_record_and_the_reason(postgres_database: str) -> None:
    sink = PostgresSink(postgres_database)
    record = replace(_prediction(datetime.now(UTC)), title="iphone\x00 13")
    with pytest.raises(RecordRejected, match="NUL"):
        sink.write_predictions([record])
    sink.write_dead_letters([DeadLetterRecord.of(record, "NUL")])
    dsn = postgres_database.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        kind, reason, text = conn.execute("SELECT kind, reason, record FROM dead_letters").fetchone()  # type: ignore[misc]
        timeout = conn.execute("SHOW statement_timeout").fetchone()
    assert (kind, reason) == ("prediction", "NUL") and json.loads(text)["title"] == "iphone\x00 13"
    assert timeout == ("10s",) or sink._connection().execute("SHOW statement_timeout").fetchone() == ("10s",)
    sink.close()


def test_a_torn_feedback_line_hides_no_acknowledged_record(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A crash mid-append leaves half a line; the next acknowledged line must not be glued to it."""
    sink = FileSink(tmp_path / "logs")
    now = datetime.now(UTC)
    first, second = _feedback(now), _feedback(now)
    sink.write_feedback(first)
    (path,) = (tmp_path / "logs" / "feedback").rglob("*.jsonl")
    with path.open("a") as handle:
        handle.write('{"request_id": "torn')  # what a crash leaves behind
    sink.write_feedback(second)
    stored = sink.read_feedback(now - timedelta(minutes=1), now + timedelta(minutes=1))
    assert sorted(stored["request_id"]) == sorted([first.request_id, second.request_id])
    assert "skipped 1 unreadable line" in caplog.text


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 64 KiB file system (tmpfs), to fill up."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true needs root to mount a tmpfs: {mounted.stderr.decode()}")
        pytest.skip("mounting a tmpfs needs root")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def test_a_full_disk_refuses_feedback_and_leaves_no_torn_line(tiny_disk: Path) -> None:
    sink = FileSink(tiny_disk / "logs")
    now = datetime.now(UTC)
    acknowledged = [_feedback(now)]
    sink.write_feedback(acknowledged[0])
    filler = tiny_disk / "filler"
    with filler.open("wb", buffering=0) as handle, contextlib.suppress(OSError):
        while True:
            handle.write(b"x" * 512)
    with pytest.raises(SinkUnavailable):
        for _ in range(200):  # until the feedback file's last block is full too
            record = _feedback(now)
            sink.write_feedback(record)
            acknowledged.append(record)
    filler.unlink()  # space comes back
    record = _feedback(now)
    sink.write_feedback(record)
    acknowledged.append(record)
    (path,) = (tiny_disk / "logs" / "feedback").rglob("*.jsonl")
    assert path.read_bytes().endswith(b"}\n"), "no torn tail"
    stored = sink.read_feedback(now - timedelta(minutes=1), now + timedelta(minutes=1))
    assert (
        sorted(stored["request_id"]) == sorted(r.request_id for r in acknowledged) and len(acknowledged) > 2
    )
