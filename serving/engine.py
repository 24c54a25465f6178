"""What the service does, free of HTTP: hold the models, answer suggestions, record feedback.

The BentoML service (serving/service.py) is a thin layer over :class:`SuggestionEngine`, so the
logic is tested directly and the HTTP tests only need to cover HTTP.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pandas as pd

from pigeonhole.core.pii import mask
from pigeonhole.core.settings import Settings
from pigeonhole.model.data import label_of
from pigeonhole.model.predict import Predictor
from pigeonhole.model.registry import CHALLENGER, CHAMPION
from pigeonhole.prediction_log.recorder import PredictionRecorder
from pigeonhole.prediction_log.records import FeedbackRecord, PredictionRecord, Variant
from pigeonhole.prediction_log.sinks import LogSink
from pigeonhole.serving import metrics
from pigeonhole.serving.schemas import (
    FeedbackRequest,
    FeedbackResponse,
    Suggestion,
    SuggestRequest,
    SuggestResponse,
)
from pigeonhole.serving.tokens import FeedbackRefused, FeedbackTokens, SuggestionClaim, listing_digest

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)

# the registry alias each arm serves
ARMS = {Variant.control: CHAMPION, Variant.candidate: CHALLENGER}


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: str
    predictor: Predictor
    categories: frozenset[str]  # what feedback may choose: the classes it can suggest
    source: str  # where the registry keeps it (the version's artifact location)

    @classmethod
    def of(cls, name: str, version: str, predictor: Predictor, source: str) -> LoadedModel:
        return cls(name, version, predictor, frozenset(str(c) for c in predictor.classes), source)


class ModelHolder:
    """The champion (and, for A/B or shadow, the challenger), swapped atomically on reload.

    A request takes a reference to the current :class:`LoadedModel` once and uses it to the end, so
    a reload never changes a model under a request in flight.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.models: dict[str, LoadedModel] = {}
        self.error: str | None = None
        self._lock = threading.Lock()
        self._client: MlflowClient | None = None  # made on first use: polls reuse it

    @property
    def ready(self) -> bool:
        return CHAMPION in self.models

    def refresh(self) -> bool:
        """Load whatever the aliases point at now; True when something changed. Never raises."""
        try:
            wanted = [CHAMPION] + ([CHALLENGER] if self._needs_challenger() else [])
            changed = False
            for alias in wanted:
                changed |= self._load(alias)
            self.error = None
            return changed
        except Exception as exc:  # any failure means "not ready", with the reason kept for /readyz
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("could not load model: %s", self.error)
            return False

    def categories(self, version: str) -> frozenset[str]:
        """The categories model ``version`` can suggest (the champion's when it is no longer loaded)."""
        models = self.models
        loaded = next((m for m in models.values() if m.version == version), models.get(CHAMPION))
        return frozenset() if loaded is None else loaded.categories

    def _needs_challenger(self) -> bool:
        return self.settings.challenger_share > 0 or self.settings.shadow

    def _load(self, alias: str) -> bool:
        loaded = self._load_from_registry(alias)
        if loaded is None:
            return False
        with self._lock:
            if alias in self.models and self.models[alias].version == loaded.version:
                return False
            self.models = {**self.models, alias: loaded}
        metrics.set_model_info(loaded.name, loaded.version, alias)
        log.info("serving %s v%s as %s, from %s", loaded.name, loaded.version, alias, loaded.source)
        return True

    def _registry(self) -> MlflowClient:
        """One client for the process: connecting looks the experiment up, which polls need not repeat."""
        if self._client is None:
            from pigeonhole.model.registry import connect

            self._client = connect(self.settings)
        return self._client

    def _load_from_registry(self, alias: str) -> LoadedModel | None:
        from pigeonhole.model.registry import (
            load_predictor,
            registry_location,
            require_alias,
            version_by_alias,
        )

        client = self._registry()
        version = (require_alias if alias == CHAMPION else version_by_alias)(client, self.settings, alias)
        if version is None:
            return None
        current = self.models.get(alias)
        if current is not None and current.version == str(version.version):
            return current
        predictor = load_predictor(version)
        return LoadedModel.of(
            self.settings.model_name,
            str(version.version),
            predictor,
            f"{registry_location(self.settings)} ({version.source})",
        )


def _record(item: SuggestRequest, answer: SuggestResponse, latency_ms: float) -> PredictionRecord:
    top = answer.suggestions[0]
    return PredictionRecord(
        request_id=answer.request_id,
        ts=datetime.now(UTC),
        listing_id=item.listing_id,
        title=mask(item.title) or "",
        description=mask(item.description),
        price=item.price,
        top_category=top.category,
        top_score=top.score,
        categories=[s.category for s in answer.suggestions],
        scores=[s.score for s in answer.suggestions],
        abstained=answer.abstained,
        model_version=answer.model_version,
        variant=answer.variant,
        latency_ms=round(latency_ms, 3),
    )


def share_of(listing_id: str) -> float:
    """A stable position in [0, 1) for a listing: the same listing always lands in the same arm."""
    return int(hashlib.sha256(listing_id.encode()).hexdigest()[:8], 16) / 0x1_0000_0000


