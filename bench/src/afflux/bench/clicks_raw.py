"""The benchmark's raw baseline: a bare ASGI callable returning the same 302 (same headers),
under the same server set-up as the clicks service: what the server itself can answer.

python -m afflux.bench.clicks_raw PORT
"""

from __future__ import annotations

import secrets
import sys
from typing import Any

from afflux.bench.clicks_bare import DESTINATION
from afflux.clicks.server import serve

_NO_STORE = (b"cache-control", b"no-store")
_LENGTH_0 = (b"content-length", b"0")
_HEALTHY = [(b"content-type", b"application/json"), (b"content-length", b"15")]
_END = {"type": "http.response.body", "body": b""}


async def raw_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["path"] == "/healthz":
        await send({"type": "http.response.start", "status": 200, "headers": _HEALTHY})
        await send({"type": "http.response.body", "body": b'{"status":"ok"}'})
        return
    visitor = f"v_{secrets.token_hex(16)}"
    headers = [
        (b"location", f"{DESTINATION}&afx_click={visitor}.{secrets.token_hex(8)}".encode()),
        _NO_STORE,
        _LENGTH_0,
        (
            b"set-cookie",
            # the redirect's sealed cookie is as long: the id, "~", 32 hex digits
            f"afx_vid={visitor}~{secrets.token_hex(16)}; Max-Age=31536000; Path=/; HttpOnly;"
            " SameSite=Lax".encode(),
        ),
    ]
    await send({"type": "http.response.start", "status": 302, "headers": headers})
    await send(_END)


if __name__ == "__main__":
    sys.exit(0 if serve(raw_app, "127.0.0.1", int(sys.argv[1])) else 1)
