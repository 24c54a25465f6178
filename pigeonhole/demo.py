"""`pigeonhole demo`: the whole loop on one machine, with real parts and nothing but Python.

Train and promote v1, start the BentoML service on localhost, send it traffic over HTTP in phases
(normal, then drifted) with sellers' feedback for a share of it, run the drift job on each phase,
let its trigger retrain on the feedback-labelled traffic, watch the gate promote v2 and the running
service pick it up, then send fresh drifted traffic and see accuracy recover; its first window
becomes v2's drift reference, and the next ("steady") is no longer drift. Every step is the
same code the CLI, the cluster's jobs and the tests run; the demo only chooses the data and order.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pigeonhole.core.errors import UserError
from pigeonhole.core.settings import Settings, TriggerKind
from pigeonhole.model import data
from pigeonhole.model.promote import run_gate
from pigeonhole.model.registry import CHAMPION, connect, require_alias
from pigeonhole.model.synthetic import generate
from pigeonhole.model.train import train_and_register
from pigeonhole.monitoring.drift import run_drift
from pigeonhole.monitoring.reports import forget_trigger
from pigeonhole.monitoring.result import Decision, DriftResult, RunSource
from pigeonhole.prediction_log.sinks import open_sink
from pigeonhole.prediction_log.window import count_predictions
from pigeonhole.serving.auth import KeyRing, Role, bearer
from pigeonhole.serving.packaging import use_bentoml_home
from pigeonhole.serving.process import ServiceProcess

log = logging.getLogger(__name__)
BATCH = 32  # listings per /suggest_batch request


class DemoError(UserError):
    """The demo cannot use the data it was given (--data, --drift-by, sizes); the message says why."""


@dataclass(frozen=True)
class Traffic:
    """The demo's data: what v1 trains on, and four unseen pools of traffic."""

    training: pd.DataFrame
    normal: pd.DataFrame
    drifted: pd.DataFrame  # answered by v1; its feedback is what retraining learns from
    after: pd.DataFrame  # fresh drifted listings, answered by the retrained champion
    steady: pd.DataFrame  # more of them, once its reference is refreshed: drift has cleared


@dataclass(frozen=True)
class PhaseResult:
    phase: str
    model_version: str
    requests: int
    drift: DriftResult
    action: str


def synthetic_traffic(rows: int, requests: int, seed: int) -> Traffic:
    """Generated listings: drift 0 for training and normal traffic, drift 1 (the knob) afterwards."""
    return Traffic(
        training=generate(rows, seed=seed),
        normal=generate(requests, seed=seed + 1),
        drifted=generate(requests, seed=seed + 2, drift=1.0),
        after=generate(requests, seed=seed + 3, drift=1.0),
        steady=generate(requests, seed=seed + 4, drift=1.0),
    )


def real_traffic(path: Path, drift_by: str, rows: int, requests: int, seed: int) -> Traffic:
    """A real dataset cut along ``drift_by`` (e.g. myntra's `year`): the lower half of its values
    trains v1 and plays normal traffic, the upper half plays the drifted market."""
    frame = data.load_listings(path)
    if drift_by not in frame:
        extras = sorted(set(frame.columns) - set(data.CONTRACT_COLUMNS)) or ["none"]
        raise DemoError(
            f"--drift-by {drift_by!r} is not a column of {path}; extra columns: {', '.join(extras)}"
        )
    axis = pd.to_numeric(frame[drift_by], errors="coerce")
    if axis.isna().mean() > 0.5:
        raise DemoError(f"--drift-by {drift_by!r} must be numeric (e.g. a year) for most rows of {path}")
    frame = frame[axis.notna()].assign(_axis=axis[axis.notna()]).sample(frac=1.0, random_state=seed)
    cut = frame["_axis"].median()
    before, after = frame[frame["_axis"] <= cut], frame[frame["_axis"] > cut]
    if len(before) < rows // 2 + requests or len(after) < 3 * requests:
        raise DemoError(
            f"{path} cut at {drift_by}={cut:g} leaves {len(before):,} rows before and {len(after):,} after; "
            f"lower --rows ({rows}) or --requests ({requests})"
        )
    before = before.drop(columns="_axis")
    after = after.drop(columns="_axis")
    return Traffic(
        training=before.iloc[requests : requests + rows],
        normal=before.iloc[:requests],
        drifted=after.iloc[:requests],
        after=after.iloc[requests : 2 * requests],
        steady=after.iloc[2 * requests : 3 * requests],
    )


