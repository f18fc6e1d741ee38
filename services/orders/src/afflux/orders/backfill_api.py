"""Admin routes for backfills: orders and refunds older than the backfill limit.

A backfill is an operator's explicit decision to put late history on the
topics: each event keeps the time it was sent with (no placement at the
receive time, no age limit; the future limit still holds) and is checked,
deduplicated and produced exactly like a merchant's, for the campaign's own
merchant. What that changes downstream is in docs/orders.md (Backfills).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from afflux.orders.campaigns_api import check_admin
from afflux.orders.errors import Rejected
from afflux.orders.ingest import Ingestor, parse
from afflux.orders.rules import MAX_BATCH, BatchRequest
from afflux.orders.settings import OrdersSettings

BodyReader = Callable[[Request, int], Awaitable[bytes]]


class RefundsBackfill(BaseModel):
    """``POST /v1/admin/backfill/refunds``: up to 1,000 refunds, each judged on its own."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    refunds: Annotated[list[object], Field(min_length=1, max_length=MAX_BATCH)]


def _ready(request: Request) -> Ingestor:
    ingestor: Ingestor | None = getattr(request.app.state, "ingestor", None)
    if ingestor is None or not ingestor.directory.ready.is_set():
        raise Rejected(503, None, "starting: campaign terms not loaded yet")
    return ingestor


def _answer(results: list[dict[str, Any]]) -> JSONResponse:
    counts: dict[str, int] = {}
    for item in results:
        counts[item["status"]] = counts.get(item["status"], 0) + 1
    return JSONResponse({"results": results, "counts": counts})


def backfill_router(read_body: BodyReader) -> APIRouter:
    """``read_body(request, limit)``: the raw body, or 413 once it exceeds ``limit``."""
    router = APIRouter()

    async def admin_body(request: Request) -> tuple[Ingestor, bytes]:
        check_admin(request)  # before reading anything
        settings: OrdersSettings = request.app.state.settings
        ingestor = _ready(request)
        return ingestor, await read_body(request, settings.orders_max_batch_body_bytes)

    @router.post("/v1/admin/backfill/orders")
    async def backfill_orders(request: Request) -> JSONResponse:
        """``{"orders": [...]}``: each order at its own time, whatever its age."""
        started = time.perf_counter()
        try:
            ingestor, raw = await admin_body(request)
            batch = parse(BatchRequest, raw)
            results = await ingestor.batch(None, batch.orders, backfill=True)
        finally:
            request.app.state.metrics.took("backfill_orders", time.perf_counter() - started)
        return _answer(results)

    @router.post("/v1/admin/backfill/refunds")
    async def backfill_refunds(request: Request) -> JSONResponse:
        """``{"refunds": [...]}``: each refund at its own time, whatever its age."""
        started = time.perf_counter()
        try:
            ingestor, raw = await admin_body(request)
            batch = parse(RefundsBackfill, raw)
            results = await ingestor.backfill_refunds(batch.refunds)
        finally:
            request.app.state.metrics.took("backfill_refunds", time.perf_counter() - started)
        return _answer(results)

    return router
