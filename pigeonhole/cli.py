"""``pigeonhole``: the one entry point that the README, the workflows, the Kubernetes jobs and the tests call.

Exit codes (core/errors.py): 0 success, 1 unexpected failure, 2 bad input or configuration (a
broken dataset, a missing model alias), 3 the platform said no (gate, drift), so schedulers and CI
can tell "fix your data" from "something broke". Nothing heavy (MLflow, scikit-learn, BentoML,
Evidently) is imported until a command that needs it runs, so ``--help`` answers at once.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from pigeonhole.core.errors import ExitCode, RegistryError, UserError

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from pigeonhole.serving.auth import KeyRing
from pigeonhole.core.settings import (
    ENV_PREFIX,
    RareClassPolicy,
    Settings,
    SplitKind,
    get_settings,
    parse_duration,
    unknown_environment_names,
)
from pigeonhole.monitoring.result import RunSource

app = typer.Typer(
    help="Suggest the right category for marketplace listings: data, training, registry, serving.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Generate and validate listing datasets.", no_args_is_help=True)
monitor_app = typer.Typer(help="Watch live traffic for drift.", no_args_is_help=True)
models_app = typer.Typer(help="Inspect the model registry.", no_args_is_help=True)
keys_app = typer.Typer(
    help="API keys for the service's callers: made here, shown once, stored only as hashes.",
    no_args_is_help=True,
)
db_app = typer.Typer(
    help="The deployed platform's PostgreSQL: a role per component, least privilege.", no_args_is_help=True
)
app.add_typer(data_app, name="data")
app.add_typer(db_app, name="db")
log_app = typer.Typer(help="Look into the prediction and feedback log.", no_args_is_help=True)
app.add_typer(log_app, name="log")
app.add_typer(keys_app, name="keys")
app.add_typer(models_app, name="models")
app.add_typer(monitor_app, name="monitor")

console = Console(stderr=True)
out = Console()
log = logging.getLogger("pigeonhole")

F = TypeVar("F", bound=Callable[..., Any])


def _setting(name: str) -> str:
    """What an option left out falls back to: the setting's default, and the variable that sets it."""
    default = Settings.model_fields[name].default
    return f"{getattr(default, 'value', default)}, env {ENV_PREFIX}{name.upper()}"


HomeOption = Annotated[
    Path | None, typer.Option("--home", help="State folder.", show_default=_setting("home"))
]
KeyFileOption = Annotated[
    Path | None,
    typer.Option("--file", help="Key file (default <home>/api-keys.json, env PIGEONHOLE_API_KEYS_FILE)."),
]
TrackingOption = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri", help="MLflow tracking URI (env MLFLOW_TRACKING_URI); default SQLite under --home."
    ),
]


ModelNameOption = Annotated[
    str | None,
    typer.Option("--model-name", help="Registered model name.", show_default=_setting("model_name")),
]
DepthOption = Annotated[
    int | None,
    typer.Option(
        "--depth", min=1, help="Category levels in the label (2: 'A > B').", show_default=_setting("depth")
    ),
]
MinCountOption = Annotated[
    int | None,
    typer.Option(
        "--min-class-count",
        min=1,
        help="Categories with fewer training rows are merged, dropped or refused (--rare-classes); "
        "1 keeps every category suggestible.",
        show_default=_setting("min_class_count"),
    ),
]
SplitOption = Annotated[
    SplitKind | None,
    typer.Option(
        "--split",
        help="Held-out rows: grouped (near-duplicate titles on one side: quality on titles never "
        "seen) or random (as traffic arrives, re-listed items included).",
        show_default=_setting("split"),
    ),
]
RareOption = Annotated[
    RareClassPolicy | None,
    typer.Option(
        "--rare-classes",
        help="What to do with categories under --min-class-count.",
        show_default=_setting("rare_classes"),
    ),
]