@dataclass(frozen=True)
class DemoKeys:
    """The demo's two callers: the marketplace's web app and an operator (for /reload)."""

    web: str
    operator: str

    @classmethod
    def create(cls, settings: Settings) -> DemoKeys:
        ring = KeyRing(settings.keys_path)
        for caller in ("demo-web", "demo-operator"):  # a --no-fresh run replaces the last run's keys
            ring.revoke(caller)
        return cls(ring.add("demo-web", Role.client), ring.add("demo-operator", Role.admin))


@contextmanager
def running_service(settings: Settings, port: int) -> Iterator[ServiceProcess]:
    env = {
        "PIGEONHOLE_HOME": str(settings.home),
        "PIGEONHOLE_WORKERS": "1",
        "PIGEONHOLE_RELOAD_SECONDS": "0",  # the demo reloads explicitly after a promotion
        "PIGEONHOLE_LOG_FLUSH_SECONDS": "0.5",
    }
    service = ServiceProcess(env, port, settings.home / "service.log")
    try:
        service.wait_ready()
        yield service
    finally:  # also on Ctrl-C: no process is left behind
        service.stop()


@dataclass
class Replayed:
    versions: str  # the model versions that answered
    refused: int  # feedback the service refused: a category the model does not have


def replay(
    client: httpx.Client,
    listings: pd.DataFrame,
    depth: int,
    feedback_share: float,
    progress: Progress,
    label: str,
) -> Replayed:
    """Send listings through /suggest_batch; a share of sellers report their final choice, with the
    feedback token of the answer they saw."""
    task = progress.add_task(label, total=len(listings))
    truths = data.label_from_path(listings["category_path"], depth).tolist()
    versions, refused = set(), 0
    for start in range(0, len(listings), BATCH):
        chunk = listings.iloc[start : start + BATCH]
        items = [
            {
                "title": row["title"],
                **({"description": row["description"]} if row["description"] else {}),
                **({"price": float(row["price"])} if pd.notna(row["price"]) else {}),
            }
            for row in chunk[["title", "description", "price"]].fillna({"description": ""}).to_dict("records")
        ]
        response = client.post("/suggest_batch", json={"items": items})
        response.raise_for_status()
        for offset, (item, answer) in enumerate(zip(items, response.json(), strict=True)):
            versions.add(answer["model_version"])
            index = start + offset
            if index % 100 < feedback_share * 100:
                stored = client.post(
                    "/feedback",
                    json={
                        "feedback_token": answer["feedback_token"],
                        "chosen_category": truths[index],
                        "listing": item,
                    },
                )
                if stored.status_code == httpx.codes.UNPROCESSABLE_ENTITY:
                    refused += 1  # a category new to the market: never trained on unreviewed
                else:
                    stored.raise_for_status()
        progress.advance(task, len(chunk))
    return Replayed(",".join(sorted(versions)), refused)


def _drift_job(settings: Settings, since: datetime, expected_rows: int) -> DriftResult:
    """The drift job over one phase, once the service's log holds the whole phase (it writes
    predictions in the background, off the request path)."""
    sink = open_sink(settings)
    try:
        deadline = time.monotonic() + 30
        while (
            time.monotonic() < deadline and count_predictions(sink, since, datetime.now(UTC)) < expected_rows
        ):
            time.sleep(0.5)
    finally:
        sink.close()
    return run_drift(settings, since, datetime.now(UTC), RunSource.demo)


