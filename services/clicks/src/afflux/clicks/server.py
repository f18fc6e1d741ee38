"""The clicks service's uvicorn set-up, shared by the service and its benchmark baseline."""

from __future__ import annotations

from typing import Any

from afflux.shared.io import serving
from afflux.shared.io.http.operator_port import OperatorPort
from afflux.shared.io.http_limits import HttpLimits


def serve(app: Any, host: str, port: int, limits: HttpLimits | None = None) -> bool:
    """Serve until SIGTERM/SIGINT; True when the server started (and then stopped cleanly).

    uvloop and httptools bounded by ``limits`` (afflux.shared.io.limited_http); proxy headers
    are *not* interpreted by uvicorn: the redirect trusts X-Forwarded-For/-Proto only
    from AFFLUX_CLICKS_TRUSTED_PROXIES. With AFFLUX_CLICKS_OPERATOR_PORT set, the same
    server listens there too and ``/metrics``, ``/openapi.json`` and ``/docs`` answer
    only there (afflux.shared.io.http.operator_port).
    """
    settings = getattr(getattr(app, "state", None), "settings", None)
    operator_port: int | None = getattr(settings, "clicks_operator_port", None) or None
    return serving.serve(
        OperatorPort(app, operator_port) if operator_port else app,
        host,
        port,
        limits,
        also_port=operator_port,
        loop="uvloop",
        proxy_headers=False,
        server_header=False,
        date_header=False,
    )
