"""The promotion gate, rollback and the registry's history."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pigeonhole.core.settings import Settings
from pigeonhole.model import data
from pigeonhole.model.promote import run_gate
from pigeonhole.model.registry import CHAMPION, RegistryError, connect, list_versions, rollback
from pigeonhole.model.train import train_and_register


def _train(settings: Settings, frame: pd.DataFrame) -> str:
    return train_and_register(settings, data.validate(frame), source="test").version


def test_first_model_is_promoted_only_above_the_floors(settings: Settings, listings: pd.DataFrame) -> None:
    client = connect(settings)
    strict = settings.model_copy(update={"gate_floor_accuracy": 0.999})
    _train(strict, listings)
    refused = run_gate(client, strict)
    assert not refused.promoted and any("FAIL accuracy" in r for r in refused.reasons)
    accepted = run_gate(client, settings)
    assert accepted.promoted and accepted.champion is None
    assert (
        str(client.get_model_version_by_alias(settings.model_name, CHAMPION).version) == accepted.challenger
    )
    version = client.get_model_version(settings.model_name, accepted.challenger)
    assert version.tags["gate.decision"] == "promoted" and "floor" in version.tags["gate.reasons"]
    assert version.tags["gate.challenger.eval_rows"].isdigit(), "a count reads as a count"
    assert (
        version.description.startswith("Trained on test (")
        and "held-out rows: accuracy" in version.description
    )
    assert version.description.count("Gate: ") == 1 and "Gate: promoted: " in version.description
    assert version.aliases == ["champion"], "a promoted version is no longer the challenger"


def test_without_automatic_promotion_a_passing_challenger_waits_for_review(
    settings: Settings, listings: pd.DataFrame
) -> None:
    """prod: the gate records its verdict, and only the reviewed `pigeonhole promote` moves the alias."""
    client = connect(settings)
    version = _train(settings, listings)
    waiting = run_gate(client, settings, promote=False)
    assert waiting.passed and not waiting.promoted and waiting.label == "passed, awaiting review"
    assert client.get_model_version(settings.model_name, version).tags["gate.decision"] == waiting.label
    with pytest.raises(Exception, match="champion"):
        client.get_model_version_by_alias(settings.model_name, CHAMPION)
    assert run_gate(client, settings).promoted
    assert str(client.get_model_version_by_alias(settings.model_name, CHAMPION).version) == version


def test_sabotaged_challenger_is_never_promoted(settings: Settings, listings: pd.DataFrame) -> None:
    client = connect(settings)
    _train(settings, listings)
    assert run_gate(client, settings).promoted
    shuffled = listings.assign(category_path=np.random.default_rng(0).permutation(listings["category_path"]))
    bad = _train(settings, shuffled)
    decision = run_gate(client, settings, rows=None)
    assert not decision.promoted and decision.challenger == bad
    assert str(client.get_model_version_by_alias(settings.model_name, CHAMPION).version) != bad
    assert client.get_model_version(settings.model_name, bad).tags["gate.decision"] == "rejected"


def test_better_challenger_is_promoted_and_rollback_restores(
    settings: Settings, listings: pd.DataFrame
) -> None:
    client = connect(settings)
    weak = _train(settings, listings.head(300))
    assert run_gate(
        client, settings.model_copy(update={"gate_floor_f1": 0.0, "gate_floor_accuracy": 0.0})
    ).promoted
    strong = _train(settings, listings)
    decision = run_gate(client, settings)
    assert decision.promoted, decision.reasons
    assert decision.challenger_metrics["macro_f1"] > decision.champion_metrics["macro_f1"]
    assert rollback(client, settings) == (strong, weak)
    assert str(client.get_model_version_by_alias(settings.model_name, CHAMPION).version) == weak
    rows = {row.version: row for row in list_versions(client, settings)}
    assert rows[weak].aliases == ["champion"] and rows[strong].aliases == []
    with pytest.raises(RegistryError, match="nothing to roll back"):
        rollback(client, settings)


def test_same_model_again_is_not_promoted(settings: Settings, listings: pd.DataFrame) -> None:
    client = connect(settings)
    _train(settings, listings)
    run_gate(client, settings)
    _train(settings, listings)
    decision = run_gate(client, settings)
    assert not decision.promoted and any("needs +" in r for r in decision.reasons)


def test_the_embedded_registry_keeps_everything_in_the_state_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not even MLflow's "Default" experiment points at ./mlruns of the folder a command ran in."""
    monkeypatch.chdir(tmp_path)
    settings = Settings(home=tmp_path / "state")
    client = connect(settings)
    locations = {e.name: e.artifact_location for e in client.search_experiments()}
    inside = (settings.home / "mlartifacts").as_uri()
    assert all(location.startswith(inside) for location in locations.values()), locations
    assert set(locations) == {"Default", settings.experiment} and not (tmp_path / "mlruns").exists()


def test_a_version_registered_with_joblib_still_loads(tmp_path: Path) -> None:
    """Versions registered before the plain pickle carry `pipeline.joblib`; rollback may need them."""
    import joblib
    from sklearn.dummy import DummyClassifier
    from sklearn.pipeline import Pipeline

    from pigeonhole.model.predict import Predictor
    from pigeonhole.model.registry import PIPELINE_FILE, pipeline_file

    old = Pipeline([("classifier", DummyClassifier().fit([[0], [1]], ["A", "B"]))])
    (tmp_path / "artifacts").mkdir()
    joblib.dump(old, tmp_path / "artifacts" / "pipeline.joblib")
    assert Predictor.load(pipeline_file(tmp_path)).classes.tolist() == ["A", "B"]
    Predictor(old).save(tmp_path / "artifacts" / PIPELINE_FILE)
    assert pipeline_file(tmp_path).name == PIPELINE_FILE
    assert Predictor.load(pipeline_file(tmp_path)).classes.tolist() == ["A", "B"]
