"""The service's own API documentation: Swagger UI at ``/`` and ``/docs``, the OpenAPI document at
``/docs.json``, both for admin keys (serving/auth.py).

BentoML's page loads Google Tag Manager and badge images from the internet and its document says
"BentoML Team", version "None"; here the page uses only the Swagger UI files BentoML serves locally
(no validator badge either) and the document is pigeonhole's: its title, package version and the
model version being served, contact and licence. Request examples come from serving/schemas.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pigeonhole import __licence__, __version__
from pigeonhole.serving.asgi import ASGIApp, Message, Receive, Scope, Send

PAGE_ROUTES = frozenset({"/", "/docs"})
SPEC_ROUTE = "/docs.json"
DESCRIPTION = (
    "Suggests the category of a marketplace listing from what the seller typed. Send a listing to "
    "`/suggest` (or many to `/suggest_batch`) with a client key as `Authorization: Bearer <key>`; "
    "when the seller has chosen, send the answer's `feedback_token` back to `/feedback`. "
    'Every error is a JSON `{"error": ...}` saying what to change. Operators: the README\'s "Serving" '
    'and "Security model" sections.'
)
PAGE = b"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>pigeonhole API</title>
  <link rel="stylesheet" href="/static_content/swagger-ui.css">
  <link rel="icon" type="image/png" href="/static_content/favicon-light-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/static_content/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "/docs.json", dom_id: "#swagger-ui", deepLinking: true, validatorUrl: null,
      presets: [SwaggerUIBundle.presets.apis], layout: "BaseLayout",
    });
  </script>
</body>
</html>
"""


def document(spec: dict[str, Any], served: str | None) -> dict[str, Any]:
    """BentoML's OpenAPI document with pigeonhole's info block."""
    model = f"model {served}" if served else "no model loaded yet"
    spec["info"] = {
        "title": "pigeonhole",
        "version": f"{__version__} ({model})",
        "description": DESCRIPTION,
        "contact": {"name": "the pigeonhole maintainers (issues on the project's repository)"},
        "license": {"name": __licence__, "url": f"https://spdx.org/licenses/{__licence__}.html"},
    }
    return spec


class ApiDocs:
    """Answers GET on the documentation routes itself; everything else passes through untouched."""

    def __init__(self, app: ASGIApp, served: Callable[[], str | None]) -> None:
        self.app = app
        self.served = served  # "listing-category v3": the champion this worker serves, if any

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
        elif scope["path"] in PAGE_ROUTES:
            await _answer(send, PAGE, b"text/html; charset=utf-8")
        elif scope["path"] == SPEC_ROUTE:
            await self._spec(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _spec(self, scope: Scope, receive: Receive, send: Send) -> None:
        """BentoML generates the document (it knows the routes and schemas); its info is replaced."""
        parts: list[bytes] = []

        async def keep(message: Message) -> None:
            if message["type"] == "http.response.body":
                parts.append(message.get("body", b""))

        await self.app(scope, receive, keep)
        spec = document(json.loads(b"".join(parts)), self.served())
        await _answer(send, json.dumps(spec).encode(), b"application/json")


async def _answer(send: Send, body: bytes, content_type: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
