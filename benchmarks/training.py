"""Training cost per shared dataset: fit time, MLflow logging time and peak memory, side by side.

Each dataset trains in its own `pigeonhole train` process (the command users and jobs run) against
a throw-away embedded MLflow store, so peak RSS is that process's own. Usage: ``make bench-training``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlflow import MlflowClient
from rich.console import Console
from rich.table import Table

from benchmarks.datasets import available
from pigeonhole.core.settings import Settings


def run_training(path: Path, depth: int, home: Path) -> tuple[float, int]:
    """Run `pigeonhole train` in a child; return (wall seconds, peak RSS in MiB)."""
    started = time.perf_counter()
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pigeonhole.cli",
            "train",
            "--data",
            str(path),
            "--depth",
            str(depth),
            "--home",
            str(home),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        assert child.stderr is not None
        raise SystemExit(f"training on {path} failed:\n{child.stderr.read().decode()[-3000:]}")
    return wall, usage.ru_maxrss // 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    args = parser.parse_args()
    console = Console(width=200)
    table = Table(title="Training: one `pigeonhole train` process per dataset (embedded MLflow)")
    for column in ("dataset", "rows", "classes", "fit s", "log + register s", "total wall s", "peak RSS MiB"):
        table.add_column(column, justify="right")
    for dataset in available(args.data_dir):
        with tempfile.TemporaryDirectory() as home:
            console.log(f"training on {dataset.name}")
            wall, rss = run_training(dataset.path(args.data_dir), dataset.depth, Path(home))
            settings = Settings(home=Path(home))
            client = MlflowClient(settings.resolved_tracking_uri)
            experiment = client.get_experiment_by_name(settings.experiment)
            assert experiment is not None, f"pigeonhole train logs to the '{settings.experiment}' experiment"
            run = client.search_runs([experiment.experiment_id])[0]
            metrics, params = run.data.metrics, run.data.params
            table.add_row(
                dataset.name,
                f"{int(params['dataset_rows']):,}",
                params["classes"],
                f"{metrics['train_seconds']:.1f}",
                f"{metrics['log_seconds']:.1f}",
                f"{wall:.1f}",
                f"{rss:,}",
            )
    console.print(table)


if __name__ == "__main__":
    main()
