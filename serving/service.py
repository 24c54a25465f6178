"""The BentoML service: ``bentoml serve pigeonhole.serving.service:CategoryService`` (``pigeonhole serve``).

Endpoints: ``POST /suggest``, ``POST /suggest_batch``, ``POST /feedback``, ``POST /reload``, plus
BentoML's ``/livez``, ``/readyz`` (ready only once a champion is loaded), ``/metrics`` and the OpenAPI
document at ``/docs.json``. Settings come from ``PIGEONHOLE_*`` variables (core/settings.py);
this module reads them when BentoML imports it, because the service's worker count is fixed then.

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
from pydantic import Field
from starlette.responses import JSONResponse

from pigeonhole.core.settings import get_settings
from pigeonhole.model.registry import CHAMPION
from pigeonhole.prediction_log.recorder import PredictionRecorder
from pigeonhole.prediction_log.sinks import SinkUnavailable, open_sink
from pigeonhole.serving import metrics
from pigeonhole.serving.engine import ModelHolder, SuggestionEngine
from pigeonhole.serving.guard import JsonBodyGuard, keep_rejected_input_out_of_logs
from pigeonhole.serving.schemas import (
    FeedbackRequest,
    FeedbackResponse,
    SuggestRequest,
    SuggestResponse,
)

os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
log = logging.getLogger("pigeonhole.serving")
SETTINGS = get_settings()
JSON_ROUTES = ("/suggest", "/suggest_batch", "/feedback")
BatchItems = Annotated[
    list[SuggestRequest],
    Field(
        max_length=SETTINGS.max_batch_items, description="Listings to categorise; answers keep this order."
    ),
]


def _not_ready(reason: str | None) -> JSONResponse:
    return JSONResponse({"error": f"no model loaded yet: {reason or 'loading'}"}, status_code=503)


@bentoml.service(
    name="pigeonhole",
    workers=SETTINGS.workers,
    traffic={"timeout": 10},
    logging={"access": {"enabled": False}},
)
class CategoryService:
    def __init__(self) -> None:
        keep_rejected_input_out_of_logs()
        self.settings = SETTINGS
        self.sink = open_sink(self.settings)
        self.recorder = PredictionRecorder(
            self.sink, self.settings.log_buffer_max, self.settings.log_flush_seconds, metrics.count_dropped
        ).start()
        self.holder = ModelHolder(self.settings)
        self.holder.refresh()
        self.engine = SuggestionEngine(self.settings, self.holder, self.recorder, self.sink)
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
    async def suggest(self, **request: Any) -> SuggestResponse:
        """Top-k categories for one listing, with calibrated scores."""
        if not self.holder.ready:
            return _not_ready(self.holder.error)  # type: ignore[return-value]
        return self.engine.suggest([SuggestRequest.model_construct(**request)])[0]

    @bentoml.api(
        route="/suggest_batch", batchable=True, max_batch_size=SETTINGS.max_batch_items, max_latency_ms=1000
    )
    async def suggest_batch(self, items: BatchItems) -> list[SuggestResponse]:
        """Suggestions for many listings, one answer per listing in order.

        Adaptive batching: BentoML may merge concurrent requests into one prediction, which
        roughly doubles throughput for one-listing requests at 64 connections (README, "Serving").
        """
        if not self.holder.ready:
            raise ServiceUnavailable(f"no model loaded yet: {self.holder.error or 'loading'}")
        return self.engine.suggest(items) if items else []

    @bentoml.api(route="/feedback", input_spec=FeedbackRequest)
    async def feedback(self, **request: Any) -> FeedbackResponse:
        """Record the category the seller finally chose. 200 only once it is durably stored."""
        try:
            return await asyncio.to_thread(self.engine.feedback, FeedbackRequest.model_construct(**request))
        except SinkUnavailable as exc:
            log.error("feedback not stored: %s", exc)
            return JSONResponse(  # type: ignore[return-value]
                {"error": "feedback store unavailable, nothing was recorded; retry later"}, status_code=503
            )

    @bentoml.api(route="/reload")
    async def reload(self) -> dict[str, Any]:
        """Check the registry aliases now instead of waiting for the next poll."""
        changed = await asyncio.to_thread(self.holder.refresh)
        current = self.holder.models.get(CHAMPION)
        return {
            "changed": changed,
            "champion": current.version if current else None,
            "error": self.holder.error,
        }


CategoryService.add_asgi_middleware(  # type: ignore[attr-defined]  # added by @bentoml.service
    JsonBodyGuard, paths=JSON_ROUTES, max_body_bytes=SETTINGS.max_body_bytes
)
