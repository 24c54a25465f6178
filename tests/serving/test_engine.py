"""Champion / challenger routing: a stable A/B split by listing and shadow scoring, both logged."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from pigeonhole.core.settings import Settings
from pigeonhole.model import data
from pigeonhole.model.promote import run_gate
from pigeonhole.model.registry import connect
from pigeonhole.model.train import train_and_register
from pigeonhole.prediction_log.recorder import PredictionRecorder
from pigeonhole.prediction_log.records import Variant
from pigeonhole.prediction_log.sinks import FileSink
from pigeonhole.prediction_log.window import labelled_listings
from pigeonhole.serving.engine import ModelHolder, SuggestionEngine, share_of
from pigeonhole.serving.schemas import FeedbackRequest, Listing, SuggestRequest
from pigeonhole.serving.tokens import FeedbackRefused, FeedbackTokens, SuggestionClaim, listing_digest


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory: pytest.TempPathFactory, listings: pd.DataFrame) -> Path:
    home = tmp_path_factory.mktemp("ab") / "state"
    settings = Settings(home=home, min_class_count=5)
    train_and_register(settings, data.validate(listings), source="v1")
    decision = run_gate(connect(settings), settings)
    assert decision.promoted, decision.reasons
    train_and_register(settings, data.validate(listings.sample(frac=0.9, random_state=1)), source="v2")
    return home


def _engine(home: Path, tmp_path: Path, **overrides: object) -> tuple[SuggestionEngine, PredictionRecorder]:
    settings = Settings.model_validate({"home": home, **overrides})
    holder = ModelHolder(settings)
    assert holder.refresh()
    sink = FileSink(tmp_path / "logs")
    recorder = PredictionRecorder(sink, 1000, 60)
    return SuggestionEngine(settings, holder, recorder, sink, FeedbackTokens(settings)), recorder


def test_share_of_is_stable_and_uniform() -> None:
    assert share_of("listing-42") == share_of("listing-42")
    shares = [share_of(f"listing-{i}") for i in range(4000)]
    assert 0.45 < sum(s < 0.5 for s in shares) / len(shares) < 0.55


def test_ab_split_routes_listings_stably_and_logs_the_variant(two_versions: Path, tmp_path: Path) -> None:
    engine, recorder = _engine(two_versions, tmp_path, challenger_share=0.5)
    items = [SuggestRequest(title="Dell XPS 13 laptop", listing_id=f"l-{i}") for i in range(200)]
    first = engine.suggest(items)
    again = engine.suggest(items)
    assert [a.variant for a in first] == [a.variant for a in again], "a listing stays in its arm"
    assert {a.variant for a in first} == {Variant.control, Variant.candidate}
    assert {a.model_version for a in first if a.variant is Variant.candidate} == {"2"}
    assert 60 < sum(a.variant is Variant.candidate for a in first) < 140
    no_id = engine.suggest([SuggestRequest(title="sofa")])[0]
    assert no_id.variant is Variant.control, "without a listing_id there is nothing stable to split on"
    answer = first[0]
    chosen = answer.suggestions[0].category
    feedback = engine.feedback(FeedbackRequest.answering(items[0], answer.feedback_token, chosen), "web")
    assert feedback.accepted_top_suggestion is True
    recorder.flush()
    assert recorder.pending == 0


def test_shadow_scores_the_challenger_without_answering_with_it(two_versions: Path, tmp_path: Path) -> None:
    engine, recorder = _engine(two_versions, tmp_path, shadow=True)
    answers = engine.suggest([SuggestRequest(title="Bugaboo Fox pushchair", listing_id="p-1")])
    assert [a.variant for a in answers] == [Variant.control] and answers[0].feedback_token
    logged = {record.variant: record.model_version for record in list(recorder._buffer)}
    assert logged == {Variant.control: "1", Variant.shadow: "2"}


def test_k_defaults_to_the_top_k_setting(two_versions: Path, tmp_path: Path) -> None:
    engine, _ = _engine(two_versions, tmp_path, top_k=2)
    default, asked = engine.suggest([SuggestRequest(title="sofa"), SuggestRequest(title="sofa", k=5)])
    assert (len(default.suggestions), len(asked.suggestions)) == (2, 5)


def test_abstains_below_the_threshold(two_versions: Path, tmp_path: Path) -> None:
    engine, _ = _engine(two_versions, tmp_path, abstain_below=0.999)
    assert engine.suggest([SuggestRequest(title="job lot")])[0].abstained
    engine, _ = _engine(two_versions, tmp_path, abstain_below=0.0)
    assert not engine.suggest([SuggestRequest(title="job lot")])[0].abstained


def test_feedback_tokens_expire_and_only_this_service_makes_them(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, feedback_token_ttl="0.0167m")  # 1 s
    tokens = FeedbackTokens(settings)
    claim = SuggestionClaim("r1", "l1", "1", "control", "Kids > Toys", 0.9, listing_digest(LEGO))
    assert tokens.verify(tokens.issue(claim), LEGO) == claim
    token = tokens.issue(claim)
    time.sleep(2.1)  # itsdangerous stamps whole seconds
    with pytest.raises(FeedbackRefused, match="expired"):
        tokens.verify(token, LEGO)
    other_key = FeedbackTokens(Settings(home=tmp_path / "elsewhere"))
    with pytest.raises(FeedbackRefused, match="not one this service issued"):
        other_key.verify(tokens.issue(claim), LEGO)


LEGO = Listing(title="Lego Technic 42115", description="boxed", price=250.0)


@pytest.mark.parametrize(
    "other",
    [
        Listing(title="Lego Technic 42116", description="boxed", price=250.0),
        Listing(title="Lego Technic 42115", description="boxed, with a free phone", price=250.0),
        Listing(title="Lego Technic 42115", description="boxed", price=25.0),
        Listing(title="Lego Technic 42115", price=250.0),
    ],
)
def test_a_token_vouches_only_for_the_listing_it_answered(tmp_path: Path, other: Listing) -> None:
    tokens = FeedbackTokens(Settings(home=tmp_path))
    claim = SuggestionClaim("r1", None, "1", "control", "Kids > Toys", 0.9, listing_digest(LEGO))
    token = tokens.issue(claim)
    assert tokens.verify(token, LEGO).request_id == "r1"
    with pytest.raises(FeedbackRefused, match="not the one this feedback_token was issued for"):
        tokens.verify(token, other)


def test_every_worker_of_a_home_signs_with_the_same_key(tmp_path: Path) -> None:
    claim = SuggestionClaim("r1", None, "1", "control", "Kids > Toys", 0.9, listing_digest(LEGO))
    issued = FeedbackTokens(Settings(home=tmp_path)).issue(claim)
    assert FeedbackTokens(Settings(home=tmp_path)).verify(issued, LEGO) == claim
    assert (tmp_path / "feedback-signing.key").stat().st_mode & 0o077 == 0, "only the owner may read it"


def test_unknown_and_bucket_categories_are_refused_not_stored(two_versions: Path, tmp_path: Path) -> None:
    engine, _ = _engine(two_versions, tmp_path)
    item = SuggestRequest(title="Dell XPS 13 laptop")
    answer = engine.suggest([item])[0]
    for chosen in ("Pets > Made up", "Other", "Deals > Message me on t.me/evil"):
        with pytest.raises(FeedbackRefused, match="is not a category of model v1"):
            engine.feedback(FeedbackRequest.answering(item, answer.feedback_token, chosen), "web")
    assert engine.sink.read_feedback(datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC)).empty


def test_feedback_is_a_complete_labelled_listing_without_its_prediction(
    two_versions: Path, tmp_path: Path
) -> None:
    engine, _ = _engine(two_versions, tmp_path)  # its recorder flushes once a minute: no prediction stored
    item = SuggestRequest(title="Dell XPS 13 laptop, call 07700 900123", description="mail a@b.co", price=450)
    answer = engine.suggest([item])[0]
    top = answer.suggestions[0]
    engine.feedback(FeedbackRequest.answering(item, answer.feedback_token, "Electronics > Laptops"), "web")

    since, until = datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC)
    assert engine.sink.read_predictions(since, until).empty
    [row] = labelled_listings(engine.sink.read_feedback(since, until)).to_dict("records")
    assert row["title"] == "Dell XPS 13 laptop, call <phone>" and row["description"] == "mail <email>"
    assert (row["price"], row["top_category"], row["top_score"]) == (450, top.category, top.score)
    chosen = "Electronics > Laptops"
    assert (row["chosen_category"], row["accepted"]) == (chosen, top.category == chosen)
