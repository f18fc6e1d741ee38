"""Admin routes for backfills: orders and refunds older than the backfill limit.

A backfill is an operator's explicit decision to put late history on the
topics: each event keeps the time it was sent with (no placement at the
receive time, no age limit; the future limit still holds) and is checked,
deduplicated and produced exactly like a merchant's, for the campaign's own
merchant. What that changes downstream is in docs/orders.md (Backfills).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from afflux.orders.body import read_body
from afflux.orders.deps import AdminDep, IngestDep, MetricsDep, SettingsDep
from afflux.orders.ingest import parse
from afflux.orders.rules import MAX_BATCH, BatchRequest
from afflux.shared.io.http.apidocs import problem

router = APIRouter()


class RefundsBackfill(BaseModel):
    """``POST /v1/admin/backfill/refunds``: up to 1,000 refunds, each judged on its own."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    refunds: Annotated[list[object], Field(min_length=1, max_length=MAX_BATCH)]


def results_answer(results: list[dict[str, Any]]) -> JSONResponse:
    counts: dict[str, int] = {}
    for item in results:
        counts[item["status"]] = counts.get(item["status"], 0) + 1
    return JSONResponse({"results": results, "counts": counts})


def _documented(request: str) -> dict[str, Any]:
    body = {"$ref": f"#/components/schemas/{request}"}
    return {
        "responses": {
            200: {
                "description": "one result per item, in order, and counts",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/BatchAnswer"}}
                },
            },
            400: problem("malformed JSON, or the body ended early"),
            413: problem("body larger than the batch size limit"),
            415: problem(
                "a body sent as something else than JSON (a Content-Type other than"
                " application/json, or a Content-Encoding): names the header"
            ),
            422: problem("invalid request: the field and the reason"),
            503: problem("starting: campaign terms not loaded yet, retry", retry=True),
        },
        "openapi_extra": {
            "requestBody": {"required": True, "content": {"application/json": {"schema": body}}}
        },
    }


# The admin token is checked (AdminDep, first) before the body is read.
@router.post("/v1/admin/backfill/orders", **_documented("BatchRequest"))
async def backfill_orders(
    _: AdminDep,
    request: Request,
    ingestor: IngestDep,
    settings: SettingsDep,
    metrics: MetricsDep,
) -> JSONResponse:
    """``{"orders": [...]}``: each order at its own time, whatever its age."""
    started = time.perf_counter()
    try:
        raw = await read_body(request, settings.orders_max_batch_body_bytes)
        batch = parse(BatchRequest, raw)
        results = await ingestor.batch(None, batch.orders, backfill=True)
    finally:
        metrics.took("backfill_orders", time.perf_counter() - started)
    return results_answer(results)


@router.post("/v1/admin/backfill/refunds", **_documented("RefundsBackfill"))
async def backfill_refunds(
    _: AdminDep,
    request: Request,
    ingestor: IngestDep,
    settings: SettingsDep,
    metrics: MetricsDep,
) -> JSONResponse:
    """``{"refunds": [...]}``: each refund at its own time, whatever its age."""
    started = time.perf_counter()
    try:
        raw = await read_body(request, settings.orders_max_batch_body_bytes)
        batch = parse(RefundsBackfill, raw)
        results = await ingestor.backfill_refunds(batch.refunds)
    finally:
        metrics.took("backfill_refunds", time.perf_counter() - started)
    return results_answer(results)
