"""The request guard in process: every unusable body gets the 4xx that says what to fix, at the limits
(exactly the size limit passes, one byte more is 413; 8 levels of nesting pass, 9 do not), and a good
body reaches the service byte for byte. `make mutation` holds these to nine mutants killed in ten."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError, field_validator

from pigeonhole.serving.asgi import Message, Scope
from pigeonhole.serving.guard import (
    MAX_DEPTH,
    BodyProblem,
    JsonBodyGuard,
    RejectedInputLogFilter,
    check_json_body,
    keep_rejected_input_out_of_logs,
)

JSON = "application/json"


def _nested(levels: int) -> bytes:
    return ('{"a": ' * levels + "1" + "}" * levels).encode()


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        (b'{"title": "x"}', "text/plain", 415, "send Content-Type: application/json (got 'text/plain')"),
        (
            b"  \n",
            JSON,
            400,
            'empty request body: send a JSON object such as {"title": "iPhone 13 128GB, like new"}',
        ),
        (b'{"title": "\xff"}', JSON, 400, "request body is not valid UTF-8 (bad byte at position 11)"),
        (_nested(MAX_DEPTH + 1), JSON, 400, "JSON nested deeper than 8 levels"),
        (b'{"title": }', JSON, 400, "malformed JSON at line 1 column 11: Expecting value"),
        (b'{"title": "\\ud800"}', JSON, 400, "the JSON holds an unpaired surrogate U+D800"),
        (b'["title"]', JSON, 400, "the body must be a JSON object such as"),
        (b"3", JSON, 400, "not int"),
    ],
)
def test_each_unusable_body_says_what_to_fix(
    body: bytes, content_type: str, status: int, message: str
) -> None:
    with pytest.raises(BodyProblem) as problem:
        check_json_body(body, content_type)
    assert problem.value.status == status and message in str(problem.value)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (_nested(MAX_DEPTH), JSON),
        (b'{"title": "[[[[[[[[[[{{{{{{{{{{ brackets in text do not count"}', JSON),
        (b'{"title": "\\ud83d\\ude00 a whole pair"}', "Application/JSON; charset=utf-8"),
        (b'{"title": "no type given"}', ""),
    ],
)
def test_usable_bodies_pass(body: bytes, content_type: str) -> None:
    check_json_body(body, content_type)


def _through_guard(
    messages: list[Message],
    headers: list[tuple[bytes, bytes]] | None = None,
    method: str = "POST",
    **limits: Any,
) -> tuple[int, Any]:
    """Send ``messages`` (then the client hangs up) as the request to /suggest; (status, the body the
    service read, or the error answered)."""
    received: list[bytes] = []
    sent: list[Message] = []
    queue = [*messages, {"type": "http.disconnect"}]

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        assert scope["path"] == "/suggest"
        message = await receive()
        assert message["type"] == "http.request" and message.get("more_body", False) is False
        received.append(message.get("body", b""))
        assert (await receive())["type"] == "http.disconnect", "the body is handed on once"
        await send({"type": "http.response.start", "status": 200, "headers": []})

    async def receive() -> Message:
        if len(queue) == 1 and limits.get("hang"):
            await asyncio.sleep(10)
        return queue.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    guard = JsonBodyGuard(
        app, ("/suggest",), limits.get("max_body_bytes", 100), limits.get("body_timeout_seconds", 5.0)
    )
    scope: Scope = {"type": "http", "method": method, "path": "/suggest"}
    if headers is not None:
        scope["headers"] = headers
    asyncio.run(guard(scope, receive, send))
    status = sent[0]["status"]
    return status, (received[0] if received else json.loads(sent[1]["body"])["error"])


def test_a_good_body_reaches_the_service_whole_however_it_arrives() -> None:
    body = b'{"title": "' + b"x" * 87 + b'"}'  # exactly the 100-byte limit
    chunks = [
        {"type": "http.request", "body": body[:40], "more_body": True},
        {"type": "http.request", "more_body": True},  # a message may come without a body
        {"type": "http.request", "body": body[40:]},
    ]
    assert _through_guard(chunks) == (200, body)
    declared = [(b"content-length", b"100"), (b"Content-Type", JSON.encode())]
    assert _through_guard([{"type": "http.request", "body": body}], declared) == (200, body)


def test_too_large_slow_or_abandoned_bodies_are_refused() -> None:
    big = b'{"title": "' + b"x" * 88 + b'"}'  # one byte over
    too_large = "request body is larger than 100 bytes; send fewer items per batch or shorter descriptions"
    assert _through_guard([{"type": "http.request", "body": big}]) == (413, too_large)
    in_parts = [
        {"type": "http.request", "body": big[:60], "more_body": True},
        {"type": "http.request", "body": big[60:]},
    ]
    assert _through_guard(in_parts) == (413, too_large), "the parts add up"
    assert _through_guard([], [(b"content-length", b"101")]) == (413, too_large), "refused before reading"
    trickle = [{"type": "http.request", "body": b"{", "more_body": True}]
    status, error = _through_guard(trickle, body_timeout_seconds=0.2, hang=True)
    assert (status, error) == (408, "the request body did not arrive within 0.2 s; send it whole")
    assert _through_guard(trickle) == (400, "client disconnected before sending the whole body")
    wrong_type = [(b"content-type", b"text/plain")]
    assert _through_guard([{"type": "http.request", "body": b"{}"}], wrong_type)[0] == 415


def test_other_routes_and_methods_pass_untouched() -> None:
    assert _through_guard([{"type": "http.request", "body": b"not json"}], method="GET") == (200, b"not json")


def test_nesting_is_counted_after_closed_brackets_too() -> None:
    with pytest.raises(BodyProblem, match="nested deeper than 8"):
        check_json_body(b'{"a": [], "b": ' + _nested(MAX_DEPTH) + b"}", JSON)


def test_a_lone_surrogate_is_refused_with_what_to_send() -> None:
    with pytest.raises(BodyProblem) as problem:
        check_json_body(b'{"title": "\\ud800 \ud800"}', JSON)
    assert str(problem.value) == (
        "the JSON holds an unpaired surrogate U+D800: send the character itself or a complete surrogate pair"
    )


class _Item(BaseModel):
    title: str

    @field_validator("title")
    @classmethod
    def _short(cls, title: str) -> str:
        if len(title) > 5:
            raise ValueError("keep it under 5% of a page")
        return title


class _Body(BaseModel):
    title: str
    items: list[_Item] = []


def test_rejected_input_is_logged_without_the_input() -> None:
    try:
        _Body.model_validate(
            {"title": ["call me on +44 7700 900461"], "items": [{"title": "+44 7700 900461"}]}
        )
    except ValidationError as error:
        record = logging.LogRecord(
            "x",
            logging.ERROR,
            "",
            0,
            "Exception on %s [%s]",
            ("/suggest", "POST"),
            (ValidationError, error, None),
        )
    assert RejectedInputLogFilter().filter(record)
    assert record.getMessage() == (
        "rejected input on /suggest [POST]: title: Input should be a valid string; "
        "items.0.title: Value error, keep it under 5% of a page"
    )
    assert record.exc_info is None and record.levelname == "WARNING"
    other = logging.LogRecord("x", logging.ERROR, "", 0, "boom", (), None)
    assert RejectedInputLogFilter().filter(other) and other.levelname == "ERROR"
    keep_rejected_input_out_of_logs()
    keep_rejected_input_out_of_logs()
    filters = logging.getLogger("bentoml._internal.server.http_app").filters
    assert sum(isinstance(f, RejectedInputLogFilter) for f in filters) == 1, "installed once"
