"""Merchant routes for orders: ``POST /v1/orders``, ``/v1/orders:batch`` and lead
confirmations.

Direct routes (afflux.shared.io.http.direct): each verifies the signature over the raw
body before parsing it, so FastAPI's parameter and body handling would only add
cost (docs/orders.md).
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from afflux.orders import rules
from afflux.orders.deps import IngestDep, MetricsDep, SettingsDep
from afflux.orders.ingest import parse
from afflux.orders.routes.signed import signed_at_ms, signed_body
from afflux.shared.io.http.direct import JsonAnswer, direct_route


async def post_order(
    request: Request, ingestor: IngestDep, settings: SettingsDep, metrics: MetricsDep
) -> Response:
    started = time.perf_counter()
    try:
        raw, merchant = await signed_body(request, ingestor, settings.orders_max_body_bytes)
        outcome = await ingestor.order(merchant, raw, signed_at_ms=signed_at_ms(request))
    finally:
        metrics.took("orders", time.perf_counter() - started)
    return JsonAnswer(outcome.body, status_code=outcome.status)


async def post_batch(
    request: Request, ingestor: IngestDep, settings: SettingsDep, metrics: MetricsDep
) -> Response:
    started = time.perf_counter()
    try:
        raw, merchant = await signed_body(request, ingestor, settings.orders_max_batch_body_bytes)
        batch = parse(rules.BatchRequest, raw)
        results = await ingestor.batch(merchant, batch.orders, signed_at_ms=signed_at_ms(request))
    finally:
        metrics.took("orders_batch", time.perf_counter() - started)
    counts: dict[str, int] = {}
    for item in results:
        counts[item["status"]] = counts.get(item["status"], 0) + 1
    return JSONResponse({"results": results, "counts": counts})


async def confirm_lead(
    request: Request, ingestor: IngestDep, settings: SettingsDep, metrics: MetricsDep
) -> Response:
    started = time.perf_counter()
    order_id = str(request.path_params["order_id"])
    try:
        raw, merchant = await signed_body(
            request, ingestor, settings.orders_max_body_bytes, binds_path=True
        )
        outcome = await ingestor.confirm_lead(merchant, order_id, raw)
    finally:
        metrics.took("leads", time.perf_counter() - started)
    return JSONResponse(outcome.body, status_code=outcome.status)


async def post_survey(
    request: Request, ingestor: IngestDep, settings: SettingsDep, metrics: MetricsDep
) -> Response:
    started = time.perf_counter()
    order_id = str(request.path_params["order_id"])
    try:
        raw, merchant = await signed_body(
            request, ingestor, settings.orders_max_body_bytes, binds_path=True
        )
        outcome = await ingestor.survey(merchant, order_id, raw)
    finally:
        metrics.took("surveys", time.perf_counter() - started)
    return JSONResponse(outcome.body, status_code=outcome.status)


routes = [
    direct_route("/v1/orders", post_order, ["POST"]),
    direct_route("/v1/orders:batch", post_batch, ["POST"]),
    # ``path``: an order id may hold a '/' (any visible character): the default converter
    # never matched one, so such a lead could never be confirmed (404, "unknown order")
    direct_route("/v1/leads/{order_id:path}/confirm", confirm_lead, ["POST"]),
    direct_route("/v1/orders/{order_id:path}/survey", post_survey, ["POST"]),
]
