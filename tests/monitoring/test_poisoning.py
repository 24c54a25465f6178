"""The security issue's attacks, replayed: poisoned feedback and a forgetful retraining never reach traffic.

Before the frozen benchmark, both were promoted: 400 phone listings labelled "Pets > Dogs & puppies"
through /feedback made the live model call an iPhone a puppy, and a retraining on a catalogue that
had lost a category passed the gate because the recent rows barely held that category.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pigeonhole.core.settings import Settings
from pigeonhole.model import data
from pigeonhole.model.promote import run_gate
from pigeonhole.model.registry import CHAMPION, connect
from pigeonhole.model.synthetic import generate
from pigeonhole.model.train import train_and_register
from pigeonhole.monitoring.retrain import retrain
from pigeonhole.prediction_log.recorder import PredictionRecorder
from pigeonhole.prediction_log.sinks import FileSink
from pigeonhole.serving.engine import ModelHolder, SuggestionEngine
from pigeonhole.serving.schemas import FeedbackRequest, SuggestRequest
from pigeonhole.serving.tokens import FeedbackRefused, FeedbackTokens

PHONES = "Electronics > Mobile phones"


@pytest.fixture
def champion(tmp_path: Path, listings: pd.DataFrame) -> Settings:
    settings = Settings(home=tmp_path / "state", min_class_count=5)
    listings.to_csv(tmp_path / "listings.csv", index=False)
    train_and_register(settings, data.validate(listings), source=str(tmp_path / "listings.csv"))
    assert run_gate(connect(settings), settings).promoted
    return settings


def _champion_version(settings: Settings) -> str:
    return str(connect(settings).get_model_version_by_alias(settings.model_name, CHAMPION).version)


def test_a_feedback_flood_is_capped_and_the_poisoned_challenger_rejected(champion: Settings) -> None:
    holder = ModelHolder(champion)
    assert holder.refresh()
    sink = FileSink(champion.log_dir)
    recorder = PredictionRecorder(sink, 100_000, 60)
    engine = SuggestionEngine(champion, holder, recorder, sink, FeedbackTokens(champion))
    listings = generate(8000, seed=99)
    phones = listings[listings["category_path"].str.startswith(PHONES)].head(400)
    asked = [SuggestRequest(title=title) for title in phones["title"]]
    for item, answer in zip(asked, engine.suggest(asked), strict=True):
        engine.feedback(
            FeedbackRequest.answering(item, answer.feedback_token, "Pets > Dogs & puppies"), "attacker"
        )
    laptop = SuggestRequest(title="Dell XPS 13 laptop")
    token = engine.suggest([laptop])[0].feedback_token
    with pytest.raises(FeedbackRefused):  # a made-up category is never stored, let alone trained on
        engine.feedback(FeedbackRequest.answering(laptop, token, "Deals > Message me"), "attacker")
    assert recorder.flush()

    outcome = retrain(champion)

    assert outcome.capped["per-category"] >= 250, "dogs may gain at most as many rows as the catalogue has"
    assert not outcome.decision.promoted and _champion_version(champion) == "1", outcome.summary()
    failed = [reason for reason in outcome.decision.reasons if reason.startswith("FAIL")]
    # on the recent rows, half of them the attacker's, the poisoned model even looks better
    assert not any(reason.startswith("FAIL macro-F1") for reason in outcome.decision.reasons)
    assert any(reason.startswith("FAIL benchmark") for reason in failed), outcome.decision.reasons
    print(outcome.summary())


def test_a_retraining_that_forgets_a_category_is_rejected(
    champion: Settings, listings: pd.DataFrame, tmp_path: Path
) -> None:
    forgetful = tmp_path / "without-phones.csv"
    listings[~listings["category_path"].str.startswith(PHONES)].to_csv(forgetful, index=False)

    outcome = retrain(champion, str(forgetful))

    assert not outcome.decision.promoted and _champion_version(champion) == "1"
    failed = [reason for reason in outcome.decision.reasons if reason.startswith("FAIL")]
    assert any(f"'{PHONES}' recall" in reason for reason in failed), outcome.decision.reasons
    print(outcome.summary())
