"""The reports' index page: what a data scientist sees of the run history, and what rewriting it costs."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import fsspec
import pytest
from fsspec.implementations.local import LocalFileSystem

from pigeonhole.monitoring.reports import write_index
from pigeonhole.monitoring.result import Decision, DriftResult


def _store_runs(fs: fsspec.AbstractFileSystem, root: str, count: int) -> list[str]:
    """``count`` stored runs, oldest first, each with its own model version to find it by."""
    folders = [f"20261101T{hour:02d}0000000000Z" for hour in range(count)]
    for number, folder in enumerate(folders, start=1):
        result = DriftResult(
            decision=Decision.no_drift,
            reasons=[],
            since="2026-11-01T00:00",
            until="2026-11-01T01:00",
            model_name="listing-category",
            model_version=f"{number}00",
            current_rows=900,
            reference_rows=600,
        )
        fs.makedirs(f"{root}/{folder}", exist_ok=True)
        fs.pipe_file(f"{root}/{folder}/summary.json", json.dumps(asdict(result), default=str).encode())
    return folders


@pytest.mark.parametrize("location", ["local", "memory"])
def test_the_index_shows_the_newest_runs_and_says_how_many_there_are(location: str, tmp_path: Path) -> None:
    fs: fsspec.AbstractFileSystem = LocalFileSystem() if location == "local" else fsspec.filesystem("memory")
    root = str(tmp_path / "reports") if location == "local" else f"/index-test-{tmp_path.name}"
    folders = _store_runs(fs, root, 5)
    page = fs.cat_file(write_index(fs, root, newest=3)).decode()
    assert "The newest 3 of 5 runs" in page
    assert all(folder in page for folder in folders[2:]), "the three newest are listed"
    assert not any(folder in page for folder in folders[:2]), "the older ones are left out"
    assert page.index(folders[4]) < page.index(folders[2]), "newest first"
    everything = fs.cat_file(write_index(fs, root)).decode()
    assert "5 runs." in everything and "The newest" not in everything
