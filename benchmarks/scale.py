"""Cost versus catalogue size: what `pigeonhole train` and one suggestion cost at 10k, 100k and 1M listings.

Each size is a catalogue made by `pigeonhole data generate --categories`, whose vocabulary grows with
rows like the shared catalogues' (the first table compares them: word types against rows and the
fitted Heaps exponent). Each size trains in its own `pigeonhole train` process against a throw-away
embedded MLflow store, so peak RSS is that process's own; the registered champion is then loaded as
the service loads it and timed on single listings (a /suggest request) and on batches of 1,000 on one
core. The last row fits cost = a * rows^b by least squares on the log-log points: b is each cost's
growth exponent. Usage: ``make bench-scale`` (``--sizes 10000,100000`` for a shorter run).
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table
from threadpoolctl import threadpool_limits

from benchmarks.datasets import available
from benchmarks.training import run_training
from pigeonhole.core.settings import Settings
from pigeonhole.model.registry import CHALLENGER, PIPELINE_FILE, connect, load_predictor, require_alias
from pigeonhole.model.synthetic import generate_at_scale

CATEGORIES = 500
TARGETS = (
    "targets at 1M x 500: train <= 600 s, peak RSS <= 8 GiB, artifact <= 200 MB, suggest <= 1.5x today's"
)
WORD = re.compile(r"\w+")


def vocabulary_curve(frame: pd.DataFrame, points: list[int]) -> list[int]:
    """Distinct lower-cased words in title + description after each of ``points`` rows."""
    seen: set[str] = set()
    curve, done = [], 0
    text = (frame["title"].fillna("") + " " + frame["description"].fillna("")).str.lower()
    for point in points:
        for line in text.iloc[done:point]:
            seen.update(WORD.findall(line))
        done = point
        curve.append(len(seen))
    return curve


def growth_exponent(sizes: Sequence[float], values: Sequence[float]) -> float:
    slope, _ = np.polyfit(np.log(sizes), np.log(values), 1)
    return float(slope)


def _points(rows: int) -> list[int]:
    return [p for p in (1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000) if p <= rows]


def vocabulary_table(data_dir: Path, generated: pd.DataFrame) -> Table:
    columns = [f"{p:,}" for p in _points(1_000_000)]
    table = Table(title="Vocabulary growth: distinct words after N rows (rows shuffled, seed 0)")
    for column in ("catalogue", *columns, "Heaps exponent"):
        table.add_column(column, justify="right")
    frames = {d.name: pd.read_csv(d.path(data_dir)) for d in available(data_dir)} if data_dir.exists() else {}
    frames[f"generated ({CATEGORIES} categories)"] = generated
    for name, frame in frames.items():
        points = _points(len(frame))
        curve = vocabulary_curve(frame.sample(frac=1.0, random_state=0), points)
        cells = [f"{v:,}" for v in curve] + [""] * (len(columns) - len(curve))
        table.add_row(name, *cells, f"{growth_exponent(points, curve):.2f}")
    return table


def artifact_megabytes(home: Path) -> float:
    """The registered pipeline file: what each service worker loads (one version per store here)."""
    return sum(f.stat().st_size for f in home.rglob(PIPELINE_FILE)) / 1e6


def suggestion_costs(home: Path, listings: pd.DataFrame) -> tuple[float, float]:
    """(median ms for one listing, listings/s in batches of 1,000), on one core, the registered model
    loaded as the service loads it."""
    settings = Settings(home=home)
    predictor = load_predictor(require_alias(connect(settings), settings, CHALLENGER))
    singles = []
    for position in range(300):
        started = time.perf_counter()
        predictor.suggest(listings.iloc[[position]], k=settings.top_k)
        singles.append((time.perf_counter() - started) * 1000)
    batch = listings.head(1_000)
    started = time.perf_counter()
    for _ in range(3):
        predictor.suggest(batch, k=settings.top_k)
    return statistics.median(singles[20:]), 3 * len(batch) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--sizes", default="10000,100000,1000000", help="Comma-separated row counts.")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    console = Console(width=200)
    console.log(f"generating {max(sizes):,} listings in {CATEGORIES} categories")
    started = time.perf_counter()
    catalogue = generate_at_scale(max(sizes), CATEGORIES, seed=0)
    console.log(f"generated in {time.perf_counter() - started:.0f} s")
    console.print(vocabulary_table(args.data_dir, catalogue))
    table = Table(title=f"Cost vs size: `pigeonhole train --depth 2` on generated catalogues. {TARGETS}")
    for column in (
        "rows",
        "categories",
        "train wall s",
        "peak RSS MiB",
        "artifact MB",
        "suggest ms",
        "batch items/s/core",
    ):
        table.add_column(column, justify="right")
    measured: list[tuple[float, ...]] = []
    for rows in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            home, path = Path(tmp) / "home", Path(tmp) / "listings.parquet"
            catalogue.head(rows).to_parquet(path, index=False)
            console.log(f"training on {rows:,} listings")
            wall, rss = run_training(path, 2, home)
            size = artifact_megabytes(home)
            with threadpool_limits(1):
                single, throughput = suggestion_costs(home, catalogue.tail(2_000))
            classes = catalogue.head(rows)["category_path"].nunique()
            measured.append((wall, rss, size, single))
            table.add_row(
                f"{rows:,}",
                str(classes),
                f"{wall:.0f}",
                f"{rss:,}",
                f"{size:.1f}",
                f"{single:.2f}",
                f"{throughput:,.0f}",
            )
    if len(sizes) > 1:
        exponents = [growth_exponent(sizes, [m[i] for m in measured]) for i in range(4)]
        table.add_row("growth exponent b", "", *(f"{b:.2f}" for b in exponents), "")
    console.print(table)


if __name__ == "__main__":
    main()
