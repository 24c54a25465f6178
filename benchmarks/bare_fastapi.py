"""Peer (c) of the serving benchmark: a bare FastAPI endpoint calling the same model in-process.

No validation beyond the body model, no logging, no metrics: the ceiling for HTTP serving of this
model. Run by benchmarks/serving.py as ``uvicorn benchmarks.bare_fastapi:app --workers 2``.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pandas as pd
from fastapi import FastAPI
from pydantic import BaseModel

from pigeonhole.core.settings import Settings
from pigeonhole.model.predict import Predictor

predictor = Predictor.load(Path(os.environ["BENCH_PIPELINE"]))
TOP_K = Settings().top_k
gc.collect()
gc.freeze()
app = FastAPI()


class Item(BaseModel):
    title: str
    description: str | None = None
    price: float | None = None


class Batch(BaseModel):
    items: list[Item]


def _answer(items: list[Item]) -> list[dict[str, object]]:
    frame = pd.DataFrame(
        {
            "title": [i.title for i in items],
            "description": [i.description or "" for i in items],
            "price": [i.price for i in items],
        }
    )
    categories, scores = predictor.top_k(frame, TOP_K)
    return [
        {"suggestions": [{"category": c, "score": float(s)} for c, s in zip(cs, ss, strict=True)]}
        for cs, ss in zip(categories, scores, strict=True)
    ]


@app.post("/suggest")
async def suggest(item: Item) -> dict[str, object]:
    return _answer([item])[0]


@app.post("/suggest_batch")
async def suggest_batch(batch: Batch) -> dict[str, object]:
    return {"results": _answer(batch.items)}
