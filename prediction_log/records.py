"""What the prediction log holds: one typed record per answered listing and per seller's feedback.

These dataclasses are the log's schema, dead letters included. The Parquet and JSON-lines columns,
the PostgreSQL tables and the columns readers select are all derived from them, so adding a field is
one edit.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import pyarrow as pa


class Variant(StrEnum):
    """Which arm of the service answered: the champion's, the challenger's (A/B), or a shadow score."""

    control = "control"  # the champion alias
    candidate = "candidate"  # the challenger alias, for the A/B share of listings
    shadow = "shadow"  # the challenger scored on every request, logged only, never answered


@dataclass(frozen=True, slots=True)
class PredictionRecord:
    request_id: str
    ts: datetime
    listing_id: str | None
    title: str  # masked: the log keeps no personal data
    description: str | None  # masked
    price: float | None
    top_category: str
    top_score: float
    categories: list[str]  # the top-k answer, best first
    scores: list[float]
    abstained: bool
    model_version: str
    variant: Variant
    latency_ms: float


@dataclass(frozen=True, slots=True)
class FeedbackRecord:
    """A seller's final choice for one answered suggestion (vouched for by its feedback token).

    Self-contained: it carries the listing's text and the answer it labels, so drift and retraining
    can use it even when the prediction record it answers was lost (a crash's window) or expired.
    """

    request_id: str
    listing_id: str | None
    title: str  # masked, as in the prediction log
    description: str | None  # masked
    price: float | None
    top_category: str  # the answer's top suggestion
    top_score: float
    chosen_category: str
    accepted: bool  # the seller chose the top suggestion
    variant: Variant
    model_version: str
    caller: str  # the API key's caller: retraining caps what one caller contributes
    ts: datetime


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    """A record a sink refused for its content, kept with the reason instead of stalling the rest."""

    kind: str  # "prediction" or "feedback"
    reason: str
    record: str  # the refused record as ASCII JSON: every character escaped, so any store can hold it
    ts: datetime

    @classmethod
    def of(cls, record: PredictionRecord | FeedbackRecord, reason: str) -> DeadLetterRecord:
        kind = "prediction" if isinstance(record, PredictionRecord) else "feedback"
        text = json.dumps(as_row(record), default=str, ensure_ascii=True)
        return cls(kind, reason, text, datetime.now(UTC))


Record = PredictionRecord | FeedbackRecord | DeadLetterRecord


def as_row(record: Record) -> dict[str, Any]:
    """The record as plain values (enums as their text), for Parquet, JSON and SQL alike."""
    # a shallow read of the fields: asdict() deep-copies the top-k lists, and every answer pays for it
    return {
        f.name: value.value if isinstance(value := getattr(record, f.name), StrEnum) else value
        for f in fields(record)
    }


def as_json(record: Record) -> str:
    """The record as one ASCII JSON line's text: what the JSON-lines files and the journal hold."""
    return json.dumps(as_row(record), default=datetime.isoformat)


SQL_TYPES: dict[object, str] = {
    str: "text",
    float: "double precision",
    bool: "boolean",
    datetime: "timestamptz",
    Variant: "text",
    list: "jsonb",
}
# the types pandas gave these columns when it wrote the Parquet files, so old and new files read alike
ARROW_TYPES: dict[object, pa.DataType] = {
    str: pa.string(),
    float: pa.float64(),
    bool: pa.bool_(),
    datetime: pa.timestamp("ns", tz="UTC"),
    Variant: pa.string(),
    list[str]: pa.list_(pa.field("element", pa.string())),
    list[float]: pa.list_(pa.field("element", pa.float64())),
}


def _field_types(record_type: type[Record]) -> list[tuple[str, Any, bool]]:
    """(name, type without its None, nullable) for each field of ``record_type``, in order."""
    hints = typing.get_type_hints(record_type)
    columns = []
    for f in fields(record_type):
        hint = hints[f.name]
        args = typing.get_args(hint) if isinstance(hint, types.UnionType) else ()
        columns.append((f.name, next((a for a in args if a is not type(None)), hint), type(None) in args))
    return columns


def sql_columns(record_type: type[Record]) -> list[tuple[str, str, bool]]:
    """(name, SQL type, nullable) for each field of ``record_type``, in order."""
    return [
        (name, SQL_TYPES[typing.get_origin(base) or base], nullable)
        for name, base, nullable in _field_types(record_type)
    ]


def arrow_schema(record_type: type[Record]) -> pa.Schema:
    """The Parquet schema of ``record_type``'s files."""
    return pa.schema(
        [pa.field(name, ARROW_TYPES[base], nullable) for name, base, nullable in _field_types(record_type)]
    )


PREDICTION_COLUMNS = [f.name for f in fields(PredictionRecord)]
FEEDBACK_COLUMNS = [f.name for f in fields(FeedbackRecord)]
DEAD_LETTER_COLUMNS = [f.name for f in fields(DeadLetterRecord)]
LIST_COLUMNS = {name for name, sql, _ in sql_columns(PredictionRecord) if sql == "jsonb"}
PREDICTION_SCHEMA = arrow_schema(PredictionRecord)
# what drift and retraining read of a prediction: the top-k lists are a third of a window's memory
WINDOW_COLUMNS = [c for c in PREDICTION_COLUMNS if c not in LIST_COLUMNS]
