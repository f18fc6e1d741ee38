"""Operators' paths (``/metrics``, ``/openapi.json``, ``/docs``) on a port of their own.

A service whose main port is public (the clicks redirect) may listen on a second,
internal port too: both serve the same app, but ``OperatorPort`` answers the operator
paths only on the internal one; on the public port they are the 404 of any unknown
path. docs/clicks.md ("Operator port") and docs/portal.md ("Access").
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from afflux.shared.io import serving
from afflux.shared.io.http.apidocs import DOCS_PATH, OPENAPI_PATH
from afflux.shared.io.http_limits import HttpLimits

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPERATOR_PATHS = ("/metrics", OPENAPI_PATH, DOCS_PATH)
_NOT_FOUND = json.dumps({"detail": [{"field": None, "reason": "Not Found"}]}).encode()


def is_operator_path(path: str, paths: tuple[str, ...] = OPERATOR_PATHS) -> bool:
    return any(path == p or path.startswith(p + "/") for p in paths)


class OperatorPort:
    """Serve ``app``; operator ``paths`` only on a connection to ``operator_port``."""

    def __init__(
        self, app: ASGIApp, operator_port: int, paths: tuple[str, ...] = OPERATOR_PATHS
    ) -> None:
        self.app = app
        self.operator_port = operator_port
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_operator_path(scope["path"], self.paths):
            server = scope.get("server") or (None, None)
            if server[1] != self.operator_port:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 404,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(_NOT_FOUND)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": _NOT_FOUND})
                return
        await self.app(scope, receive, send)


def serve_with_operator_port(
    app: Any,
    host: str,
    port: int,
    limits: HttpLimits | None,
    operator_port: int,
    paths: tuple[str, ...] = OPERATOR_PATHS,
    **options: Any,
) -> bool:
    """``serving.serve``, and with ``operator_port`` (not 0) the operator ``paths`` moved
    there."""
    if not operator_port:
        return serving.serve(app, host, port, limits, **options)
    wrapped = OperatorPort(app, operator_port, paths)
    return serving.serve(wrapped, host, port, limits, also_port=operator_port, **options)