def _friendly_errors(command: F) -> F:
    """Turn a user's error into one clear line and exit code 2; anything else exits 1 with its message."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (UserError, typer.BadParameter, ValidationError) as exc:
            console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(ExitCode.user_error) from None
        except typer.Exit:
            raise
        except Exception as exc:
            log.exception("failed")
            console.print(f"[bold red]failed:[/] {type(exc).__name__}: {exc}", highlight=False)
            raise typer.Exit(ExitCode.failure) from None

    return wrapper  # type: ignore[return-value]


@app.callback()
def main(
    ctx: typer.Context,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Set up logging; each command builds its settings from env vars and its own flags."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(console=console, show_path=False)],
        force=True,
    )
    for noisy in ("alembic", "mlflow", "urllib3", "matplotlib", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name in unknown_environment_names():
        log.warning("%s is not a pigeonhole setting and is ignored (misspelt?)", name)


@data_app.command("generate")
@_friendly_errors
def data_generate(
    out_path: Annotated[Path, typer.Option("--out", help="Where to write (.csv, .csv.gz or .parquet).")],
    rows: Annotated[int, typer.Option(min=1, help="How many listings.")] = 5000,
    seed: Annotated[int, typer.Option(help="Same seed, same listings.")] = 0,
    drift: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="0 = the reference market; 1 = strongly drifted "
            "(category mix, new models, inflation, new phrasing).",
        ),
    ] = 0.0,
    noise: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of titles with typos, caps, emoji.")
    ] = 0.15,
    categories: Annotated[
        int | None,
        typer.Option(
            min=2,
            help="A catalogue at marketplace scale instead of the demo's 28 categories: this many "
            "categories, Zipf-like sizes, a vocabulary that grows with rows like real catalogues' "
            "(what make bench-scale trains on; no --drift).",
        ),
    ] = None,
) -> None:
    """Generate synthetic classifieds listings in the data contract."""
    from pigeonhole.model.synthetic import generate, generate_at_scale

    if categories is not None and drift:
        raise typer.BadParameter("--drift applies to the demo's catalogue, not with --categories")
    if categories is None:
        frame = generate(rows, seed=seed, drift=drift, noise=noise)
    else:
        frame = generate_at_scale(rows, categories, seed=seed, noise=noise, progress=True)
    write_table(frame, out_path)
    out.print(f"wrote {len(frame):,} listings in {frame['category_path'].nunique()} categories to {out_path}")


def write_table(frame: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)


@data_app.command("validate")
@_friendly_errors
def data_validate(
    path: Annotated[Path, typer.Argument(help="Listings file (.csv, .csv.gz, .parquet).")],
    depth: DepthOption = None,
    min_class_count: MinCountOption = None,
    rare_classes: RareOption = None,
) -> None:
    """Check a dataset against the contract without training; exit 2 with the rows at fault."""
    from pigeonhole.model.data import assign_labels, load_listings

    settings = get_settings(depth=depth, min_class_count=min_class_count, rare_classes=rare_classes)
    frame = load_listings(path)
    _, report = assign_labels(
        frame, settings.depth, settings.min_class_count, settings.rare_classes, settings.rare_bucket
    )
    out.print(f"{path}: {len(frame):,} valid listings; {report.summary()}")


@data_app.command("publish")
@_friendly_errors
def data_publish(
    path: Annotated[Path, typer.Argument(help="Listings file (.csv, .csv.gz, .parquet) to publish.")],
    name: Annotated[str | None, typer.Option(help="Name in the store (default the file's name).")] = None,
    tracking_uri: TrackingOption = None,
) -> None:
    """Validate a dataset and upload it to the stack's store through its MLflow server.

    Prints the dataset's durable URI (mlflow-artifacts:/datasets/NAME), which `train --data`,
    `retrain --data` and the cluster's retraining Job read from anywhere the server is reachable.
    """
    from pigeonhole.model.data import load_listings
    from pigeonhole.model.registry import publish_dataset

    settings = get_settings(tracking_uri=tracking_uri)
    frame = load_listings(path)
    uri = publish_dataset(settings, path, name)
    out.print(f"published {len(frame):,} valid listings as {uri}", highlight=False)


@app.command()
@_friendly_errors
def train(
    data: Annotated[
        str,
        typer.Option(
            "--data",
            help="Listings file to train on: a path, or a published dataset's mlflow-artifacts:/ URI.",
        ),
    ],
    depth: DepthOption = None,
    min_class_count: MinCountOption = None,
    rare_classes: RareOption = None,
    split: SplitOption = None,
    seed: Annotated[
        int | None, typer.Option(help="Split and model seed.", show_default=_setting("seed"))
    ] = None,
    max_invalid_share: Annotated[
        float | None,
        typer.Option(
            help="Drop invalid rows (logged in the run with the reason) up to this share of the file; "
            "a file with more is refused. 0 refuses any.",
            show_default=_setting("max_invalid_share"),
        ),
    ] = None,
    home: HomeOption = None,
    tracking_uri: TrackingOption = None,
    model_name: ModelNameOption = None,
) -> None:
    """Validate data, train, evaluate, log to MLflow and register the new version as `challenger`."""
    from pigeonhole.model.data import load_usable_listings
    from pigeonhole.model.registry import local_dataset
    from pigeonhole.model.train import train_and_register

    settings = get_settings(
        depth=depth,
        min_class_count=min_class_count,
        rare_classes=rare_classes,
        split=split,
        seed=seed,
        max_invalid_share=max_invalid_share,
        home=home,
        tracking_uri=tracking_uri,
        model_name=model_name,
    )
    listings, invalid = load_usable_listings(local_dataset(settings, data), settings.max_invalid_share)
    if len(invalid):
        out.print(f"dropped {len(invalid):,} invalid row(s), logged in the run as data/invalid_rows.json")
    result = train_and_register(settings, listings, source=data, invalid=invalid)
    metrics = result.evaluation.metrics
    out.print(
        f"registered {settings.model_name} v{result.version} as challenger (run {result.run_id}): "
        f"accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}, "
        f"top-{settings.top_k} {metrics[f'top{settings.top_k}_accuracy']:.4f}, ECE {metrics['ece']:.4f}"
    )


@app.command()
@_friendly_errors
def promote(
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Evaluate on this file instead of the challenger's held-out split."),
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Promote even if the gate fails (recorded on the version).")
    ] = False,
    home: HomeOption = None,
    tracking_uri: TrackingOption = None,
    model_name: ModelNameOption = None,
) -> None:
    """Run the promotion gate: the challenger becomes champion only if it is measurably better.

    Exits 0 when promoted, 3 when the challenger was rejected, so a workflow can branch on it.
    """
    from pigeonhole.model.data import load_listings, with_labels
    from pigeonhole.model.promote import run_gate

    settings = get_settings(home=home, tracking_uri=tracking_uri, model_name=model_name)
    rows = None
    if data is not None:  # every category as filed, like a held-out split
        rows = with_labels(load_listings(data), settings.depth)
    decision = run_gate(_existing_registry(settings), settings, rows=rows, force=force)
    verdict = "[green]PROMOTED[/]" if decision.promoted else "[yellow]REJECTED[/]"
    out.print(
        f"{verdict} challenger v{decision.challenger} "
        f"(champion was {'v' + decision.champion if decision.champion else 'none'})"
    )
    for reason in decision.reasons:
        out.print(f"  {reason}", highlight=False)
    if not decision.promoted:
        raise typer.Exit(ExitCode.declined)


@app.command()
@_friendly_errors
def score(
    data: Annotated[
        str,
        typer.Option(
            "--data", help="Listings (.csv, .csv.gz, .parquet), any size; with --spark, any URL Spark reads."
        ),
    ],
    out_path: Annotated[
        str,
        typer.Option(
            "--out", help="Parquet: listing_id (if the input has one), suggestions. Spark writes a folder."
        ),
    ],
    alias: Annotated[str, typer.Option(help="Which registered version scores them.")] = "champion",
    k: Annotated[
        int | None, typer.Option(min=1, help="Suggestions per listing.", show_default=_setting("top_k"))
    ] = None,
    chunk_rows: Annotated[
        int, typer.Option(min=1, help="Listings held in memory at once; memory does not grow with the file.")
    ] = 50_000,
    spark: Annotated[
        bool,
        typer.Option(
            "--spark",
            help="Score on Spark (pip install 'pigeonhole[spark]'): the session spark-submit configured, "
            "or local mode on every core.",
        ),
    ] = False,
    home: HomeOption = None,
    tracking_uri: TrackingOption = None,
    model_name: ModelNameOption = None,
) -> None:
    """Score a file of listings offline with a registered model, in chunks, into Parquet.

    One machine scores about 1,000 listings per second per core; past what it does in acceptable
    time, --spark runs the same registered model on a Spark cluster (README: "Batch scoring").
    """
    from pigeonhole.model.registry import load_predictor, model_uri, require_alias
    from pigeonhole.model.score import score_file, score_on_spark

    settings = get_settings(home=home, tracking_uri=tracking_uri, model_name=model_name)
    version = require_alias(_existing_registry(settings), settings, alias)
    started = time.perf_counter()
    if spark:
        rows = score_on_spark(model_uri(settings, alias), data, out_path, k or settings.top_k)
    else:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
        with Progress(*columns, console=out) as progress:
            predictor = load_predictor(version)
            rows = score_file(
                predictor, Path(data), Path(out_path), k or settings.top_k, chunk_rows, progress
            )
    seconds = time.perf_counter() - started
    out.print(
        f"scored {rows:,} listings with {settings.model_name} v{version.version} ({alias}) "
        f"in {seconds:.0f} s ({rows / seconds:,.0f} listings/s) into {out_path}"
    )


@app.command()
@_friendly_errors
def rollback(
    home: HomeOption = None, tracking_uri: TrackingOption = None, model_name: ModelNameOption = None
) -> None:
    """Give the champion alias back to the version the current champion replaced."""
    from pigeonhole.model.registry import rollback as registry_rollback

    settings = get_settings(home=home, tracking_uri=tracking_uri, model_name=model_name)
    old, new = registry_rollback(_existing_registry(settings), settings)
    out.print(f"champion rolled back from v{old} to v{new}")


@models_app.command("list")
@_friendly_errors
def models_list(
    home: HomeOption = None, tracking_uri: TrackingOption = None, model_name: ModelNameOption = None
) -> None:
    """Show registered versions, their aliases, metrics and gate decisions."""
    from pigeonhole.model.registry import list_versions

    settings = get_settings(home=home, tracking_uri=tracking_uri, model_name=model_name)
    out.print(versions_table(settings, list_versions(_existing_registry(settings), settings)))


def _credential(envvar: str, what: str) -> Any:
    return typer.Option(envvar=envvar, show_default=False, help=f"{what}.")


@models_app.command("users")
@_friendly_errors
def models_users(
    writer: Annotated[str, _credential("MLFLOW_WRITER_USERNAME", "The identity training and the gate use")],
    writer_password: Annotated[str, _credential("MLFLOW_WRITER_PASSWORD", "Its password")],
    reader: Annotated[str, _credential("MLFLOW_READER_USERNAME", "The service's and drift job's identity")],
    reader_password: Annotated[str, _credential("MLFLOW_READER_PASSWORD", "Its password")],
    tracking_uri: TrackingOption = None,
    model_name: ModelNameOption = None,
) -> None:
    """Create or update the registry's two identities on an MLflow server with basic auth.

    Run as the server's admin (MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD).

    The reader may only read: it loads the champion, never moves an alias.

    The writer manages the experiment and the registered model.

    A deployed stack runs it as the `pigeonhole-registry-users` Job.
    """
    from mlflow.exceptions import MlflowException

    from pigeonhole.model.registry import RegistryUser, setup_users

    settings = get_settings(tracking_uri=tracking_uri, model_name=model_name)
    try:
        done = setup_users(
            settings, RegistryUser(writer, writer_password), RegistryUser(reader, reader_password)
        )
    except MlflowException as exc:  # a short password, or not the admin's credentials (401)
        raise UserError(f"the registry refused: {exc.message}") from None
    for line in done:
        out.print(line, highlight=False)


def versions_table(settings: Settings, rows: list[Any]) -> Table:
    table = Table(title=f"{settings.model_name} @ {settings.resolved_tracking_uri}")
    for column in ("version", "aliases", "accuracy", "macro-F1", "gate"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row.version,
            ", ".join(row.aliases) or "-",
            f"{row.accuracy:.4f}" if row.accuracy is not None else "-",
            f"{row.macro_f1:.4f}" if row.macro_f1 is not None else "-",
            row.decision,
        )
    return table


def _window(window: str, since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    """[since or until - window, until or now), in UTC; a time given without a zone is UTC."""
    end = _utc(until) if until else datetime.now(UTC)
    return (_utc(since) if since else end - parse_duration(window)), end


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=moment.tzinfo or UTC).astimezone(UTC)


@monitor_app.command("drift")
@_friendly_errors
def monitor_drift(
    window: Annotated[
        str | None,
        typer.Option(
            help="How far back from --until to look: 30m, 24h, 7d (default PIGEONHOLE_DRIFT_WINDOW, 24h)."
        ),
    ] = None,
    since: Annotated[
        datetime | None, typer.Option(help="Window start (ISO time, UTC if no zone); overrides --window.")
    ] = None,
    until: Annotated[datetime | None, typer.Option(help="Window end (default now).")] = None,
    source: Annotated[
        RunSource, typer.Option(help="Who runs it, shown in the reports: the CronJob passes schedule.")
    ] = RunSource.cli,
    home: HomeOption = None,
    tracking_uri: TrackingOption = None,
) -> None:
    """Compare the window's logged traffic with the champion's reference; decide, start a retraining
    on drift (PIGEONHOLE_TRIGGER), write the report.

    Exit codes for schedulers: 0 no drift (or too little data), 3 drift, 2 bad input or
    configuration, 1 failure. Reports land in <home>/reports (PIGEONHOLE_REPORTS), with index.html.
    """
    from pigeonhole.monitoring.drift import run_drift
    from pigeonhole.monitoring.publish import push

    settings = get_settings(home=home, tracking_uri=tracking_uri, drift_window=window)
    _existing_registry(settings)
    start, end = _window(settings.drift_window, since, until)
    result = run_drift(settings, start, end, source)
    _retain(settings)
    if settings.pushgateway:
        push(settings.pushgateway, result)
    out.print(
        f"{result.decision.value.upper()}: model v{result.model_version}, {result.current_rows} rows "
        f"from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC, drift share {result.drift_share:.2f}"
    )
    for reason in result.reasons:
        out.print(f"  {reason}", highlight=False)
    for column, score in result.columns.items():
        out.print(
            f"  {column}: {score.method} {score.value} (threshold {score.threshold})"
            f"{'  DRIFTED' if score.drifted else ''}",
            highlight=False,
        )
    if result.columns:
        out.print(f"  reference: {result.reference_source}; thresholds {result.thresholds}", highlight=False)
    out.print(f"trigger: {result.trigger}")
    out.print(f"report: {result.report_html or '-'}\nsummary: {result.summary_json}")
    raise typer.Exit(result.exit_code)


def _existing_registry(settings: Settings) -> MlflowClient:
    """The registry of a state folder that has one: a mistyped --home, or a command run from another
    folder, must not pass for an empty registry (or leave a new one behind)."""
    from pigeonhole.model.registry import connect

    if settings.tracking_uri is None and not settings.embedded_store.exists():
        raise RegistryError(
            f"no registry in {settings.home.resolve()}: train a model there first (`pigeonhole train` or "
            "`make demo`), or pass the --home (PIGEONHOLE_HOME) that holds one"
        )
    return connect(settings)


def _retain(settings: Settings) -> None:
    """The log's retention, run by the scheduled drift job (the log's owner); a role that may not
    drop partitions is told, and the drift decision still stands."""
    from pigeonhole.prediction_log.sinks import SinkUnavailable
    from pigeonhole.prediction_log.window import apply_retention

    try:
        for done in apply_retention(settings, datetime.now(UTC).date()):
            out.print(f"log retention: {done}", highlight=False)
    except SinkUnavailable as exc:
        console.print(f"log retention skipped: {exc}", highlight=False)


@log_app.command("retain")
@_friendly_errors
def log_retain(
    days: Annotated[
        int | None,
        typer.Option(
            min=1, help="Keep this many whole days before today (default PIGEONHOLE_LOG_RETENTION_DAYS, 30)."
        ),
    ] = None,
    home: HomeOption = None,
) -> None:
    """Delete predictions older than the retention, a day at a time (a Parquet folder, or a PostgreSQL
    partition dropped at once), and make the coming week's partitions. Feedback is kept: retraining
    learns from it. `monitor drift` runs this after every window, so a schedule needs nothing else.
    """
    settings = get_settings(home=home, log_retention_days=days)
    _retain(settings)


@log_app.command("stats")
@_friendly_errors
def log_stats_command(
    window: Annotated[str, typer.Option(help="How far back from --until to look: 30m, 24h, 7d.")] = "24h",
    since: Annotated[
        datetime | None, typer.Option(help="Window start (ISO time, UTC if no zone); overrides --window.")
    ] = None,
    until: Annotated[datetime | None, typer.Option(help="Window end (default now).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object instead of the table.")] = False,
    home: HomeOption = None,
) -> None:
    """Count what the log holds in a window: predictions, feedback, feedback that joins its prediction,
    dead letters (records a store refused) and predictions stored twice by a journal replay.

    Reads the sink the settings choose (PIGEONHOLE_LOG_SINK: files or postgres), as drift and retraining do.
    """
    from pigeonhole.prediction_log.sinks import open_sink
    from pigeonhole.prediction_log.stats import log_stats

    settings = get_settings(home=home)
    start, end = _window(window, since, until)
    sink = open_sink(settings)
    try:
        stats = log_stats(sink, start, end)
    finally:
        sink.close()
    if as_json:
        out.print_json(json.dumps(stats.as_json()))
        return
    table = Table(
        "",
        "count",
        title=f"{settings.log_sink.value} log, {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC",
    )
    table.add_row("predictions", str(stats.predictions))
    table.add_row("feedback", str(stats.feedback))
    table.add_row("  joining its prediction", str(stats.feedback_joined))
    table.add_row("dead letters (refused by the store)", str(stats.dead_letters))
    table.add_row("predictions stored twice (shown once)", str(stats.stored_twice))
    table.add_row("first / last prediction", f"{stats.first or '-'} / {stats.last or '-'}")
    out.print(table)


@app.command()
@_friendly_errors
def retrain(
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            help="Reference dataset (path or mlflow-artifacts:/ URI); default PIGEONHOLE_RETRAIN_DATA, "
            "else the champion's own.",
        ),
    ] = None,
    feedback_days: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="Use feedback from this many days back (default PIGEONHOLE_RETRAIN_FEEDBACK_DAYS, 30).",
        ),
    ] = None,
    exit_zero: Annotated[
        bool,
        typer.Option(help="Exit 0 also when the gate keeps the champion (the decision is in the output)."),
    ] = False,
    reason: Annotated[
        str, typer.Option(help="Why it runs; names the MLflow run `retrain <reason> (+N feedback rows)`.")
    ] = "on request",
    home: HomeOption = None,
    tracking_uri: TrackingOption = None,
) -> None:
    """Train a challenger on the reference data plus feedback-labelled traffic, then run the gate.

    With no champion yet this is the bootstrap: the gate's floors decide the first champion.

    Exits 0 when the challenger was promoted, 3 when the gate kept the champion (0 with
    --exit-zero). Under GitHub Actions the decision is also written to $GITHUB_OUTPUT
    (`promoted=true|false`, `version=N`) for the next steps.
    """
    from pigeonhole.monitoring.retrain import retrain as run_retrain

    settings = get_settings(home=home, tracking_uri=tracking_uri, retrain_feedback_days=feedback_days)
    outcome = run_retrain(settings, data, reason)
    out.print(outcome.summary(), highlight=False)
    _github_output(promoted=str(outcome.decision.promoted).lower(), version=outcome.version)
    raise typer.Exit(ExitCode.ok if outcome.decision.promoted or exit_zero else ExitCode.declined)


def _github_output(**values: str) -> None:
    """Step outputs for GitHub Actions; a no-op anywhere else."""
    target = os.environ.get("GITHUB_OUTPUT")
    if target:
        with open(target, "a", encoding="utf-8") as handle:
            handle.writelines(f"{key}={value}\n" for key, value in values.items())


@app.command()
@_friendly_errors
def smoke(
    url: Annotated[
        str, typer.Argument(help="Base URL of a deployed service, e.g. https://suggest.example.com.")
    ],
    api_key: Annotated[
        str,
        typer.Option(
            envvar="SMOKE_API_KEY", help="A client API key of the service (`pigeonhole keys add smoke`)."
        ),
    ],
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the service to become ready.")] = 120.0,
) -> None:
    """Check a deployed service for real: /readyz answers 200 and /suggest categorises a listing.

    Exits 0 when both pass, 1 otherwise; the deploy workflow rolls back on a failure.
    """
    from pigeonhole.serving.smoke import SmokeFailed, check

    try:
        with console.status(f"waiting up to {timeout:.0f} s for {url.rstrip('/')}/readyz, then one /suggest"):
            seen = check(url, api_key, timeout)
        for line in seen:
            out.print(line, highlight=False)
    except SmokeFailed as exc:
        console.print(f"[bold red]smoke test failed:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(ExitCode.failure) from None


@app.command()
@_friendly_errors
def build(home: HomeOption = None) -> None:
    """Build a Bento of the service and its code (no model); CI builds the image from its Dockerfile.

    The image needs no champion: deployed services follow the registry's champion alias. BentoML's
    stores live under <home>/bentoml unless BENTOML_HOME says otherwise.
    """
    from pigeonhole.serving.packaging import build_bento

    built = build_bento(get_settings(home=home))
    out.print(f"built Bento {built.tag}")
    out.print(f"Dockerfile: {built.dockerfile}")


@app.command()
@_friendly_errors
def serve(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 3000,
    host: Annotated[
        str, typer.Option(help="Interface to bind; 0.0.0.0 to accept outside connections.")
    ] = "127.0.0.1",
    bento: Annotated[
        str | None,
        typer.Option(help="Serve a built Bento (tag from `pigeonhole build`) instead of the source tree."),
    ] = None,
    home: HomeOption = None,
    tracking_uri: TrackingOption = None,
) -> None:
    """Run the suggestion service on HTTP: it serves the registry's champion and follows promotions.

    Settings come from PIGEONHOLE_* variables (workers, abstain threshold, log sink, A/B share).
    """
    from pigeonhole.serving.auth import KeyRing
    from pigeonhole.serving.packaging import use_bentoml_home
    from pigeonhole.serving.process import SERVICE, serve_command

    settings = get_settings(home=home, tracking_uri=tracking_uri)
    if not KeyRing(settings.keys_path).entries():
        raise UserError(
            f"no API keys in {settings.keys_path}: nobody could call the service; "
            "create one first with `pigeonhole keys add NAME`"
        )
    use_bentoml_home(settings)
    os.environ["PIGEONHOLE_HOME"] = str(settings.home)
    if tracking_uri:
        os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    command = serve_command(port, bento or SERVICE, host)
    log.info("serving on http://%s:%d (%s)", host, port, bento or "registry champion")
    os.execv(sys.executable, command)  # BentoML owns the process from here: signals, workers, shutdown


def _key_ring(file: Path | None, home: Path | None) -> KeyRing:
    from pigeonhole.serving.auth import KeyRing

    return KeyRing(file or get_settings(home=home).keys_path)


@keys_app.command("add")
@_friendly_errors
def keys_add(
    caller: Annotated[str, typer.Argument(help="Who holds the key: an app or team name, e.g. web-app.")],
    role: Annotated[
        str,
        typer.Option(
            help="client: /suggest, /suggest_batch, /feedback; metrics: /metrics (Prometheus); "
            "admin: every route (reload, docs)."
        ),
    ] = "client",
    file: KeyFileOption = None,
    home: HomeOption = None,
) -> None:
    """Make a new key for CALLER and print it, once: only its SHA-256 is stored.

    To rotate: add a second key for the caller, switch it over, then `pigeonhole keys revoke`. A
    running service rereads the file when it changes (in a cluster: update the Secret).
    """
    from pigeonhole.serving.auth import Role

    if role not in Role.__members__:
        raise typer.BadParameter(f"--role must be one of {', '.join(Role)}, not {role!r}")
    ring = _key_ring(file, home)
    key = ring.add(caller, Role(role))
    console.print(f"added a {role} key for {caller} to {ring.path}; it is shown only now:", highlight=False)
    out.print(key, highlight=False)


@keys_app.command("list")
@_friendly_errors
def keys_list(file: KeyFileOption = None, home: HomeOption = None) -> None:
    """Who holds keys, with which role, since when (the keys themselves are not stored)."""
    table = Table("caller", "role", "created", "sha256 (first 12)")
    for entry in _key_ring(file, home).entries():
        table.add_row(entry.caller, entry.role, entry.created, entry.sha256[:12])
    out.print(table)


@keys_app.command("revoke")
@_friendly_errors
def keys_revoke(
    caller: Annotated[str, typer.Argument(help="Whose keys to remove.")],
    file: KeyFileOption = None,
    home: HomeOption = None,
) -> None:
    """Remove every key of CALLER: its next request gets 401."""
    ring = _key_ring(file, home)
    removed = ring.revoke(caller)
    if not removed:
        raise UserError(f"{caller!r} holds no key in {ring.path}")
    out.print(f"revoked {removed} key(s) of {caller}")


@db_app.command("setup")
@_friendly_errors
def db_setup(
    admin_url: Annotated[
        str, _credential("DB_ADMIN_URL", "The server's administrator, as postgresql://USER:PASSWORD@HOST/DB")
    ],
    registry_url: Annotated[
        str, _credential("DB_REGISTRY_URL", "MLflow's backend role, as postgresql://USER:PASSWORD@HOST/DB")
    ],
    log_url: Annotated[
        str, _credential("DB_LOG_URL", "The prediction log's owner, as postgresql://USER:PASSWORD@HOST/DB")
    ],
    writer_url: Annotated[
        str,
        _credential(
            "DB_LOG_WRITER_URL", "The service's insert-only role, as postgresql://USER:PASSWORD@HOST/DB"
        ),
    ],
) -> None:
    """Create (or update) the registry's and the log's roles, databases and tables, least privilege.

    The service's role may only insert into the log; the registry's database admits its own role alone.

    Safe to run again: passwords are reset to the URLs' and grants re-applied.

    A deployed stack runs it as the `pigeonhole-db-setup` Job before anything connects.
    """
    import psycopg

    from pigeonhole.prediction_log.database import setup_databases

    try:
        done = setup_databases(admin_url, registry_url, log_url, writer_url)
    except (psycopg.Error, ValueError) as exc:
        raise UserError(f"database setup failed: {str(exc).strip()}") from None
    for line in done:
        out.print(line, highlight=False)


@app.command()
@_friendly_errors
def demo(
    data: Annotated[
        Path | None,
        typer.Option("--data", help="A real dataset instead of generated listings; needs --drift-by."),
    ] = None,
    drift_by: Annotated[
        str | None,
        typer.Option(
            help="Numeric column of --data to cut along: lower half trains, upper half drifts (e.g. year)."
        ),
    ] = None,
    rows: Annotated[int, typer.Option(min=500, help="Listings v1 trains on.")] = 8000,
    requests: Annotated[int, typer.Option(min=100, help="Requests per traffic phase.")] = 1500,
    feedback_share: Annotated[
        float,
        typer.Option(min=0.05, max=1.0, help="Share of requests whose seller reports the final category."),
    ] = 0.5,
    port: Annotated[int, typer.Option(help="Port for the service; 0 picks a free one.")] = 0,
    fresh: Annotated[
        bool, typer.Option(help="Start from an empty state folder; --no-fresh continues the last run.")
    ] = True,
    home: HomeOption = None,
) -> None:
    """Run the whole loop on this machine: train, serve, send traffic, detect drift, retrain, promote.

    v1 is trained and promoted; the BentoML service starts on localhost; normal and then drifted
    traffic goes through HTTP with sellers' feedback for a share of it; the drift job runs on each
    phase and, on drift, retrains on the feedback-labelled traffic; the gate promotes v2, the service
    reloads it, and fresh drifted traffic shows the recovery; that window becomes v2's drift reference,
    so the last ("steady") phase is calm again. State lives in --home (.pigeonhole);
    a run starts clean unless --no-fresh, which keeps the registry and adds new versions.
    """
    from pigeonhole import demo as loop
    from pigeonhole.serving.process import free_port

    if (data is None) != (drift_by is None):
        raise typer.BadParameter(
            "--data and --drift-by go together (e.g. --data myntra.csv.gz --drift-by year)"
        )
    settings = get_settings(home=home)
    if fresh:
        loop.reset(settings)
    traffic = (
        loop.synthetic_traffic(rows, requests, settings.seed)
        if data is None or drift_by is None
        else loop.real_traffic(data, drift_by, rows, requests, settings.seed)
    )
    source = str(data) if data else f"synthetic listings (seed {settings.seed})"
    started = time.monotonic()
    results = loop.run(settings, traffic, source, port or free_port(), feedback_share, out)
    # the table is wider than the 80 columns rich assumes when output goes to a file or CI log
    (out if out.is_terminal else Console(width=120)).print(loop.summary_table(results))
    out.print(f"summary: {loop.write_summary(settings, results)}", highlight=False)
    for line in loop.where_to_look(settings, results):
        out.print(line, highlight=False)
    out.print(f"demo finished in {time.monotonic() - started:.0f} s; the service has been stopped")


if __name__ == "__main__":
    app()
