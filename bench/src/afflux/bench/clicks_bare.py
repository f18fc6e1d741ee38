"""The benchmark's baseline: a bare FastAPI endpoint returning the same 302, same server set-up.

python -m afflux.bench.clicks_bare PORT
"""

from __future__ import annotations

import secrets
import sys

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response

from afflux.clicks.server import serve

DESTINATION = "https://shop.example.com/landing?ref=bench"


def bare_app() -> FastAPI:
    app = FastAPI()

    @app.get("/c/{code}")
    async def redirect(code: str) -> Response:
        visitor = f"v_{secrets.token_hex(16)}"
        return Response(
            status_code=302,
            headers={
                "location": f"{DESTINATION}&afx_click={visitor}.{secrets.token_hex(8)}",
                "cache-control": "no-store",
                # the redirect's sealed cookie is as long: the id, "~", 32 hex digits
                "set-cookie": f"afx_vid={visitor}~{secrets.token_hex(16)}; Max-Age=31536000;"
                " Path=/; HttpOnly; SameSite=Lax",
            },
        )

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return app


if __name__ == "__main__":
    sys.exit(0 if serve(bare_app(), "127.0.0.1", int(sys.argv[1])) else 1)