class SuggestionEngine:
    def __init__(
        self,
        settings: Settings,
        holder: ModelHolder,
        recorder: PredictionRecorder,
        sink: LogSink,
        tokens: FeedbackTokens,
    ) -> None:
        self.settings = settings
        self.holder = holder
        self.recorder = recorder
        self.sink = sink
        self.tokens = tokens

    def _variant(self, item: SuggestRequest) -> Variant:
        share = self.settings.challenger_share
        if (
            share > 0
            and item.listing_id
            and CHALLENGER in self.holder.models
            and share_of(item.listing_id) < share
        ):
            return Variant.candidate
        return Variant.control

    def suggest(self, items: list[SuggestRequest]) -> list[SuggestResponse]:
        """Answer every item, in order; one vectorised prediction per model used."""
        started = time.perf_counter()
        models = self.holder.models  # one consistent snapshot for the whole batch
        variants = [self._variant(item) for item in items]
        answers: list[SuggestResponse | None] = [None] * len(items)
        for variant in set(variants):
            positions = [i for i, v in enumerate(variants) if v == variant]
            for i, answer in zip(
                positions,
                self._predict(models[ARMS[variant]], variant, [items[i] for i in positions]),
                strict=True,
            ):
                answers[i] = answer
        if self.settings.shadow and CHALLENGER in models:
            self._predict(models[CHALLENGER], Variant.shadow, items)
        latency_ms = (time.perf_counter() - started) * 1000 / max(len(items), 1)
        done = [a for a in answers if a is not None]
        self.recorder.record(
            *(_record(item, answer, latency_ms) for item, answer in zip(items, done, strict=True))
        )
        return done

    def _predict(
        self, model: LoadedModel, variant: Variant, items: list[SuggestRequest]
    ) -> list[SuggestResponse]:
        """Score ``items``; shadow scores are logged here and answer nobody (so carry no token)."""
        frame = pd.DataFrame(
            {
                "title": [item.title for item in items],
                "description": [item.description or "" for item in items],
                "price": [item.price for item in items],
            }
        )
        wanted = [item.k or self.settings.top_k for item in items]
        categories, scores = model.predictor.top_k(frame, max(wanted))
        responses = []
        request_ids = os.urandom(16 * len(items)).hex()  # one system call for the lot, not one per answer
        # Python lists once for the lot: a numpy scalar per suggestion cost more than the token
        for row, (item, k, names, values) in enumerate(
            zip(items, wanted, categories.tolist(), scores.tolist(), strict=True)
        ):
            # built unvalidated: every value comes from the model or this service, not from a caller
            suggestions = [
                Suggestion.model_construct(category=str(c), score=round(s, 6))
                for c, s in zip(names[:k], values[:k], strict=True)
            ]
            request_id = request_ids[32 * row : 32 * (row + 1)]
            claim = SuggestionClaim(
                request_id,
                item.listing_id,
                model.version,
                variant,
                suggestions[0].category,
                suggestions[0].score,
                listing_digest(item),
            )
            response = SuggestResponse.model_construct(
                suggestions=suggestions,
                abstained=suggestions[0].score < self.settings.abstain_below,
                model_name=model.name,
                model_version=model.version,
                variant=variant,
                request_id=request_id,
                feedback_token="" if variant is Variant.shadow else self.tokens.issue(claim),
            )
            responses.append(response)
        if variant is Variant.shadow:
            self.recorder.record(
                *(_record(item, answer, 0.0) for item, answer in zip(items, responses, strict=True))
            )
        else:
            metrics.observe_predictions(responses, variant)
        return responses

    def feedback(self, request: FeedbackRequest, caller: str) -> FeedbackResponse:
        """Store the seller's final choice durably.

        Raises FeedbackRefused for a token this service did not issue or a category the model does
        not know (never trained on), and SinkUnavailable when it cannot be stored. ``caller`` is the
        authenticated caller sending it, which retraining's caps count.
        """
        listing = request.listing
        claim = self.tokens.verify(request.feedback_token, listing)
        chosen = self._known_category(request.chosen_category, claim.model_version)
        accepted = chosen == claim.top_category
        record = FeedbackRecord(
            request_id=claim.request_id,
            listing_id=claim.listing_id,
            title=mask(listing.title) or "",
            description=mask(listing.description),
            price=listing.price,
            top_category=claim.top_category,
            top_score=claim.top_score,
            chosen_category=chosen,
            accepted=accepted,
            variant=Variant(claim.variant),
            model_version=claim.model_version,
            caller=caller,
            ts=datetime.now(UTC),
        )
        self.sink.write_feedback(record)
        metrics.observe_feedback(accepted, record.variant)
        return FeedbackResponse(stored=True, accepted_top_suggestion=accepted)

    def _known_category(self, chosen: str, version: str) -> str:
        """``chosen`` at the model's depth, if it is one of the model's real categories."""
        label = label_of(chosen, self.settings.depth)
        if label == self.settings.rare_bucket or label not in self.holder.categories(version):
            raise FeedbackRefused(
                422,
                f"chosen_category {chosen[:100]!r} is not a category of model v{version} at depth "
                f"{self.settings.depth}; send one of its categories, e.g. one of the suggestions",
            )
        return label
