"""The benchmark's baseline: a bare FastAPI POST endpoint under the service's server set-up.

python -m afflux.bench.orders_bare PORT
"""

from __future__ import annotations

import sys

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from afflux.shared.io.serving import serve


def bare_app() -> FastAPI:
    app = FastAPI()

    @app.post("/v1/orders")
    async def accept(request: Request) -> JSONResponse:
        await request.body()
        return JSONResponse({"status": "accepted"}, status_code=202)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return app


if __name__ == "__main__":
    sys.exit(0 if serve(bare_app(), "127.0.0.1", int(sys.argv[1])) else 1)
