"""The worker's HTTP port: /healthz and /metrics as a bare ASGI app.

It is served by uvicorn on the worker's own loop (``faust.contrib.asgi``) with
the same bounded protocol as the other services (afflux.shared.io.limited_http),
instead of Faust's aiohttp server, so every afflux port has the same limits.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

# Prometheus reads text format 0.0.4 as UTF-8.
METRICS_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
JSON_TYPE = b"application/json"

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
        if path not in ("/healthz", "/metrics"):
            await _answer(send, 404, JSON_TYPE, b'{"detail": "not found"}')
        elif method not in ("GET", "HEAD"):
            await _answer(send, 405, JSON_TYPE, b'{"detail": "method not allowed"}')
        elif path == "/healthz":
            ok, body = self.health()
            await _answer(send, 200 if ok else 503, JSON_TYPE, json.dumps(body).encode())
        else:
            await _answer(send, 200, METRICS_TYPE, self.metrics())


async def _answer(send: Send, status: int, content_type: bytes, body: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
