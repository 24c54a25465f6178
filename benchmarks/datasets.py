"""The shared real datasets the benchmarks run on, with the README's reference scores."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SharedDataset:
    name: str
    depth: int
    reference_accuracy: float  # TF-IDF + LinearSVC, as stated in ../shared/data/README.md
    reference_macro_f1: float

    def path(self, data_dir: Path) -> Path:
        return data_dir / f"{self.name}.csv.gz"


SHARED_DATASETS = (
    SharedDataset("craigslist", 2, 0.78, 0.76),
    SharedDataset("flipkart", 2, 0.95, 0.68),
    SharedDataset("myntra", 2, 0.99, 0.88),
    SharedDataset("mwpd", 2, 0.89, 0.65),
)


def available(data_dir: Path) -> list[SharedDataset]:
    found = [d for d in SHARED_DATASETS if d.path(data_dir).exists()]
    if not found:
        raise SystemExit(f"no shared datasets under {data_dir}; pass --data-dir")
    return found
