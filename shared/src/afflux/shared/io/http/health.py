"""``GET /healthz`` from a list of named checks, and ``GET /metrics`` for a registry.

A check is an async function of the request answering None when its dependency is
ready, else the reason it is not. /healthz runs every check (each bounded by a
timeout, an exception being its reason) and answers 200 ``{"status": "ok", "checks":
{name: true}}`` or 503 ``{"status": "starting", "checks": {name: bool}, "reasons":
{name: reason}}`` naming every failing check.

A check that passes may say how, with ``Passing("retrying")``: shown instead of
``true`` (ready, but working around something an operator wants to see). A 503 may
carry more than a check can say (how to recover, or a ``status`` other than
``starting``): the router's ``detail`` adds those fields.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

_HEALTH_BODY = {
    "type": "object",
    "required": ["status", "checks"],
    "properties": {
        "status": {"type": "string"},
        "checks": {"type": "object", "additionalProperties": {"type": ["boolean", "string"]}},
        "reasons": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
HEALTH_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "description": "every dependency is ready",
        "content": {"application/json": {"schema": _HEALTH_BODY}},
    },
    503: {
        "description": "not ready: every failing check and its reason",
        "content": {"application/json": {"schema": _HEALTH_BODY}},
    },
}
METRICS_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "description": "Prometheus text format 0.0.4",
        "content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}},
    }
}


@dataclass(frozen=True)
class Passing:
    """A check that passes, shown as ``shown`` instead of ``true``."""

    shown: str


HealthCheck = Callable[[Request], Awaitable[str | Passing | None]]
HealthDetail = Callable[[Request], Awaitable[Mapping[str, object]]]
CHECK_TIMEOUT_S = 1.0


async def _reason(check: HealthCheck, request: Request, timeout_s: float) -> str | Passing | None:
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
    detail: HealthDetail | None = None,
) -> APIRouter:
    """``GET /healthz`` answering from ``checks``, in their order; ``detail`` (run only
    when a check fails) adds its fields to the 503's body, its ``status`` replacing
    ``starting`` (before every check first passed) or ``unavailable`` (after: a long
    running service whose broker stalled read as restarting)."""
    router = APIRouter()
    was_ok = False

    @router.get("/healthz", include_in_schema=include_in_schema, responses=HEALTH_RESPONSES)
    async def healthz(request: Request) -> JSONResponse:
        nonlocal was_ok
        answers = await asyncio.gather(*(_reason(c, request, timeout_s) for _, c in checks))
        named = list(zip((name for name, _ in checks), answers, strict=True))
        failing = {name: why for name, why in named if isinstance(why, str) and why}
        was_ok = was_ok or not failing
        body: dict[str, object] = {
            "status": ("unavailable" if was_ok else "starting") if failing else "ok",
            "checks": {
                name: why.shown if isinstance(why, Passing) else name not in failing
                for name, why in named
            },
        }
        if failing:
            body["reasons"] = failing
            if detail is not None:
                body.update(await detail(request))
        return JSONResponse(body, status_code=503 if failing else 200)

    return router


def metrics_router(registry: CollectorRegistry, *, include_in_schema: bool = True) -> APIRouter:
    """``GET /metrics``: ``registry`` in the Prometheus text format."""
    router = APIRouter()

    @router.get("/metrics", include_in_schema=include_in_schema, responses=METRICS_RESPONSES)
    async def prometheus() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
