"""An ASGI middleware that turns unusable request bodies into 4xx answers that say what to fix.

BentoML validates well-formed JSON against the pydantic schemas (400 with the field errors), but a
body that is too large, empty, not UTF-8 or not JSON at all would otherwise surface as a 500. The
guard reads the body once (refusing it as soon as it passes the size limit), checks it, and hands
the same bytes on to BentoML.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re

from pydantic import ValidationError

from pigeonhole.serving.asgi import ASGIApp, Message, Receive, Scope, Send, send_error

EXAMPLE = '{"title": "iPhone 13 128GB, like new"}'
# the deepest body the API takes is {"items": [{...}]}; deeper nesting is refused before parsing, so a
# small body of 10,000 brackets costs a regular-expression scan, not a recursive parse
MAX_DEPTH = 8
JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
BRACKET = re.compile(r"[\[\]{}]")
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # where a JSON string can hold an unpaired surrogate


class BodyProblem(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def check_json_body(body: bytes, content_type: str) -> None:
    """Raise BodyProblem unless ``body`` is a JSON object in UTF-8."""
    if content_type and content_type.split(";")[0].strip().lower() != "application/json":
        raise BodyProblem(415, f"send Content-Type: application/json (got {content_type!r})")
    if not body.strip():
        raise BodyProblem(400, f"empty request body: send a JSON object such as {EXAMPLE}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyProblem(
            400, f"request body is not valid UTF-8 (bad byte at position {exc.start}); encode text as UTF-8"
        ) from None
    if _deeper_than(MAX_DEPTH, text):
        raise BodyProblem(
            400, f"JSON nested deeper than {MAX_DEPTH} levels: send a flat object such as {EXAMPLE}"
        )
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BodyProblem(400, f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    try:  # re-encoding costs a pass over the body: only when the text has a surrogate escape at all
        if SURROGATE_ESCAPE.search(text):
            json.dumps(parsed, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:  # "\ud800" is valid JSON but no text: no store can hold it
        raise BodyProblem(
            400,
            f"the JSON holds an unpaired surrogate U+{ord(exc.object[exc.start]):04X}: "
            "send the character itself or a complete surrogate pair",
        ) from None
    if not isinstance(parsed, dict):
        raise BodyProblem(
            400, f"the body must be a JSON object such as {EXAMPLE}, not {type(parsed).__name__}"
        )


def _deeper_than(limit: int, text: str) -> bool:
    """Whether arrays and objects nest more than ``limit`` deep (brackets inside strings do not count)."""
    depth = 0
    for bracket in BRACKET.finditer(JSON_STRING.sub("", text)):
        depth += 1 if bracket.group() in "[{" else -1
        if depth > limit:
            return True
    return False


class JsonBodyGuard:
    def __init__(
        self, app: ASGIApp, paths: tuple[str, ...], max_body_bytes: int, body_timeout_seconds: float
    ) -> None:
        self.app = app
        self.paths = paths
        self.max_body_bytes = max_body_bytes
        self.body_timeout_seconds = body_timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        try:
            body = await self._read(receive, headers)
            check_json_body(body, headers.get("content-type", ""))
        except BodyProblem as problem:
            await send_error(send, problem.status, str(problem))
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive, headers: dict[str, str]) -> bytes:
        too_large = BodyProblem(
            413,
            f"request body is larger than {self.max_body_bytes} bytes; "
            "send fewer items per batch or shorter descriptions",
        )
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            raise too_large
        chunks, size, more = [], 0, True
        deadline = asyncio.get_running_loop().time() + self.body_timeout_seconds
        while more:
            try:
                # a client trickling its body would otherwise hold a connection and a worker for ever
                message = await asyncio.wait_for(receive(), deadline - asyncio.get_running_loop().time())
            except TimeoutError:
                raise BodyProblem(
                    408,
                    f"the request body did not arrive within {self.body_timeout_seconds:g} s; send it whole",
                ) from None
            if message["type"] == "http.disconnect":
                raise BodyProblem(400, "client disconnected before sending the whole body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise too_large
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


# BentoML's module logger for request errors (its log_exception)
BENTOML_REQUEST_LOGGER = "bentoml._internal.server.http_app"


class RejectedInputLogFilter(logging.Filter):
    """BentoML logs every 400 with the traceback of pydantic's ValidationError, and that text quotes
    the rejected input: a seller's phone number in an over-long title would land in the server log,
    which the masked prediction log is careful never to hold. Keep the fact (path, fields, what was
    wrong), drop the input and the traceback, and log it as the client error it is."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, ValidationError):
            problems = "; ".join(
                f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}"
                for item in error.errors(include_input=False, include_context=False, include_url=False)
            )
            record.msg = "rejected input on %s [%s]: " + problems.replace("%", "%%")
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def keep_rejected_input_out_of_logs() -> None:
    request_logger = logging.getLogger(BENTOML_REQUEST_LOGGER)
    if not any(isinstance(f, RejectedInputLogFilter) for f in request_logger.filters):
        request_logger.addFilter(RejectedInputLogFilter())
