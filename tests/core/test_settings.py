"""The one settings contract: frozen, refuses unknown keys, typed CLI overrides, one window syntax."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from pigeonhole.core.settings import (
    Settings,
    environment_names,
    get_settings,
    parse_duration,
    setting_env,
    unknown_environment_names,
)


def test_settings_are_frozen_and_refuse_unknown_keys(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    with pytest.raises(ValidationError, match="frozen"):
        settings.depth = 3  # type: ignore[misc]
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Settings(home=tmp_path, dept=3)  # type: ignore[call-arg]


def test_cli_overrides_beat_the_environment_and_are_validated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIGEONHOLE_DEPTH", "3")
    monkeypatch.setenv("PIGEONHOLE_HOME", str(tmp_path / "from-env"))
    assert get_settings().depth == 3
    chosen = get_settings(depth=1, home=None)  # None: the flag was not given
    assert chosen.depth == 1 and chosen.home == (tmp_path / "from-env").resolve()
    with pytest.raises(ValidationError, match="drift_window"):
        get_settings(drift_window="soon")


@pytest.mark.parametrize(("text", "expected"), [("30m", 30 * 60), ("24h", 86_400), ("1.5d", 129_600)])
def test_durations_parse(text: str, expected: float) -> None:
    assert parse_duration(text) == timedelta(seconds=expected)


@pytest.mark.parametrize("text", ["soon", "24", "h", "-1h", "1w"])
def test_bad_durations_say_what_to_write(text: str) -> None:
    with pytest.raises(ValueError, match="30m, 24h, 7d"):
        parse_duration(text)


def test_environment_names_come_from_the_fields() -> None:
    names = environment_names()
    assert names["PIGEONHOLE_DRIFT_WINDOW"] == "drift_window"
    assert names["MLFLOW_TRACKING_URI"] == names["PIGEONHOLE_TRACKING_URI"] == "tracking_uri"
    assert setting_env("log_sink") == "PIGEONHOLE_LOG_SINK"
    with pytest.raises(KeyError, match="not a pigeonhole setting"):
        setting_env("log_snik")
    assert unknown_environment_names({"PIGEONHOLE_LOG_SNIK": "postgres", "PIGEONHOLE_DEPTH": "2"}) == [
        "PIGEONHOLE_LOG_SNIK"
    ]
