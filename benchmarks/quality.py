"""Model quality against the reference (TF-IDF + LinearSVC) on rows training never sees.

Both models train on the same split of each shared dataset (near-duplicate titles kept on one side,
rare categories merged as in production) and are scored on the same held-out rows. The table also
shows the reference's scores as stated in ../shared/data/README.md, measured on rows set aside
before the files were shared. Usage: ``make quality`` or ``python -m benchmarks.quality --help``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import make_pipeline, make_union
from sklearn.svm import LinearSVC

from benchmarks.datasets import available
from pigeonhole.core.settings import Settings
from pigeonhole.model import data
from pigeonhole.model.evaluate import evaluate
from pigeonhole.model.predict import as_features, listing_text
from pigeonhole.model.train import fit

BOOTSTRAP_SAMPLES = 300


def paired_bootstrap(
    truth: np.ndarray, ours: np.ndarray, reference: np.ndarray, seed: int = 0
) -> dict[str, str]:
    """95 % intervals of (ours - reference) for accuracy and macro-F1, resampling the same rows for both.

    Differences of a few listings are noise; an interval that straddles 0 says so.
    """
    rng = np.random.default_rng(seed)
    deltas: dict[str, list[float]] = {"accuracy": [], "macro_f1": []}
    for _ in range(BOOTSTRAP_SAMPLES):
        rows = rng.integers(0, len(truth), len(truth))
        t, o, r = truth[rows], ours[rows], reference[rows]
        deltas["accuracy"].append(float((o == t).mean() - (r == t).mean()))
        deltas["macro_f1"].append(float(f1_score(t, o, average="macro") - f1_score(t, r, average="macro")))
    return {
        name: "[{:+.4f}, {:+.4f}]".format(*np.percentile(values, [2.5, 97.5]))
        for name, values in deltas.items()
    }


def reference_predictions(train: pd.DataFrame, held_out: pd.DataFrame) -> np.ndarray:
    """The README's reference: word 1-2 grams + char 2-5 grams TF-IDF into a linear SVM."""
    model = make_pipeline(
        make_union(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
            TfidfVectorizer(analyzer="char", ngram_range=(2, 5), sublinear_tf=True),
        ),
        LinearSVC(),
    )
    model.fit(listing_text(as_features(train)), train["label"].to_numpy())
    return np.asarray(model.predict(listing_text(as_features(held_out))))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    args = parser.parse_args()
    settings = Settings()
    console = Console(width=200)
    table = Table(title="Held-out quality: pigeonhole vs TF-IDF + LinearSVC reference (accuracy / macro-F1)")
    for column in (
        "dataset",
        "classes",
        "train / eval rows",
        "README reference",
        "reference, same split",
        "pigeonhole",
        "ECE",
        "fit s",
        "beats both?",
        "Δ acc vs ref, 95% CI",
        "Δ macro-F1 vs ref, 95% CI",
    ):
        table.add_column(column)
    for dataset in available(args.data_dir):
        console.log(f"{dataset.name}: loading and splitting")
        labelled, report = data.assign_labels(
            data.load_listings(dataset.path(args.data_dir)),
            dataset.depth,
            settings.min_class_count,
            settings.rare_classes,
            settings.rare_bucket,
        )
        train, held_out = data.split(labelled, settings.test_size, settings.seed)
        console.log(f"{dataset.name}: reference")
        truth = held_out["label"].to_numpy()
        reference = reference_predictions(train, held_out)
        ref_acc, ref_f1 = (
            float(accuracy_score(truth, reference)),
            float(f1_score(truth, reference, average="macro")),
        )
        console.log(f"{dataset.name}: pigeonhole")
        started = time.perf_counter()
        predictor = fit(train, seed=settings.seed)
        seconds = time.perf_counter() - started
        ours = evaluate(predictor, held_out, k=settings.top_k).metrics
        intervals = paired_bootstrap(truth, predictor.top_k(held_out, 1)[0][:, 0], reference)
        wins = ours["accuracy"] > max(ref_acc, dataset.reference_accuracy) and ours["macro_f1"] > max(
            ref_f1, dataset.reference_macro_f1
        )
        table.add_row(
            f"{dataset.name} (depth {dataset.depth})",
            str(report.classes),
            f"{len(train):,} / {len(held_out):,}",
            f"{dataset.reference_accuracy:.3f} / {dataset.reference_macro_f1:.3f}",
            f"{ref_acc:.4f} / {ref_f1:.4f}",
            f"{ours['accuracy']:.4f} / {ours['macro_f1']:.4f}",
            f"{ours['ece']:.3f}",
            f"{seconds:.0f}",
            "yes" if wins else "no",
            intervals["accuracy"],
            intervals["macro_f1"],
        )
    console.print(table)


if __name__ == "__main__":
    main()
