"""`pigeonhole demo`, the README's main job: the whole loop, end to end, in a reduced size."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from typer.testing import CliRunner

from pigeonhole.cli import app
from pigeonhole.core.settings import Settings
from pigeonhole.model.registry import CHAMPION, connect
from pigeonhole.model.synthetic import generate

REDUCED = ["--rows", "2000", "--requests", "1000", "--feedback-share", "0.9"]


def _cli() -> str:
    found = shutil.which("pigeonhole", path=str(Path(sys.executable).parent))
    assert found is not None
    return found


def _processes_using(home: Path) -> list[psutil.Process]:
    """Live processes started for this state folder (the service and its workers)."""
    found = []
    for process in psutil.process_iter(["pid"]):
        try:
            if process.environ().get("PIGEONHOLE_HOME") == str(home):
                found.append(process)
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return found


def test_the_demo_detects_drift_retrains_promotes_and_recovers(tmp_path: Path) -> None:
    home = tmp_path / "state"
    done = subprocess.run(
        [_cli(), "demo", "--home", str(home), *REDUCED], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    phases = {row["phase"]: row for row in json.loads((home / "demo-summary.json").read_text())}
    normal, drifted, after = phases["normal"], phases["drifted"], phases["after retrain"]
    assert normal["decision"] == "no_drift" and normal["model_version"] == "1"
    assert drifted["decision"] == "drift" and drifted["model_version"] == "1"
    assert drifted["then"] == "retrained, v2 live"
    assert after["model_version"] == "2" and after["then"] == "reference refreshed (v2)"
    assert after["accuracy"] > drifted["accuracy"]
    steady = phases["steady"]
    assert steady["model_version"] == "2" and steady["decision"] == "no_drift", "drift clears after recovery"
    assert all(Path(row["report"]).is_file() for row in phases.values())
    champion = connect(Settings(home=home)).get_model_version_by_alias("listing-category", CHAMPION)
    assert str(champion.version) == "2"
    assert "pigeonhole demo" in done.stdout and "the service has been stopped" in done.stdout
    assert _processes_using(home) == []


def test_ctrl_c_stops_the_demo_and_its_service(tmp_path: Path) -> None:
    home = tmp_path / "state"
    demo = subprocess.Popen(
        [_cli(), "demo", "--home", str(home), *REDUCED],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert demo.stdout is not None
    for line in demo.stdout:
        if "service ready at" in line:
            break
    else:
        pytest.fail(f"the demo ended before its service was ready: exit {demo.wait()}")
    assert _processes_using(home), "the service should be running now"
    demo.send_signal(signal.SIGINT)
    assert demo.wait(timeout=60) != 0
    assert _processes_using(home) == []


def test_bad_demo_input_is_refused_with_what_to_fix(tmp_path: Path) -> None:
    listings = tmp_path / "listings.csv"
    generate(600, seed=3).to_csv(listings, index=False)
    runner = CliRunner()
    alone = runner.invoke(app, ["demo", "--home", str(tmp_path / "s"), "--data", str(listings)])
    assert alone.exit_code == 2 and "--data and --drift-by go together" in alone.output
    missing = runner.invoke(
        app, ["demo", "--home", str(tmp_path / "s"), "--data", str(listings), "--drift-by", "year"]
    )
    assert missing.exit_code == 2 and "'year' is not a column" in missing.output
