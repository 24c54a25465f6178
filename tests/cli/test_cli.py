"""The CLI as users meet it: help everywhere, clear refusals with exit code 2, nothing half-written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from typer.core import TyperCommand, TyperGroup, TyperOption
from typer.main import get_command
from typer.testing import CliRunner

from pigeonhole.cli import app
from pigeonhole.core.settings import Settings

runner = CliRunner()


def _commands(command: TyperCommand | TyperGroup, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    if isinstance(command, TyperGroup):
        for name, sub in command.commands.items():
            found += _commands(sub, (*path, name))
    return found


@pytest.mark.parametrize("path", _commands(get_command(app)), ids=lambda p: " ".join(p) or "pigeonhole")
def test_every_command_explains_itself(path: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output
    assert len(result.output.split("Options")[0].strip().splitlines()) >= 3, "a one-line help is not enough"


@pytest.mark.parametrize("path", _commands(get_command(app)), ids=lambda p: " ".join(p) or "pigeonhole")
def test_every_option_a_setting_backs_shows_that_settings_default(path: tuple[str, ...]) -> None:
    """An option left out takes the setting's value: --help says which, and which variable sets it."""
    command = get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    shown = " ".join(runner.invoke(app, [*path, "--help"], env={"COLUMNS": "400"}).output.split())
    for option in command.params:
        field = Settings.model_fields.get(option.name or "")
        if isinstance(option, TyperOption) and option.default is None and field and field.default is not None:
            default = getattr(field.default, "value", field.default)
            assert f"[default: ({default}, env PIGEONHOLE_{option.name.upper()})]" in shown, option.opts  # type: ignore[union-attr]


HEAVY = ("mlflow", "sklearn", "bentoml", "evidently", "pulumi")


def test_help_imports_nothing_heavy() -> None:
    """`pigeonhole --help` answers at once: heavy libraries load inside the commands that use them."""
    shown = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pigeonhole.cli", "--help"], capture_output=True, text=True
    )
    assert shown.returncode == 0 and "Usage" in shown.stdout
    imported = {
        line.split("|")[-1].strip().split(".")[0] for line in shown.stderr.splitlines() if "|" in line
    }
    assert "typer" in imported, "the import trace was read"
    assert imported.isdisjoint(HEAVY), sorted(imported & set(HEAVY))


BROKEN = {
    "missing column": lambda f: f.drop(columns=["title"]),
    "empty titles": lambda f: f.assign(title=""),
    "one class": lambda f: f.assign(category_path="Electronics > Mobile phones"),
    "text in price": lambda f: f.astype({"price": object}).assign(price="cheap"),
}


@pytest.mark.parametrize("breakage", BROKEN)
def test_broken_dataset_exits_2_and_writes_nothing(
    tmp_path: Path, listings: pd.DataFrame, breakage: str
) -> None:
    path = tmp_path / "broken.csv"
    BROKEN[breakage](listings.head(200)).to_csv(path, index=False)
    home = tmp_path / "state"
    result = runner.invoke(app, ["train", "--data", str(path), "--home", str(home)])
    assert result.exit_code == 2, result.output
    assert "error:" in result.output
    assert not home.exists(), "a refused dataset must not touch the registry"


def test_a_catalogue_with_one_broken_row_trains_and_logs_the_row(
    tmp_path: Path, listings: pd.DataFrame
) -> None:
    catalogue = listings.head(1500).copy()
    catalogue.loc[42, "title"] = ""  # one blank title, as in a real catalogue of 27,555 rows
    path = tmp_path / "mine.csv"
    catalogue.to_csv(path, index=False)
    home = tmp_path / "state"
    trained = runner.invoke(
        app, ["train", "--data", str(path), "--min-class-count", "5", "--home", str(home)]
    )
    assert trained.exit_code == 0 and "dropped 1 invalid row(s)" in trained.output, trained.output
    mlflow.set_tracking_uri(Settings(home=home).resolved_tracking_uri)
    [run] = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert run.data.params["invalid_rows_dropped"] == "1"
    table = mlflow.load_table("data/invalid_rows.json", run_ids=[run.info.run_id])
    assert table["listing_id"].tolist() == [str(catalogue.loc[42, "listing_id"])]
    assert table["reason"].iloc[0].startswith("title:")
    strict = runner.invoke(
        app, ["train", "--data", str(path), "--max-invalid-share", "0", "--home", str(tmp_path / "s2")]
    )
    assert strict.exit_code == 2 and "1 of 1,500 rows" in strict.output


def test_unreadable_file_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "listings.csv.gz"
    path.write_bytes(b"definitely not gzip")
    result = runner.invoke(app, ["data", "validate", str(path)])
    assert result.exit_code == 2 and "cannot be read" in result.output


