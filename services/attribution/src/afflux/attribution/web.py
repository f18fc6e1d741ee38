"""The worker's HTTP port: /healthz and /metrics as a bare ASGI app, with its API
reference (``/openapi.json``, ``/docs`` from the package's Swagger UI files).

It is served by uvicorn on the worker's own loop (``faust.contrib.asgi``) with
the same bounded protocol as the other services (afflux.shared.io.limited_http),
instead of Faust's aiohttp server, so every afflux port has the same limits.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from afflux.shared.io.http.apidocs_pages import (
    ASSETS_PATH,
    DOCS_PATH,
    OPENAPI_PATH,
    PROBLEM_SCHEMA,
    assets_dir,
    swagger_page,
)

# Prometheus reads text format 0.0.4 as UTF-8.
METRICS_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
JSON_TYPE = b"application/json"
# The problem shape of every afflux API (afflux.shared.io.http.problems).
_NOT_FOUND = b'{"detail": [{"field": null, "reason": "not found"}]}'
_NOT_ALLOWED = b'{"detail": [{"field": null, "reason": "method not allowed"}]}'
HTML_TYPE = b"text/html; charset=utf-8"
_ASSET_TYPES = {
    "swagger-ui-bundle.js": b"text/javascript; charset=utf-8",
    "swagger-ui.css": b"text/css; charset=utf-8",
    "favicon-32x32.png": b"image/png",
}
_HEALTH_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["status"],
    "properties": {
        "status": {"type": "string"},
        # Why a stage stopped turning (an agent died, a batch failed, a stall): runtime.py.
        "problems": {"type": "array", "items": {"type": "string"}},
    },
}
OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "afflux attribution", "version": "0.1.0"},
    "paths": {
        "/healthz": {
            "get": {
                "summary": "Ready when the worker has its partitions and campaign terms,"
                " and its stages turn",
                "responses": {
                    "200": {
                        "description": "ready",
                        "content": {"application/json": {"schema": _HEALTH_BODY}},
                    },
                    "503": {
                        "description": "not ready yet, failed or stalled, and why",
                        "content": {"application/json": {"schema": _HEALTH_BODY}},
                    },
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {
                        "description": "Prometheus text format 0.0.4",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
    },
    "components": {"schemas": {"ProblemBody": PROBLEM_SCHEMA}},
}

Send = Callable[[dict[str, Any]], Awaitable[None]]


class WorkerWeb:
    """An ASGI app: ``GET /healthz`` (200 when ready, else 503) and ``GET /metrics``.

    A callable object rather than a function: ``serve_asgi`` keeps the app as a
    class attribute, where a plain function would become a bound method.
    """

    def __init__(
        self, health: Callable[[], tuple[bool, dict[str, Any]]], metrics: Callable[[], bytes]
    ) -> None:
        self.health = health
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path in (OPENAPI_PATH, DOCS_PATH) or path.startswith(ASSETS_PATH + "/"):
            await _reference(send, path)
        elif path not in ("/healthz", "/metrics"):
            await _answer(send, 404, JSON_TYPE, _NOT_FOUND)
        elif method not in ("GET", "HEAD"):
            await _answer(send, 405, JSON_TYPE, _NOT_ALLOWED)
        elif path == "/healthz":
            ok, body = self.health()
            await _answer(send, 200 if ok else 503, JSON_TYPE, json.dumps(body).encode())
        else:
            await _answer(send, 200, METRICS_TYPE, self.metrics())


async def _reference(send: Send, path: str) -> None:
    if path == OPENAPI_PATH:
        await _answer(send, 200, JSON_TYPE, json.dumps(OPENAPI).encode())
    elif path == DOCS_PATH:
        await _answer(send, 200, HTML_TYPE, swagger_page("afflux attribution API").encode())
    else:
        name = path.removeprefix(ASSETS_PATH + "/")
        if name in _ASSET_TYPES:
            await _answer(send, 200, _ASSET_TYPES[name], (assets_dir() / name).read_bytes())
        else:
            await _answer(send, 404, JSON_TYPE, _NOT_FOUND)


async def _answer(send: Send, status: int, content_type: bytes, body: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
