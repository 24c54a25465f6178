"""The service's request and response bodies: the API contract, with the constraints that guard it.

Every constraint carries a message that says what to send instead; unknown fields are refused so a
misspelt ``descripton`` is an error the seller's app sees, not silently ignored text.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue, StringConstraints
from pydantic.json_schema import JsonDict

from pigeonhole.core.text import check_text, check_visible
from pigeonhole.prediction_log.records import Variant

# no text a store cannot hold (NUL, other control characters, unpaired surrogates): refused with a 400
Title = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300), AfterValidator(check_visible)
]
Description = Annotated[str, StringConstraints(max_length=5000), AfterValidator(check_text)]
Identifier = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), AfterValidator(check_visible)
]
Category = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), AfterValidator(check_visible)
]


# what Swagger UI pre-fills: a listing a newcomer's first "Try it out" gets a real answer for
SUGGEST_EXAMPLE: JsonDict = {
    "title": "iPhone 13 128GB, like new",
    "description": "Unlocked, battery health 91 %, always in a case.",
    "price": 450.0,
    "listing_id": "L-1001",
    "k": 3,
}
BATCH_EXAMPLE: list[JsonValue] = [
    SUGGEST_EXAMPLE,
    {"title": "IKEA Poang armchair, birch veneer", "price": 40.0, "listing_id": "L-1002"},
]
FEEDBACK_EXAMPLE: JsonDict = {
    "feedback_token": "<the feedback_token of the /suggest answer>",
    "listing": {key: SUGGEST_EXAMPLE[key] for key in ("title", "description", "price")},
    "chosen_category": "Electronics > Mobile phones",
}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Listing(Strict):
    """What the seller typed: what the model reads, and what a feedback record keeps beside its label."""

    title: Title = Field(
        description="The listing title, 1-300 characters after trimming.",
        examples=["iPhone 13 128GB, like new"],
    )
    description: Description | None = Field(default=None, description="Free text, up to 5,000 characters.")
    price: float | None = Field(default=None, ge=0, allow_inf_nan=False, description="Finite, >= 0.")


class SuggestRequest(Listing):
    model_config = ConfigDict(json_schema_extra={"example": SUGGEST_EXAMPLE})

    listing_id: Identifier | None = Field(
        default=None, description="Your id for the listing; routes A/B traffic and links feedback."
    )
    k: int | None = Field(
        default=None,
        ge=1,
        le=20,
        description="How many suggestions, 1-20; default the service's top_k setting.",
    )


class Suggestion(BaseModel):
    category: str
    score: float


class SuggestResponse(BaseModel):
    suggestions: list[Suggestion]
    abstained: bool = Field(description="True when the best score is below the abstain threshold.")
    model_name: str
    model_version: str
    variant: Variant = Field(description="control (the champion) or candidate (the challenger, A/B test)")
    request_id: str
    feedback_token: str = Field(
        description="Send it back with /feedback once the seller has chosen; valid for a limited time."
    )


class FeedbackRequest(Strict):
    model_config = ConfigDict(json_schema_extra={"example": FEEDBACK_EXAMPLE})

    feedback_token: Annotated[str, StringConstraints(min_length=1, max_length=2000)] = Field(
        description="The feedback_token of the /suggest answer the seller saw."
    )
    listing: Listing = Field(
        description="The title, description and price exactly as sent to /suggest: the feedback record "
        "keeps them, so it is a complete labelled example (the token's digest of them must match)."
    )
    chosen_category: Category = Field(
        description="The category the seller finally chose: one of the model's categories, as a full "
        "path or at the model's depth."
    )

    @classmethod
    def answering(cls, asked: Listing, feedback_token: str, chosen_category: str) -> FeedbackRequest:
        """The feedback for the answer to ``asked`` (a SuggestRequest will do: its listing is taken)."""
        listing = Listing.model_validate(asked.model_dump(include=set(Listing.model_fields)))
        return cls(feedback_token=feedback_token, chosen_category=chosen_category, listing=listing)


class FeedbackResponse(BaseModel):
    stored: bool
    accepted_top_suggestion: bool = Field(description="Whether the seller chose the top suggestion.")
