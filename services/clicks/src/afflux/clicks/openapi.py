"""The OpenAPI path item of the click redirect, ``GET /c/{code}``.

The redirect is an ASGI layer in front of the app (afflux.clicks.redirect), outside
FastAPI's schema, so its reference is written here and merged into ``/openapi.json``
(afflux.shared.io.http.apidocs).
"""

from __future__ import annotations

from typing import Any

from afflux.clicks.links import MAX_CODE_LENGTH
from afflux.clicks.redirect import PREFIX
from afflux.shared.io.http.apidocs import PROBLEM_REF, RETRY_AFTER_HEADER

_HTML = {"text/html": {"schema": {"type": "string"}}}

_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "code",
        "in": "path",
        "required": True,
        "description": "the tracking link's code",
        "schema": {"type": "string", "pattern": f"^[A-Za-z0-9_-]{{1,{MAX_CODE_LENGTH}}}$"},
    },
    {
        "name": "Sec-Purpose",
        "in": "header",
        "required": False,
        "description": "prefetch (or prefetch;prerender): the browser fetching ahead of a "
        "visit; answered 503, no click (docs/clicks.md)",
        "schema": {"type": "string"},
    },
    {
        "name": "User-Agent",
        "in": "header",
        "required": False,
        "description": "a bot's or a command-line client's user agent is recorded flagged "
        "as a bot and never counts (docs/clicks.md)",
        "schema": {"type": "string"},
    },
]

_RESPONSES: dict[str, Any] = {
    "302": {
        "description": "to the destination, with the click id appended (or without one "
        "when the click log is full); a new visitor gets the visitor cookie",
        "headers": {
            "Location": {"schema": {"type": "string"}, "description": "the destination"},
            "Set-Cookie": {
                "schema": {"type": "string"},
                "description": "the visitor id, on a top-level navigation of a new visitor",
            },
        },
    },
    "404": {
        "description": "no such link, or inactive (HTML); JSON while the service starts",
        "content": {**_HTML, "application/json": {"schema": PROBLEM_REF}},
    },
    "503": {
        "description": "the link store is unreachable: try again (with Retry-After); or "
        "a prefetch (Sec-Purpose, Purpose, X-Purpose or X-Moz naming prefetch, prerender "
        "or preview), declined without Retry-After: no click is recorded and no cookie "
        "set, and the browser fetches the link again when the person follows it",
        "headers": RETRY_AFTER_HEADER,
        "content": _HTML,
    },
}


def _operation(summary: str) -> dict[str, Any]:
    return {
        "tags": ["redirect"],
        "summary": summary,
        "parameters": _PARAMETERS,
        "responses": _RESPONSES,
    }


def redirect_paths() -> dict[str, Any]:
    """``/c/{code}``: GET records a click and redirects; HEAD redirects as a bot (no click)."""
    return {
        PREFIX + "{code}": {
            "get": _operation("Follow a tracking link: record the click, redirect"),
            "head": _operation("Check a tracking link (recorded as a bot; never counts)"),
        }
    }
