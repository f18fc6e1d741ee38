"""Merchant route for refunds: ``POST /v1/refunds`` (a direct route, like orders)."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from afflux.orders.deps import IngestDep, MetricsDep, SettingsDep
from afflux.orders.routes.signed import signed_at_ms, signed_body
from afflux.shared.io.http.direct import direct_route


async def post_refund(
    request: Request, ingestor: IngestDep, settings: SettingsDep, metrics: MetricsDep
) -> Response:
    started = time.perf_counter()
    try:
        raw, merchant = await signed_body(
            request, ingestor, settings.orders_max_body_bytes, refund=True
        )
        outcome = await ingestor.refund(merchant, raw, signed_at_ms=signed_at_ms(request))
    finally:
        metrics.took("refunds", time.perf_counter() - started)
    return JSONResponse(outcome.body, status_code=outcome.status)


routes = [direct_route("/v1/refunds", post_refund, ["POST"])]
