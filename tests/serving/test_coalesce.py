"""Concurrent requests share one prediction, each gets its own answers, and a failure reaches only
the requests of the call that failed."""

from __future__ import annotations

import asyncio
import threading

import pytest

from pigeonhole.serving.coalesce import Coalescer


class Recording:
    """Answers each item with its square, remembering the calls; the first call waits until released,
    so that the test can line requests up behind it as a busy worker does."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.calls: list[list[int]] = []
        self.release = threading.Event()
        self.fail_on = fail_on

    def __call__(self, items: list[int]) -> list[int]:
        if not self.calls:
            self.release.wait(5)
        self.calls.append(items)
        if self.fail_on in items:
            raise ValueError(f"cannot answer {self.fail_on}")
        return [i * i for i in items]


async def _queue_behind_first(coalescer: Coalescer[int, int], model: Recording, later: list[list[int]]):
    """The first request busies the model; ``later`` arrive meanwhile; then the model is released."""
    first = asyncio.create_task(coalescer([1]))
    await asyncio.sleep(0.05)
    others = [asyncio.create_task(coalescer(items)) for items in later]
    await asyncio.sleep(0.05)
    model.release.set()
    return first, others


def test_a_quiet_request_is_answered_alone_and_at_once() -> None:
    async def scenario() -> list[int]:
        model = Recording()
        model.release.set()
        return await Coalescer(model, max_items=8)([3, 4])

    assert asyncio.run(scenario()) == [9, 16]


def test_requests_that_wait_together_share_one_call_and_keep_their_own_answers() -> None:
    async def scenario() -> tuple[Recording, list[list[int]]]:
        model = Recording()
        coalescer = Coalescer(model, max_items=8)
        first, others = await _queue_behind_first(coalescer, model, [[2, 3], [4], [5, 6]])
        return model, [await first, *[await o for o in others]]

    model, answers = asyncio.run(scenario())
    assert answers == [[1], [4, 9], [16], [25, 36]]
    assert model.calls == [[1], [2, 3, 4, 5, 6]]


def test_a_merged_call_stops_at_max_items_but_never_splits_a_request() -> None:
    async def scenario() -> tuple[Recording, list[list[int]]]:
        model = Recording()
        coalescer = Coalescer(model, max_items=3)
        first, others = await _queue_behind_first(coalescer, model, [[2, 3], [4, 5], [6, 7, 8, 9]])
        return model, [await first, *[await o for o in others]]

    model, answers = asyncio.run(scenario())
    assert answers == [[1], [4, 9], [16, 25], [36, 49, 64, 81]]
    assert model.calls == [[1], [2, 3], [4, 5], [6, 7, 8, 9]]


def test_a_failure_reaches_the_requests_of_its_call_and_the_next_call_still_runs() -> None:
    async def scenario() -> tuple[list[object], list[int]]:
        model = Recording(fail_on=3)
        coalescer = Coalescer(model, max_items=2)
        first, others = await _queue_behind_first(coalescer, model, [[2], [3], [4]])
        results = await asyncio.gather(*others, return_exceptions=True)
        return results, await first

    results, first = asyncio.run(scenario())
    assert first == [1]
    assert isinstance(results[0], ValueError) and isinstance(results[1], ValueError)
    assert results[2] == [16]


def test_a_request_whose_caller_left_is_not_predicted() -> None:
    async def scenario() -> tuple[Recording, list[int]]:
        model = Recording()
        coalescer = Coalescer(model, max_items=8)
        first = asyncio.create_task(coalescer([1]))
        await asyncio.sleep(0.05)
        gone = asyncio.create_task(coalescer([2]))
        stays = asyncio.create_task(coalescer([3]))
        await asyncio.sleep(0.01)
        gone.cancel()  # the client went away while the first call was running
        model.release.set()
        with pytest.raises(asyncio.CancelledError):
            await gone
        await first
        return model, await stays

    model, answer = asyncio.run(scenario())
    assert answer == [9]
    assert model.calls == [[1], [3]]