def run(
    settings: Settings,
    traffic: Traffic,
    source: str,
    port: int,
    feedback_share: float,
    console: Console,
) -> list[PhaseResult]:
    """Every step of the loop, in order; returns one row per traffic phase."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    training_path = settings.data_dir / "listings.csv.gz"
    traffic.training.to_csv(training_path, index=False)
    use_bentoml_home(settings)
    # drift retrains in-process from the same reference data; the cooldown keeps one drift
    # episode to one retraining, and each demo run is a new episode
    settings = settings.model_copy(
        update={
            "trigger": TriggerKind.local,
            "retrain_data": str(training_path),
            "trigger_cooldown_hours": 1.0,
        }
    )
    forget_trigger(settings)
    with console.status("training (validate, fit, evaluate, log to MLflow, register, gate)"):
        trained = train_and_register(settings, data.validate(traffic.training, source), source=source)
        decision = run_gate(connect(settings), settings)
    reasons = "; ".join(decision.reasons)
    console.print(f"[bold]1.[/] trained v{trained.version} on {source}: {decision.label} ({reasons})")
    if not decision.promoted and decision.champion is None:
        raise DemoError(
            "the first model did not pass the gate's floors (too little or too noisy data?); "
            "see `pigeonhole models list`"
        )
    results: list[PhaseResult] = []
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
    keys = DemoKeys.create(settings)
    with (
        running_service(settings, port) as service,
        httpx.Client(base_url=service.url, timeout=60, headers=bearer(keys.web)) as client,
        httpx.Client(base_url=service.url, timeout=60, headers=bearer(keys.operator)) as operator,
    ):
        console.print(f"[bold]2.[/] service ready at {service.url} (log: {service.log_path})")
        phases = [
            ("normal", traffic.normal),
            ("drifted", traffic.drifted),
            ("after retrain", traffic.after),
            ("steady", traffic.steady),
        ]
        for number, (phase, listings) in enumerate(phases, start=3):
            since = datetime.now(UTC)
            with progress:
                replayed = replay(
                    client, listings, settings.depth, feedback_share, progress, f"{phase} traffic"
                )
            version = replayed.versions
            if replayed.refused:
                console.print(
                    f"   {replayed.refused} feedback refused (422): categories the model does not have",
                    highlight=False,
                )
            with console.status(f"drift job on the {phase} phase (and its trigger)"):
                drift = _drift_job(settings, since, len(listings))
                triggered = drift.trigger
            console.print(
                f"[bold]{number}.[/] {phase}: {len(listings):,} requests to v{version}, drift job: "
                f"{drift.decision.value} (share {drift.drift_share:.2f}); trigger: {triggered}",
                highlight=False,
            )
            action = _after_trigger(operator, drift, triggered, console)
            results.append(PhaseResult(phase, version, len(listings), drift, action))
    return results


def _after_trigger(operator: httpx.Client, drift: DriftResult, triggered: str, console: Console) -> str:
    """Have the service pick up a new champion at once (an admin route); say what happened."""
    if drift.reference_refreshed:
        return f"reference refreshed (v{drift.model_version})"
    if drift.decision is not Decision.drift:
        return "-"
    if triggered.startswith("cooldown"):
        return "cooldown (retrained already)"
    reloaded = operator.post("/reload").json()
    if str(reloaded["champion"]) == drift.model_version:
        return f"retrained, gate kept v{drift.model_version}"
    console.print(f"   the running service now answers with v{reloaded['champion']}")
    return f"retrained, v{reloaded['champion']} live"


def summary_table(results: list[PhaseResult]) -> Table:
    table = Table(
        title="pigeonhole demo",
        caption="accuracy: top suggestion vs the seller's final choice; drift: share of columns drifted",
    )
    for column in ("phase", "model", "requests (feedback)", "accuracy", "drift", "decision", "then"):
        table.add_column(column, no_wrap=True)
    for result in results:
        accuracy = result.drift.feedback_accuracy
        table.add_row(
            result.phase,
            f"v{result.model_version}",
            f"{result.requests:,} ({result.drift.feedback_rows:,})",
            "-" if accuracy is None else f"{accuracy:.3f}",
            f"{result.drift.drift_share:.2f}",
            result.drift.decision.value,
            result.action,
        )
    return table


def write_summary(settings: Settings, results: list[PhaseResult]) -> Path:
    """The table as JSON (<home>/demo-summary.json), for scripts and the tests."""
    path = settings.home / "demo-summary.json"
    rows = [
        {
            "phase": result.phase,
            "model_version": result.model_version,
            "requests": result.requests,
            "feedback": result.drift.feedback_rows,
            "accuracy": result.drift.feedback_accuracy,
            "drift_share": result.drift.drift_share,
            "decision": result.drift.decision.value,
            "then": result.action,
            "report": result.drift.report_html,
        }
        for result in results
    ]
    path.write_text(json.dumps(rows, indent=2))
    return path


def where_to_look(settings: Settings, results: list[PhaseResult]) -> list[str]:
    champion = require_alias(connect(settings), settings, CHAMPION)
    lines = [f"champion: {settings.model_name} v{champion.version}"]
    lines += [
        f"report ({result.phase}): {result.drift.report_html}"
        for result in results
        if result.drift.report_html
    ]
    lines += [
        f"all reports: {Path(settings.reports_location) / 'index.html'}",
        f"MLflow UI: .venv/bin/mlflow ui --backend-store-uri {settings.resolved_tracking_uri}",
        f"Evidently UI: .venv/bin/evidently ui --workspace {Path(settings.reports_location) / 'workspace'}",
        f"serve it yourself: .venv/bin/pigeonhole keys add me --home {settings.home} (prints your API key), "
        f"then .venv/bin/pigeonhole serve --home {settings.home}",
    ]
    return lines


def reset(settings: Settings) -> None:
    """A clean run: nothing of an earlier one (registry, logs, reports, Bento store) survives."""
    if settings.home.exists():
        shutil.rmtree(settings.home)
    settings.home.mkdir(parents=True)
