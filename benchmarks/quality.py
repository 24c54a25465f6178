"""Model quality as sellers see it: pigeonhole vs the plain reference on the same random held-out rows.

Protocol (`make quality`): for each shared catalogue at its depth and each of 3 seeds, a random 15 % of
the listings is held out with every category as sellers filed it, rare ones included. Pigeonhole is
trained on the rest as `pigeonhole train` trains it (its label policy applies to its training rows
only: a held-out listing whose category it cannot suggest counts as a miss, and that share is shown).
The reference, TF-IDF word 1-2 grams + char_wb 2-5 grams (min_df 2) into LinearSVC (C 0.5) with every
category kept, is trained on the same rows. Accuracy and macro-F1 (averaged over the categories of the
held-out rows) are given as mean ± standard deviation over the seeds; top-3 is pigeonhole's. The
targets: pigeonhole at least the reference on both metrics on every catalogue, and on average at least
+1 point of accuracy and +2 points of macro-F1. "ms / listing" is pigeonhole's predict time for one
listing at a time (the service's unit of work), median of 200.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import make_pipeline, make_union
from sklearn.svm import LinearSVC

from benchmarks.datasets import SharedDataset, available
from pigeonhole.core.settings import Settings
from pigeonhole.model import data
from pigeonhole.model.evaluate import evaluate, macro_f1
from pigeonhole.model.predict import Predictor, as_features, listing_text
from pigeonhole.model.train import fit

SEEDS = (0, 1, 2)
HELD_OUT = 0.15
TIMED_LISTINGS = 200


@dataclass(frozen=True)
class Scores:
    accuracy: float
    macro_f1: float


def _scores(truth: np.ndarray, predicted: np.ndarray) -> Scores:
    return Scores(float((predicted == truth).mean()), macro_f1(truth, predicted))


def reference_predictions(train: pd.DataFrame, held_out: pd.DataFrame) -> np.ndarray:
    """The plain reference pipeline, every category kept, fitted on ``train``."""
    model = make_pipeline(
        make_union(
            TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True),
        ),
        LinearSVC(C=0.5),
    )
    model.fit(listing_text(as_features(train)), train["label"].to_numpy())
    return np.asarray(model.predict(listing_text(as_features(held_out))))


def _ms_per_listing(predictor: Predictor, held_out: pd.DataFrame) -> float:
    rows = held_out.head(TIMED_LISTINGS)
    times = []
    for i in range(len(rows)):
        started = time.perf_counter()
        predictor.top_k(rows.iloc[i : i + 1], 3)
        times.append(time.perf_counter() - started)
    return 1000 * float(np.median(times))


@dataclass(frozen=True)
class SeedResult:
    reference: Scores
    ours: Scores
    top3: float
    unpredictable: float
    fit_seconds: float
    ms_per_listing: float
    classes: int


def run_seed(dataset: SharedDataset, listings: pd.DataFrame, seed: int, settings: Settings) -> SeedResult:
    labelled = data.with_labels(listings, dataset.depth)
    held_out = labelled.sample(frac=HELD_OUT, random_state=seed)
    rest = labelled.drop(held_out.index)
    trained_on, _ = data.apply_rare_policy(
        rest, dataset.depth, settings.min_class_count, settings.rare_classes, settings.rare_bucket
    )
    started = time.perf_counter()
    predictor = fit(trained_on, seed=seed).predictor
    fit_seconds = time.perf_counter() - started
    ours = evaluate(predictor, held_out, k=3).metrics
    return SeedResult(
        reference=_scores(held_out["label"].to_numpy(), reference_predictions(rest, held_out)),
        ours=Scores(ours["accuracy"], ours["macro_f1"]),
        top3=ours["top3_accuracy"],
        unpredictable=ours["unpredictable_share"],
        fit_seconds=fit_seconds,
        ms_per_listing=_ms_per_listing(predictor, held_out),
        classes=int(labelled["label"].nunique()),
    )


def _spread(values: list[float]) -> str:
    return f"{np.mean(values):.4f} ± {np.std(values):.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--only", help="Only this catalogue: craigslist, flipkart, myntra or mwpd.")
    args = parser.parse_args()
    settings = Settings()
    console = Console(width=220)
    datasets = [d for d in available(args.data_dir) if args.only in (None, d.name)]
    table = Table(title=f"Held-out quality over seeds {SEEDS}: random {HELD_OUT:.0%} rows, every category")
    for column in (
        "catalogue",
        "classes",
        "reference acc",
        "pigeonhole acc",
        "reference macro-F1",
        "pigeonhole macro-F1",
        "Δ acc / Δ macro-F1 (points)",
        "top-3",
        "unpredictable",
        "fit s",
        "ms / listing",
        "target met",
    ):
        table.add_column(column)
    deltas: list[tuple[float, float]] = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("fitting", total=len(datasets) * len(SEEDS))
        for dataset in datasets:
            listings = data.load_listings(dataset.path(args.data_dir))
            results = []
            for seed in SEEDS:
                progress.update(task, description=f"{dataset.name}, seed {seed}")
                results.append(run_seed(dataset, listings, seed, settings))
                progress.advance(task)
            acc = [r.ours.accuracy - r.reference.accuracy for r in results]
            f1 = [r.ours.macro_f1 - r.reference.macro_f1 for r in results]
            deltas.append((100 * float(np.mean(acc)), 100 * float(np.mean(f1))))
            table.add_row(
                f"{dataset.name} (depth {dataset.depth})",
                str(results[0].classes),
                _spread([r.reference.accuracy for r in results]),
                _spread([r.ours.accuracy for r in results]),
                _spread([r.reference.macro_f1 for r in results]),
                _spread([r.ours.macro_f1 for r in results]),
                f"{deltas[-1][0]:+.2f} / {deltas[-1][1]:+.2f}",
                f"{np.mean([r.top3 for r in results]):.4f}",
                f"{np.mean([r.unpredictable for r in results]):.2%}",
                f"{np.mean([r.fit_seconds for r in results]):.0f}",
                f"{np.mean([r.ms_per_listing for r in results]):.2f}",
                "yes" if min(deltas[-1]) >= 0 else "no",
            )
    mean_acc, mean_f1 = (float(np.mean(values)) for values in zip(*deltas, strict=True))
    table.add_section()
    table.add_row(
        "mean",
        "",
        "",
        "",
        "",
        "",
        f"{mean_acc:+.2f} / {mean_f1:+.2f}",
        *[""] * 4,
        "yes" if mean_acc >= 1 and mean_f1 >= 2 else "no (needs +1 / +2)",
    )
    console.print(table)


if __name__ == "__main__":
    main()
