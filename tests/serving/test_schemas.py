"""Each constraint of the request bodies at its boundary, in process (tests/serving/test_service.py
sends the same bodies to a real server). `make mutation` holds these to nine mutants killed in ten."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from pigeonhole.serving.schemas import (
    BATCH_EXAMPLE,
    FEEDBACK_EXAMPLE,
    SUGGEST_EXAMPLE,
    FeedbackRequest,
    Listing,
    SuggestRequest,
)

TOKEN = "t" * 40


def _refused(model: type[Any], body: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as refused:
        model.model_validate(body)
    return str(refused.value)


@pytest.mark.parametrize(
    ("field", "accepted", "refused"),
    [
        ("title", ["x", "x" * 300, "  " + "x" * 300 + "  "], ["", "   ", "x" * 301, "\u200b\u200b"]),
        ("description", ["", "d" * 5000, "line\nbreak\ttab"], ["d" * 5001, "nul\x00"]),
        ("price", [0, 0.0, 12.5, 10**9], [-0.01, -1, float("nan"), float("inf")]),
        ("k", [1, 20], [0, 21, -1]),
        ("listing_id", ["L", "L" * 200], ["", " ", "L" * 201]),
    ],
)
def test_each_suggest_field_at_its_limits(field: str, accepted: list[Any], refused: list[Any]) -> None:
    for value in accepted:
        request = SuggestRequest.model_validate({"title": "iPhone 13", field: value})
        assert getattr(request, field) == (value.strip() if field in ("title", "listing_id") else value)
    for value in refused:
        assert field in _refused(SuggestRequest, {"title": "iPhone 13", field: value})


def test_optional_fields_may_be_left_out_or_null_and_unknown_ones_are_refused() -> None:
    bare = SuggestRequest.model_validate({"title": "iPhone 13"})
    assert (bare.description, bare.price, bare.k, bare.listing_id) == (None, None, None, None)
    assert SuggestRequest.model_validate({"title": "x", "description": None, "price": None}).price is None
    assert "descripton" in _refused(SuggestRequest, {"title": "iPhone 13", "descripton": "typo"})
    assert "title" in _refused(SuggestRequest, {"price": 3})


@pytest.mark.parametrize(
    ("field", "accepted", "refused"),
    [
        ("feedback_token", ["t", "t" * 2000], ["", "t" * 2001]),
        ("chosen_category", ["A", "A" * 500, " Electronics > Phones "], ["", "  ", "A" * 501, "\u200b"]),
    ],
)
def test_each_feedback_field_at_its_limits(field: str, accepted: list[str], refused: list[str]) -> None:
    body = {"feedback_token": TOKEN, "listing": {"title": "iPhone 13"}, "chosen_category": "Phones"}
    for value in accepted:
        assert FeedbackRequest.model_validate({**body, field: value})
    for value in refused:
        assert field in _refused(FeedbackRequest, {**body, field: value})
    assert "listing" in _refused(FeedbackRequest, {**body, "listing": {"title": ""}})
    assert "extra" in _refused(FeedbackRequest, {**body, "extra": 1})


def test_feedback_answering_a_suggestion_carries_its_listing_only() -> None:
    asked = SuggestRequest(title="iPhone 13", description="boxed", price=300.0, listing_id="L-1", k=3)
    feedback = FeedbackRequest.answering(asked, TOKEN, "Phones")
    assert feedback.listing == Listing(title="iPhone 13", description="boxed", price=300.0)
    assert (feedback.feedback_token, feedback.chosen_category) == (TOKEN, "Phones")


def test_the_documented_examples_are_valid_bodies() -> None:
    assert SuggestRequest.model_validate(SUGGEST_EXAMPLE).k == 3
    assert [SuggestRequest.model_validate(item).title for item in BATCH_EXAMPLE][1].startswith("IKEA")
    assert FeedbackRequest.model_validate(FEEDBACK_EXAMPLE).listing.price == 450.0
