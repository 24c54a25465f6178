"""Serving throughput and latency, four ways side by side, in one run (`make bench-serving`).

(a) this BentoML service, (b) `mlflow models serve` of the same registered version, (c) a bare
FastAPI + uvicorn endpoint calling the same pipeline in-process (the HTTP ceiling), (d) in-process
predict (the ceiling). Each server runs for real on localhost and is driven by `wrk` (Debian
package `wrk`) at 1, 16 and 64 connections, single listings and batches. The load generator shares
the machine's cores with the server, as it would in the issue's measurements. Two champions, each
in its own state folder: one trained on 8,000 synthetic listings, one on a real shared catalogue
(flipkart, 186 categories, unless --catalogue says otherwise). "largest process MiB" is the
biggest single process of the server's tree: what one worker holds.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import psutil
from mlflow.entities.model_registry import ModelVersion
from rich.console import Console
from rich.table import Table

from pigeonhole.core.settings import Settings
from pigeonhole.model import data
from pigeonhole.model.predict import Predictor
from pigeonhole.model.promote import run_gate
from pigeonhole.model.registry import CHAMPION, connect, download_pipeline, model_uri, version_by_alias
from pigeonhole.model.synthetic import generate
from pigeonhole.model.train import train_and_register
from pigeonhole.serving.auth import KeyRing, Role, bearer
from pigeonhole.serving.process import free_port, serve_command, stop_group

LISTING: dict[str, Any] = {
    "title": "iPhone 13 128GB, like new",
    "description": "Unlocked, with charger",
    "price": 350.0,
}
BATCH_SIZE = 32
CONNECTIONS = (1, 16, 64)
console = Console(width=160)


@dataclass
class Peer:
    name: str
    command: list[str]
    env: dict[str, str]
    single: tuple[str, dict[str, Any]]
    batch: tuple[str, dict[str, Any]]
    merged: tuple[str, dict[str, Any]] | None = None  # one listing per request to the batch endpoint
    headers: dict[str, str] = field(default_factory=dict)  # what every request sends (our API key)

    def modes(self) -> list[tuple[str, tuple[str, dict[str, Any]], int]]:
        found = [("single", self.single, 1), (f"batch {BATCH_SIZE}", self.batch, BATCH_SIZE)]
        return found + ([("single, via /suggest_batch", self.merged, 1)] if self.merged else [])


@dataclass
class Result:
    peer: str
    mode: str
    connections: int
    requests_per_s: float
    items_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    peak_rss_mib: float
    largest_process_mib: float
    model: str = ""


def ensure_champion(settings: Settings, catalogue: Path | None) -> ModelVersion:
    """The champion in ``settings.home``: trained on ``catalogue``, or on 8,000 synthetic listings."""
    client = connect(settings)
    if version_by_alias(client, settings, CHAMPION) is None:
        console.log(f"no champion yet: training one on {catalogue or '8,000 synthetic listings'}")
        if catalogue is None:
            listings, source = data.validate(generate(8000, seed=0)), "synthetic"
        else:
            listings, source = data.load_listings(catalogue), str(catalogue)
        train_and_register(settings, listings, source=source)
        run_gate(client, settings)
    champion = version_by_alias(client, settings, CHAMPION)
    assert champion is not None
    return champion


def peers(settings: Settings, pipeline: Path) -> list[Peer]:
    env = {
        "PIGEONHOLE_HOME": str(settings.home),
        "PIGEONHOLE_RELOAD_SECONDS": "0",
        "PIGEONHOLE_WORKERS": "2",
        # the per-caller rate limit would answer most of wrk's requests with 429: measure the service
        "PIGEONHOLE_RATE_LIMIT_PER_MINUTE": "100000000",
        "BENTOML_DO_NOT_TRACK": "True",
        "BENCH_PIPELINE": str(pipeline),
        # mlflow models serve starts `uvicorn` from PATH: the venv's own
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    batch = {"items": [LISTING] * BATCH_SIZE}
    mlflow_record = {"dataframe_records": [LISTING]}
    return [
        Peer(
            "(a) pigeonhole BentoML",
            serve_command("{port}"),
            env,
            ("/suggest", LISTING),
            ("/suggest_batch", batch),
            ("/suggest_batch", {"items": [LISTING]}),
            # the service answers only callers with a key: a client key made for this run
            headers=bearer(KeyRing(settings.keys_path).add(f"bench-{os.getpid()}", Role.client)),
        ),
        Peer(
            "(b) mlflow models serve",
            [
                sys.executable,
                "-m",
                "mlflow",
                "models",
                "serve",
                "-m",
                model_uri(settings, CHAMPION),
                "--env-manager",
                "local",
                "--host",
                "127.0.0.1",
                "--port",
                "{port}",
                "--workers",
                "2",
            ],
            {**env, "MLFLOW_TRACKING_URI": settings.resolved_tracking_uri},
            ("/invocations", mlflow_record),
            ("/invocations", {"dataframe_records": [LISTING] * BATCH_SIZE}),
        ),
        Peer(
            "(c) bare FastAPI, 2 workers",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "benchmarks.bare_fastapi:app",
                "--host",
                "127.0.0.1",
                "--port",
                "{port}",
                "--workers",
                "2",
                "--no-access-log",
            ],
            env,
            ("/suggest", LISTING),
            ("/suggest_batch", batch),
        ),
    ]


def start(peer: Peer, log_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [part.replace("{port}", str(port)) for part in peer.command]
    with (log_dir / f"{port}.log").open("wb") as log_file:
        process = subprocess.Popen(
            command,
            env={**os.environ, **peer.env},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    path, body = peer.single
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{peer.name} exited: {(log_dir / f'{port}.log').read_text()[-2000:]}")
        try:
            if httpx.post(url + path, json=body, headers=peer.headers, timeout=5).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{peer.name} did not answer in 180 s")


def tree_rss_mib(pid: int) -> tuple[float, float]:
    """(the process tree's RSS, its largest single process's RSS) in MiB."""
    try:
        root = psutil.Process(pid)
        sizes = [p.memory_info().rss / 2**20 for p in [root, *root.children(recursive=True)]]
        return sum(sizes), max(sizes)
    except psutil.Error:
        return 0.0, 0.0


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}[unit]


def run_wrk(
    url: str, body: dict[str, Any], headers: dict[str, str], connections: int, seconds: int, pid: int
) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            f'wrk.method = "POST"\nwrk.body = {json.dumps(json.dumps(body))}\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
            + "".join(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n" for k, v in headers.items())
        )
    peak = [tree_rss_mib(pid)]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.25):
            peak.append(tree_rss_mib(pid))

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        output = subprocess.run(
            [
                "wrk",
                "-t",
                str(min(2, connections)),
                "-c",
                str(connections),
                "-d",
                f"{seconds}s",
                "--latency",
                "-s",
                script.name,
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        done.set()
        sampler.join()
        os.unlink(script.name)
    if not re.search(r"^\s+99%", output, re.MULTILINE):
        raise SystemExit(f"wrk measured nothing at {connections} connections on {url}:\n{output}")
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", output))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    errors += sum(int(n) for n in socket_errors.groups()) if socket_errors else 0
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        "p50": _ms(re.search(r"^\s+50%\s+(\S+)\s*$", output, re.MULTILINE).group(1)),  # type: ignore[union-attr]
        "p99": _ms(re.search(r"^\s+99%\s+(\S+)\s*$", output, re.MULTILINE).group(1)),  # type: ignore[union-attr]
        "errors": errors,
        "rss": max(total for total, _ in peak),
        "largest": max(largest for _, largest in peak),
    }


def in_process(pipeline: Path, top_k: int, seconds: float) -> list[Result]:
    predictor = Predictor.load(pipeline)
    results = []
    for mode, rows in (("single", 1), (f"batch {BATCH_SIZE}", BATCH_SIZE)):
        frame = pd.DataFrame([LISTING] * rows)
        timings: list[float] = []
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            predictor.top_k(frame, top_k)
            timings.append(time.perf_counter() - started)
        rps = len(timings) / sum(timings)
        results.append(
            Result(
                "(d) in-process predict",
                mode,
                1,
                rps,
                rps * rows,
                float(np.percentile(timings, 50) * 1000),
                float(np.percentile(timings, 99) * 1000),
                0,
                psutil.Process().memory_info().rss / 2**20,
                psutil.Process().memory_info().rss / 2**20,
            )
        )
    return results


def bench_champion(settings: Settings, catalogue: Path | None, seconds: int) -> list[Result]:
    """Every server and mode against one champion."""
    champion = ensure_champion(settings, catalogue)
    model = f"v{champion.version} ({catalogue.name if catalogue else 'synthetic 8k'})"
    pipeline = download_pipeline(champion)
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as logs:
        for peer in peers(settings, pipeline):
            console.log(f"{model}: starting {peer.name}")
            process, url = start(peer, Path(logs))
            try:
                for mode, (path, body), per_request in peer.modes():
                    for connections in CONNECTIONS:
                        if mode.startswith("batch") and connections == 64:
                            continue
                        console.log(f"{model}, {peer.name}: {mode}, {connections} connections")
                        measured = run_wrk(url + path, body, peer.headers, connections, seconds, process.pid)
                        results.append(
                            Result(
                                peer.name,
                                mode,
                                connections,
                                measured["rps"],
                                measured["rps"] * per_request,
                                measured["p50"],
                                measured["p99"],
                                int(measured["errors"]),
                                measured["rss"],
                                measured["largest"],
                            )
                        )
            finally:
                stop_group(process, timeout=30)
    results += in_process(pipeline, settings.top_k, seconds=min(seconds, 5))
    for result in results:
        result.model = model
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path, default=Path(".pigeonhole/bench"), help="State folder to use.")
    parser.add_argument("--seconds", type=int, default=10, help="Length of each wrk run.")
    parser.add_argument(
        "--catalogue",
        type=Path,
        default=Path("../shared/data/flipkart.csv.gz"),
        help="A real catalogue for the second champion (skipped if absent).",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    champions: list[Path | None] = [None, *([args.catalogue] if args.catalogue.exists() else [])]
    results: list[Result] = []
    for catalogue in champions:
        home = args.home / (catalogue.name.split(".")[0] if catalogue else "synthetic")
        results += bench_champion(Settings(home=home), catalogue, args.seconds)
    table = Table(title=f"Serving on {os.cpu_count()} cores; wrk {args.seconds} s a run")
    for column in (
        "model",
        "server",
        "mode",
        "conns",
        "req/s",
        "items/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "peak RSS MiB",
        "largest process MiB",
    ):
        table.add_column(column, justify="right" if column not in ("model", "server", "mode") else "left")
    for r in results:
        table.add_row(
            r.model,
            r.peer,
            r.mode,
            str(r.connections),
            f"{r.requests_per_s:,.0f}",
            f"{r.items_per_s:,.0f}",
            f"{r.p50_ms:.1f}",
            f"{r.p99_ms:.1f}",
            str(r.errors),
            f"{r.peak_rss_mib:,.0f}",
            f"{r.largest_process_mib:,.0f}",
        )
    console.print(table)


if __name__ == "__main__":
    main()
