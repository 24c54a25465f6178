"""The BentoML service: ``bentoml serve pigeonhole.serving.service:CategoryService`` (``pigeonhole serve``).

Endpoints: ``POST /suggest``, ``POST /suggest_batch``, ``POST /feedback`` for callers with an API
key; ``POST /reload``, ``/metrics``, the OpenAPI document ``/docs.json`` and Swagger UI for admin
keys (serving/auth.py); BentoML's ``/livez`` and ``/readyz`` (ready once a champion is loaded) open
to the kubelet. Settings come from ``PIGEONHOLE_*`` variables (core/settings.py); this module reads
them when BentoML imports it, because the service's worker count is fixed then.

Performance choices (measured, see README "Serving"): async APIs that predict inline, no access log,
a short traffic timeout, and ``gc.freeze()`` after the model is loaded so the collector stops
re-scanning the model's millions of long-lived objects on every full collection.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from typing import Annotated, Any

import bentoml
from bentoml.exceptions import ServiceUnavailable
from pydantic import Field, TypeAdapter
from starlette.responses import JSONResponse, Response

from pigeonhole.core.errors import ConfigurationError
from pigeonhole.core.settings import get_settings
from pigeonhole.model.registry import CHAMPION
from pigeonhole.prediction_log.journal import Journal
from pigeonhole.prediction_log.recorder import PredictionRecorder
from pigeonhole.prediction_log.sinks import RecordRejected, SinkUnavailable, open_sink
from pigeonhole.serving import metrics
from pigeonhole.serving.auth import CallerAuth, KeyRing
from pigeonhole.serving.coalesce import Coalescer
from pigeonhole.serving.docs import ApiDocs
from pigeonhole.serving.engine import ModelHolder, SuggestionEngine
from pigeonhole.serving.guard import JsonBodyGuard, keep_rejected_input_out_of_logs
from pigeonhole.serving.protocol import install as install_header_deadline
from pigeonhole.serving.schemas import (
    BATCH_EXAMPLE,
    FeedbackRequest,
    FeedbackResponse,
    SuggestRequest,
    SuggestResponse,
)
from pigeonhole.serving.tokens import FeedbackRefused, FeedbackTokens

os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
log = logging.getLogger("pigeonhole.serving")
# BentoML's server logging keeps the root logger at WARNING; the service's own INFO lines (which model
# is served, and from where) belong in its log
logging.getLogger("pigeonhole").setLevel(logging.INFO)
SETTINGS = get_settings()
install_header_deadline(SETTINGS.header_timeout_seconds)  # before BentoML's worker makes its server
KEYS = KeyRing(SETTINGS.keys_path)  # read when the first request comes (building a Bento needs none)
JSON_ROUTES = ("/suggest", "/suggest_batch", "/feedback")
BatchItems = Annotated[
    list[SuggestRequest],
    Field(
        max_length=SETTINGS.max_batch_items,
        description="Listings to categorise; answers keep this order.",
        json_schema_extra={"example": BATCH_EXAMPLE},
    ),
]


# what the API document shows; the answer itself is written by pydantic in one call (BentoML would
# convert every answer to Python objects and back through the json module: 2 % of a worker's time)
BatchAnswers = list[SuggestResponse]
BATCH_JSON = TypeAdapter(BatchAnswers)
# a merged prediction answers at most this many listings: per-listing cost still falls up to here
MERGED_ITEMS = 256

NOT_READY = "no model loaded yet; retry shortly (operators: see the service log)"


def _error(ctx: bentoml.Context, status: int, message: str) -> JSONResponse:
    """An error answer; BentoML gives an API with a context the context's status, so set both."""
    ctx.response.status_code = status
    return JSONResponse({"error": message}, status_code=status)


def _caller(ctx: bentoml.Context) -> str:
    """Set by CallerAuth for every request that reaches an API."""
    return str(ctx.request.state.caller)


