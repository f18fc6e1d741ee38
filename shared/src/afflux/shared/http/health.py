"""``GET /healthz`` from a list of named checks, and ``GET /metrics`` for a registry.

A check is an async function of the request answering None when its dependency is
ready, else the reason it is not. /healthz runs every check (each bounded by a
timeout, an exception being its reason) and answers 200 ``{"status": "ok", "checks":
{name: true}}`` or 503 ``{"status": "starting", "checks": {name: bool}, "reasons":
{name: reason}}`` naming every failing check.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

HealthCheck = Callable[[Request], Awaitable[str | None]]
CHECK_TIMEOUT_S = 1.0


async def _reason(check: HealthCheck, request: Request, timeout_s: float) -> str | None:
    try:
        return await asyncio.wait_for(check(request), timeout_s)
    except TimeoutError:
        return f"no answer within {timeout_s:g} s"
    except Exception as exc:
        return f"failed: {type(exc).__name__}"


def health_router(
    checks: Sequence[tuple[str, HealthCheck]],
    *,
    timeout_s: float = CHECK_TIMEOUT_S,
    include_in_schema: bool = True,
) -> APIRouter:
    """``GET /healthz`` answering from ``checks``, in their order."""
    router = APIRouter()

    @router.get("/healthz", include_in_schema=include_in_schema)
    async def healthz(request: Request) -> JSONResponse:
        reasons = await asyncio.gather(*(_reason(c, request, timeout_s) for _, c in checks))
        failing = {name: why for (name, _), why in zip(checks, reasons, strict=True) if why}
        body: dict[str, object] = {
            "status": "starting" if failing else "ok",
            "checks": {name: name not in failing for name, _ in checks},
        }
        if failing:
            body["reasons"] = failing
        return JSONResponse(body, status_code=503 if failing else 200)

    return router


def metrics_router(registry: CollectorRegistry, *, include_in_schema: bool = True) -> APIRouter:
    """``GET /metrics``: ``registry`` in the Prometheus text format."""
    router = APIRouter()

    @router.get("/metrics", include_in_schema=include_in_schema)
    async def prometheus() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
