"""The prediction log at scale: sustained ingest, and the drift job on a large window (`make bench-log`).

For each sink (the Parquet files, and PostgreSQL when reachable) and each window size, the window is
filled the way the service fills it: batches of the recorder's ``WRITE_BATCH`` records through the
sink's ``write_predictions`` (PostgreSQL: COPY into day partitions), timed as sustained records/s.
The drift job's work then runs in a fresh process, so its peak RSS is its own: read the window as
`pigeonhole monitor drift` does (sampled inside the store to ``drift_max_rows``) and compare it with a
20,000-row reference, text included. Flat means the 10M-row window costs the memory of the 100k one.
Usage: ``make bench-log`` (``--sizes``, ``--postgres-sizes``, ``--postgres-url``).
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
from rich.console import Console
from rich.table import Table

from benchmarks.drift import _judge, _traffic
from pigeonhole.core.settings import LogSinkKind, Settings
from pigeonhole.model import data
from pigeonhole.model.synthetic import generate
from pigeonhole.model.train import fit
from pigeonhole.prediction_log.recorder import WRITE_BATCH
from pigeonhole.prediction_log.records import PredictionRecord, Variant
from pigeonhole.prediction_log.sinks import open_sink
from pigeonhole.prediction_log.window import read_window

WINDOW = timedelta(hours=24)


def fill(settings: Settings, pool: pd.DataFrame, rows: int, until: datetime) -> float:
    """``rows`` predictions spread over the day before ``until``, written in the recorder's batches;
    the sink's sustained records/s."""
    answers = pool.to_dict("records")
    step = WINDOW / rows
    sink = open_sink(settings)
    spent = 0.0
    try:
        for start in range(0, rows, WRITE_BATCH):
            batch = [
                PredictionRecord(
                    request_id=f"r{i}",
                    ts=until - WINDOW + i * step,
                    listing_id=None,
                    title=(row := answers[i % len(answers)])["title"],
                    description=row["description"],
                    price=row["price"],
                    top_category=row["predicted_category"],
                    top_score=row["top_score"],
                    categories=[row["predicted_category"]],
                    scores=[row["top_score"]],
                    abstained=False,
                    model_version="1",
                    variant=Variant.control,
                    latency_ms=1.0,
                )
                for i in range(start, min(start + WRITE_BATCH, rows))
            ]
            started = time.perf_counter()
            sink.write_predictions(batch)
            spent += time.perf_counter() - started
    finally:
        sink.close()
    return rows / spent


def _drift_read(settings: Settings, reference: pd.DataFrame, until: datetime, results: Any) -> None:
    started = time.perf_counter()
    window = read_window(settings, until - WINDOW, until)
    current = window.predictions.rename(columns={"top_category": "predicted_category"})
    _judge(settings, reference.sample(n=settings.drift_max_rows, random_state=settings.seed), current)
    seconds = time.perf_counter() - started
    results.put((window.served, seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024))


def drift_read(settings: Settings, reference: pd.DataFrame, until: datetime) -> tuple[int, float, int]:
    """(rows the window holds, seconds, peak RSS MiB) of the drift job's read and comparison, in a
    fresh process."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    child = context.Process(target=_drift_read, args=(settings, reference, until, results))
    child.start()
    measured = results.get()
    child.join()
    return measured


def _fresh_database(admin_url: str, name: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{admin_url.rsplit('/', 1)[0]}/{name}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100000,1000000,10000000", help="Window rows, file sink.")
    parser.add_argument("--postgres-sizes", default="100000,1000000", help="Window rows, PostgreSQL.")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    console = Console(width=200)
    console.log("training a champion on 30,000 synthetic listings for the traffic's answers")
    settings = Settings()
    listings = data.validate(generate(30000, seed=5))
    labelled, _ = data.assign_labels(listings, 2, 10, settings.rare_classes, settings.rare_bucket)
    champion = fit(labelled).predictor
    reference = _traffic(champion, labelled.sample(20000, random_state=0))
    pool = _traffic(champion, data.validate(generate(10000, seed=6, drift=0.3)))
    table = Table(
        title=f"The log at scale: ingest in batches of {WRITE_BATCH:,}, and the drift job on a 24 h window "
        f"(sampled in the store to {settings.drift_max_rows:,} rows, compared with a 20,000-row reference)"
    )
    for column in ("sink", "window rows", "ingest records/s", "drift job s", "drift job peak RSS MiB"):
        table.add_column(column, justify="right")
    runs: list[tuple[LogSinkKind, int]] = [(LogSinkKind.files, int(n)) for n in args.sizes.split(",") if n]
    try:
        with psycopg.connect(args.postgres_url, connect_timeout=3):
            runs += [(LogSinkKind.postgres, int(n)) for n in args.postgres_sizes.split(",") if n]
    except psycopg.OperationalError as exc:
        console.log(f"PostgreSQL not reachable, file sink only: {exc}")
    until = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    for kind, rows in runs:
        with tempfile.TemporaryDirectory() as tmp:
            url = _fresh_database(args.postgres_url, "bench_log") if kind is LogSinkKind.postgres else None
            settings = Settings(home=Path(tmp), log_sink=kind, log_database_url=url)
            console.log(f"{kind.value}: writing {rows:,} predictions")
            ingest = fill(settings, pool, rows, until)
            console.log(f"{kind.value}: drift job on {rows:,} rows")
            served, seconds, peak = drift_read(settings, reference, until)
            assert served == rows, f"the window holds {served:,} of {rows:,} rows"
            table.add_row(kind.value, f"{rows:,}", f"{ingest:,.0f}", f"{seconds:.1f}", f"{peak:,}")
    console.print(table)


if __name__ == "__main__":
    main()
