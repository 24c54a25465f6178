"""The service's own Prometheus metrics, next to BentoML's request count and latency per endpoint.

They are created on first use, not at import: BentoML workers switch prometheus_client into
multiprocess mode after the service module is imported, and metrics created before that would
never reach ``/metrics``. The acceptance rate is a ratio of two counters, computed where it is read:
``rate(pigeonhole_feedback_accepted_total[1h]) / rate(pigeonhole_feedback_total[1h])`` (every
feedback carries a token naming the suggestion it answers, so every one counts).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge, Histogram

if TYPE_CHECKING:
    from pigeonhole.serving.schemas import SuggestResponse

CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)


@dataclass(frozen=True)
class Metrics:
    predictions: Counter
    confidence: Histogram
    abstained: Counter
    feedback: Counter
    feedback_accepted: Counter
    dropped_records: Counter
    model_info: Gauge


@cache
def registry() -> Metrics:
    return Metrics(
        predictions=Counter(
            "pigeonhole_predictions",
            "Suggestions answered, by top category and variant",
            ["category", "variant"],
        ),
        confidence=Histogram(
            "pigeonhole_prediction_confidence",
            "Top suggestion's calibrated score",
            ["variant"],
            buckets=CONFIDENCE_BUCKETS,
        ),
        abstained=Counter(
            "pigeonhole_abstained", "Answers whose best score was under the abstain threshold", ["variant"]
        ),
        feedback=Counter("pigeonhole_feedback", "Feedback records stored", ["variant"]),
        feedback_accepted=Counter(
            "pigeonhole_feedback_accepted", "Feedback where the seller chose the top suggestion", ["variant"]
        ),
        dropped_records=Counter(
            "pigeonhole_log_records_dropped",
            "Prediction log records dropped because the sink was down too long",
        ),
        model_info=Gauge(
            "pigeonhole_model_info",
            "1 for each loaded model version, by the registry alias it was loaded as",
            ["model_name", "version", "alias"],
            multiprocess_mode="max",
        ),
    )


_loaded: dict[str, tuple[str, str]] = {}


def set_model_info(model_name: str, version: str, alias: str) -> None:
    metrics = registry()
    if alias in _loaded:
        metrics.model_info.labels(*_loaded[alias], alias).set(0)
    metrics.model_info.labels(model_name, version, alias).set(1)
    _loaded[alias] = (model_name, version)


def observe_predictions(answers: list[SuggestResponse], variant: str) -> None:
    """One arm's answers of a merged call: each label set is looked up once, not once per answer."""
    metrics = registry()
    for category, count in collections.Counter(answer.suggestions[0].category for answer in answers).items():
        metrics.predictions.labels(category, variant).inc(count)
    confidence = metrics.confidence.labels(variant)
    for answer in answers:
        confidence.observe(answer.suggestions[0].score)
    abstained = sum(answer.abstained for answer in answers)
    if abstained:
        metrics.abstained.labels(variant).inc(abstained)


def observe_feedback(accepted: bool, variant: str) -> None:
    metrics = registry()
    metrics.feedback.labels(variant).inc()
    if accepted:
        metrics.feedback_accepted.labels(variant).inc()


def count_dropped(records: int) -> None:
    registry().dropped_records.inc(records)
