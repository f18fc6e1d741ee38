"""The clicks service's uvicorn set-up, shared by the service and its benchmark baseline."""

from __future__ import annotations

from typing import Any

from afflux.shared.io import serving
from afflux.shared.io.http_limits import HttpLimits


def serve(app: Any, host: str, port: int, limits: HttpLimits | None = None) -> bool:
    """Serve until SIGTERM/SIGINT; True when the server started (and then stopped cleanly).

    uvloop and httptools bounded by ``limits`` (afflux.shared.io.limited_http); proxy headers
    are *not* interpreted by uvicorn: the redirect trusts X-Forwarded-For/-Proto only
    from AFFLUX_CLICKS_TRUSTED_PROXIES.
    """
    return serving.serve(
        app,
        host,
        port,
        limits,
        loop="uvloop",
        proxy_headers=False,
        server_header=False,
        date_header=False,
    )