def test_generate_validate_train_promote_rollback_round_trip(tmp_path: Path) -> None:
    data_path, home = tmp_path / "listings.parquet", ["--home", str(tmp_path / "state")]
    assert runner.invoke(app, ["data", "generate", "--rows", "1500", "--out", str(data_path)]).exit_code == 0
    validated = runner.invoke(app, ["data", "validate", str(data_path)])
    assert validated.exit_code == 0 and "1,500 valid listings" in validated.output
    trained = runner.invoke(app, ["train", "--data", str(data_path), "--min-class-count", "5", *home])
    assert trained.exit_code == 0 and "v1 as challenger" in trained.output, trained.output
    promoted = runner.invoke(app, ["promote", *home])
    assert promoted.exit_code == 0 and "PROMOTED" in promoted.output
    again = runner.invoke(app, ["promote", *home])
    assert again.exit_code == 3 and "already the champion" in again.output
    nothing = runner.invoke(app, ["rollback", *home])
    assert nothing.exit_code == 2 and "nothing to roll back" in nothing.output
    listed = runner.invoke(app, ["models", "list", *home])
    assert listed.exit_code == 0 and "champion" in listed.output
    _score_in_chunks_with_the_champion(tmp_path, home)


def _score_in_chunks_with_the_champion(tmp_path: Path, home: list[str]) -> None:
    """A file scored 400 rows at a time comes out whole, in order; a file that cannot be scored
    exits 2 and leaves nothing at --out."""
    listings = pd.DataFrame(
        {"listing_id": [f"n{i}" for i in range(1000)], "title": ["iPhone 13 128GB, like new"] * 1000}
    )
    listings.loc[7, "title"] = None
    listings.to_csv(tmp_path / "new.csv.gz", index=False)
    out = tmp_path / "scored" / "new.parquet"
    args = [
        "score",
        "--data",
        str(tmp_path / "new.csv.gz"),
        "--out",
        str(out),
        "--chunk-rows",
        "400",
        "--k",
        "2",
    ]
    scored = runner.invoke(app, [*args, *home])
    assert scored.exit_code == 0 and "scored 1,000 listings" in scored.output, scored.output
    answers = pd.read_parquet(out)
    assert answers["listing_id"].tolist() == listings["listing_id"].tolist()
    assert set(answers.drop(index=7)["category"]) == {"Electronics > Mobile phones"}
    assert answers["top_categories"].map(len).eq(2).all()
    listings.drop(columns=["title"]).to_parquet(tmp_path / "untitled.parquet")
    refused = runner.invoke(
        app, ["score", "--data", str(tmp_path / "untitled.parquet"), "--out", str(out), *home]
    )
    assert refused.exit_code == 2 and "needs a title column" in refused.output
    assert pd.read_parquet(out).equals(answers) and not list(out.parent.glob(".*partial"))


@pytest.mark.parametrize(
    "command",
    [
        ["promote"],
        ["rollback"],
        ["models", "list"],
        ["monitor", "drift"],
        ["score", "--data", "x.csv", "--out", "y"],
    ],
)
def test_a_home_without_a_registry_is_named_not_created(command: list[str], tmp_path: Path) -> None:
    """A mistyped --home must not look like an empty registry, nor leave a new one behind."""
    home = tmp_path / "typo"
    result = runner.invoke(app, [*command, "--home", str(home)])
    assert result.exit_code == 2 and f"no registry in {home}" in result.output, result.output
    assert "`pigeonhole train`" in result.output and not home.exists()


def test_keys_are_shown_once_and_stored_only_as_hashes(tmp_path: Path) -> None:
    runner, file = CliRunner(), str(tmp_path / "keys.json")
    added = runner.invoke(app, ["keys", "add", "web-app", "--file", file])
    assert added.exit_code == 0, added.output
    key = added.stdout.strip().splitlines()[-1]
    assert key.startswith("ph_") and len(key) > 40
    listed = runner.invoke(app, ["keys", "list", "--file", file])
    assert "web-app" in listed.output and "client" in listed.output
    assert key not in listed.output and key not in Path(file).read_text()
    assert Path(file).stat().st_mode & 0o077 == 0, "only the owner may read the key file"
    wrong_role = runner.invoke(app, ["keys", "add", "x", "--role", "root", "--file", file])
    assert wrong_role.exit_code == 2 and "client, metrics, admin" in wrong_role.output
    nobody = runner.invoke(app, ["keys", "revoke", "nobody", "--file", file])
    assert nobody.exit_code == 2 and "holds no key" in nobody.output