@bentoml.service(
    name="pigeonhole",
    workers=SETTINGS.workers,
    traffic={"timeout": 10},
    logging={"access": {"enabled": False}},
)
class CategoryService:
    def __init__(self) -> None:
        if not KEYS.entries():  # secure by default: never an open service
            raise ConfigurationError(
                f"no API keys in {SETTINGS.keys_path}: nobody could call the service. "
                "Create one with `pigeonhole keys add NAME` (README, Security model)"
            )
        keep_rejected_input_out_of_logs()
        self.settings = SETTINGS
        self.sink = open_sink(self.settings)
        self.recorder = PredictionRecorder(
            self.sink,
            self.settings.log_buffer_max,
            self.settings.log_flush_seconds,
            metrics.count_dropped,
            Journal(self.settings.journal_dir),
        ).start()
        self.holder = ModelHolder(self.settings)
        self.holder.refresh()
        self.engine = SuggestionEngine(
            self.settings, self.holder, self.recorder, self.sink, FeedbackTokens(self.settings)
        )
        self.answer = Coalescer(self.engine.suggest, MERGED_ITEMS)
        self._watcher: asyncio.Task[None] | None = None
        gc.collect()
        gc.freeze()

    def __is_ready__(self) -> bool:
        return self.holder.ready

    @bentoml.on_startup
    async def _watch_champion(self) -> None:
        """Poll the aliases; a new champion is swapped in without a restart or a dropped request."""
        if self.settings.reload_seconds > 0:
            self._watcher = asyncio.create_task(self._poll())

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.settings.reload_seconds)
            if await asyncio.to_thread(self.holder.refresh):
                gc.collect()
                gc.freeze()

    @bentoml.on_shutdown
    def _flush_log(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
        self.recorder.close()
        self.sink.close()

    @bentoml.api(route="/suggest", input_spec=SuggestRequest)
    async def suggest(self, ctx: bentoml.Context, **request: Any) -> SuggestResponse:
        """Top-k categories for one listing, with calibrated scores and a token for its feedback."""
        if not self.holder.ready:
            return _error(ctx, 503, NOT_READY)  # type: ignore[return-value]
        return (await self.answer([SuggestRequest.model_construct(**request)]))[0]

    @bentoml.api(route="/suggest_batch")
    async def suggest_batch(self, items: BatchItems) -> BatchAnswers:
        """Suggestions for many listings, one answer per listing in order.

        Requests that arrive together share one prediction (serving/coalesce.py), so a merged call
        mixes callers: nothing in it depends on who asked.
        """
        if not self.holder.ready:
            raise ServiceUnavailable(NOT_READY)
        answers = await self.answer(items) if items else []
        return Response(BATCH_JSON.dump_json(answers), media_type="application/json")  # type: ignore[return-value]

    @bentoml.api(route="/feedback", input_spec=FeedbackRequest)
    async def feedback(self, ctx: bentoml.Context, **request: Any) -> FeedbackResponse:
        """Record the category the seller finally chose. 200 only once it is durably stored."""
        feedback = FeedbackRequest.model_construct(**request)
        try:
            return await asyncio.to_thread(self.engine.feedback, feedback, _caller(ctx))
        except FeedbackRefused as refused:
            return _error(ctx, refused.status, str(refused))  # type: ignore[return-value]
        except RecordRejected as exc:  # the edge's text rules let nothing a store refuses through
            log.error("feedback refused by the store: %s", exc)
            return _error(ctx, 422, "this feedback cannot be stored; nothing was recorded")  # type: ignore[return-value]
        except SinkUnavailable as exc:
            log.error("feedback not stored: %s", exc)
            message = "feedback store unavailable, nothing was recorded; retry later"
            return _error(ctx, 503, message)  # type: ignore[return-value]

    @bentoml.api(route="/reload")
    async def reload(self) -> dict[str, Any]:
        """Check the registry aliases now instead of waiting for the next poll."""
        changed = await asyncio.to_thread(self.holder.refresh)
        current = self.holder.models.get(CHAMPION)
        return {
            "changed": changed,
            "champion": current.version if current else None,
            "loaded": self.holder.error is None,  # why not: the service log (never echoed to callers)
        }


def _served() -> str | None:
    """The champion this worker serves, for the API document (None before the service starts)."""
    try:
        holder: ModelHolder = bentoml.get_current_service().holder
    except bentoml.exceptions.BentoMLException:
        return None
    champion = holder.models.get(CHAMPION)
    return f"{champion.name} v{champion.version}" if champion else None


# outermost first: a caller without a valid key is refused before its body is even read
CategoryService.add_asgi_middleware(  # type: ignore[attr-defined]  # added by @bentoml.service
    CallerAuth, keys=KEYS, per_minute=SETTINGS.rate_limit_per_minute
)
CategoryService.add_asgi_middleware(  # type: ignore[attr-defined]
    JsonBodyGuard,
    paths=JSON_ROUTES,
    max_body_bytes=SETTINGS.max_body_bytes,
    body_timeout_seconds=SETTINGS.body_timeout_seconds,
)
CategoryService.add_asgi_middleware(ApiDocs, served=_served)  # type: ignore[attr-defined]
