"""HTTP edge of the orders service: thin routes over the Ingestor."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl

from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.asyncio import Redis
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Route

from afflux.orders import rules, signing
from afflux.orders.backfill_api import backfill_router
from afflux.orders.campaigns_api import campaigns_router
from afflux.orders.claims import ClaimStore
from afflux.orders.errors import Rejected
from afflux.orders.ingest import Ingestor, Limits, parse
from afflux.orders.merchant_secrets import MerchantSecrets, load_secrets
from afflux.orders.metrics import UNKNOWN, OrdersMetrics
from afflux.orders.publisher import Publisher
from afflux.orders.settings import OrdersSettings
from afflux.shared.campaign_view import BadRecord, CampaignDirectory, follow_campaigns
from afflux.shared.clock_source import system_clock
from afflux.shared.core.clock import Clock
from afflux.shared.kafka import dead_letter, new_producer, send_dead_letter

log = logging.getLogger(__name__)


def build_secrets(settings: OrdersSettings, directory: CampaignDirectory) -> MerchantSecrets:
    """Merchant secrets from settings; raises InvalidSecrets (never echoing a secret)."""
    raw = settings.merchant_secrets.get_secret_value() if settings.merchant_secrets else None
    merchants: set[str] = set()
    stale = [True]

    def on_change(_: object) -> None:
        stale[0] = True

    def campaign_merchants() -> set[str]:
        if stale[0]:
            stale[0] = False
            merchants.clear()
            merchants.update(
                directory.latest(c).terms.merchant_id for c in directory.campaign_ids()
            )
        return merchants

    directory.on_change(on_change)
    return MerchantSecrets(
        load_secrets(settings.merchant_secrets_file, raw, production=settings.env == "production"),
        development=settings.env == "development",
        campaign_merchants=campaign_merchants,
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, or 413 as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect:
        # A client that hangs up mid-body is answered (to nobody) as a bad request, not
        # logged as a server error.
        raise Rejected(400, "body", "the client disconnected before the body ended") from None
    return b"".join(chunks)


def _too_large(limit: int) -> Rejected:
    return Rejected(413, "body", f"larger than the {limit} byte limit")


def _ingestor(request: Request) -> Ingestor:
    ingestor: Ingestor | None = getattr(request.app.state, "ingestor", None)
    if ingestor is None or not ingestor.directory.ready.is_set():
        raise Rejected(503, None, "starting: campaign terms not loaded yet")
    return ingestor


def _answer(status: int, body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, status_code=status)


def create_app(
    settings: OrdersSettings,
    *,
    clock: Clock = system_clock,
    directory: CampaignDirectory | None = None,
) -> FastAPI:
    """The orders app; its lifespan connects to Redis and Kafka and follows campaigns."""
    view = directory or CampaignDirectory()
    secrets = build_secrets(settings, view)
    metrics = OrdersMetrics()
    limits = Limits(
        skew_ms=settings.orders_clock_skew_s * 1000,
        backfill_limit_days=settings.orders_backfill_limit_days,
        tolerance_s=settings.orders_signature_tolerance_s,
        produce_timeout_s=settings.orders_produce_timeout_s,
        pending_wait_s=settings.orders_produce_timeout_s + 2.0,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = Redis.from_url(settings.redis_url)
        producer = new_producer(
            settings.kafka_bootstrap,
            request_timeout_ms=int(settings.orders_produce_timeout_s * 1000),
            linger_ms=settings.orders_linger_ms,
        )
        await producer.start()
        follower = None
        if directory is None:
            follower = asyncio.create_task(
                follow_campaigns(
                    view, settings.kafka_bootstrap, on_bad_record=_dead_letters_to(producer)
                )
            )
        claims = ClaimStore(
            redis,
            settings.orders_redis_prefix,
            pending_ms=int(settings.orders_pending_s * 1000),
            ttl_s=settings.orders_dedupe_ttl_days * 86_400,
        )
        app.state.ingestor = Ingestor(
            directory=view,
            secrets=secrets,
            claims=claims,
            publisher=Publisher(producer, pack=settings.orders_pack_records),
            metrics=metrics,
            clock=clock,
            limits=limits,
        )
        app.state.redis = redis
        gc.collect()
        gc.freeze()  # what start-up built stays out of every later collection
        try:
            yield
        finally:
            app.state.ingestor = None
            if follower is not None:
                follower.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await follower
            await producer.stop()  # flushes what is in flight
            await redis.aclose()  # type: ignore[attr-defined]

    app = FastAPI(title="afflux orders", lifespan=lifespan)
    app.state.settings = settings
    app.state.directory = view
    app.state.metrics = metrics
    app.include_router(campaigns_router())
    app.include_router(backfill_router(read_body))

    @app.exception_handler(Rejected)
    async def rejected(request: Request, exc: Rejected) -> JSONResponse:
        headers = {"Retry-After": "1"} if exc.status == 503 else None
        return JSONResponse(exc.body(), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        field = ".".join(str(p) for p in first.get("loc", ())) or None
        body = {"detail": [{"field": field, "reason": first.get("msg", "invalid")}]}
        return JSONResponse(body, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        body = {"detail": [{"field": None, "reason": str(exc.detail)}]}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.get("/healthz")
    async def healthz(request: Request) -> JSONResponse:
        checks = {"campaigns": view.ready.is_set(), "redis": False, "kafka": False}
        ingestor: Ingestor | None = getattr(request.app.state, "ingestor", None)
        if ingestor is not None:
            checks["kafka"] = True
            with contextlib.suppress(Exception):
                checks["redis"] = bool(await asyncio.wait_for(request.app.state.redis.ping(), 1))
        ok = all(checks.values())
        return JSONResponse(
            {"status": "ok" if ok else "starting", "checks": checks},
            status_code=200 if ok else 503,
        )

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def post_order(request: Request) -> Response:
        started = time.perf_counter()
        try:
            ingestor = _ingestor(request)
            raw, merchant = await _authenticated(request, settings.orders_max_body_bytes)
            outcome = await ingestor.order(merchant, raw)
        finally:
            metrics.took("orders", time.perf_counter() - started)
        return _answer(outcome.status, outcome.body)

    async def post_batch(request: Request) -> Response:
        started = time.perf_counter()
        try:
            ingestor = _ingestor(request)
            raw, merchant = await _authenticated(request, settings.orders_max_batch_body_bytes)
            batch = parse(rules.BatchRequest, raw)
            results = await ingestor.batch(merchant, batch.orders)
        finally:
            metrics.took("orders_batch", time.perf_counter() - started)
        counts: dict[str, int] = {}
        for item in results:
            counts[item["status"]] = counts.get(item["status"], 0) + 1
        return _answer(200, {"results": results, "counts": counts})

    async def postback(request: Request) -> Response:
        started = time.perf_counter()
        try:
            ingestor = _ingestor(request)
            raw_query = request.scope["query_string"].decode("latin-1")
            if len(raw_query) > settings.orders_max_body_bytes:
                raise Rejected(413, "query", "longer than the body size limit")
            params, repeated = _query_params(raw_query)
            merchant = ingestor.authenticate_query(
                raw_query, params.pop("merchant", None), params.pop("t", None)
            )
            if repeated is not None:
                raise Rejected(422, repeated, "given more than once")
            order = _postback_order(params, clock())
            outcome = await ingestor.order(merchant, order)
        finally:
            metrics.took("postback", time.perf_counter() - started)
        return _answer(outcome.status, outcome.body)

    async def post_refund(request: Request) -> Response:
        started = time.perf_counter()
        try:
            ingestor = _ingestor(request)
            raw, merchant = await _authenticated(request, settings.orders_max_body_bytes, "refunds")
            outcome = await ingestor.refund(merchant, raw)
        finally:
            metrics.took("refunds", time.perf_counter() - started)
        return _answer(outcome.status, outcome.body)

    async def confirm_lead(request: Request) -> Response:
        started = time.perf_counter()
        order_id = str(request.path_params["order_id"])
        try:
            ingestor = _ingestor(request)
            raw, merchant = await _authenticated(request, settings.orders_max_body_bytes)
            outcome = await ingestor.confirm_lead(merchant, order_id, raw)
        finally:
            metrics.took("leads", time.perf_counter() - started)
        return _answer(outcome.status, outcome.body)

    # Merchant endpoints are plain Starlette routes inside the FastAPI app, matched
    # first: they verify the signature over the raw body before parsing it, so
    # FastAPI's parameter and body handling would only add cost (docs/orders.md).
    app.router.routes[:0] = [
        Route("/v1/orders", post_order, methods=["POST"]),
        Route("/v1/orders:batch", post_batch, methods=["POST"]),
        Route("/v1/postback", postback, methods=["GET"]),
        Route("/v1/refunds", post_refund, methods=["POST"]),
        Route("/v1/leads/{order_id}/confirm", confirm_lead, methods=["POST"]),
    ]
    return app


def _dead_letters_to(producer: AIOKafkaProducer) -> BadRecord:
    """Orders owns the campaigns topic's dead letters (every service skips bad records)."""

    async def send(record: ConsumerRecord[bytes, bytes], reason: str, error_class: str) -> None:
        letter = dead_letter(
            consumer="orders.campaigns",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            reason=reason,
            error_class=error_class,
        )
        with contextlib.suppress(Exception):  # the view must keep following either way
            await send_dead_letter(producer, letter)

    return send


async def _authenticated(
    request: Request, limit: int, counter: str = "orders"
) -> tuple[bytes, str]:
    """The raw body and the merchant who signed it; failures count as rejected, campaign unknown."""
    ingestor = _ingestor(request)
    try:
        raw = await read_body(request, limit)
        merchant = ingestor.authenticate(
            request.headers.get(signing.MERCHANT_HEADER),
            request.headers.get(signing.SIGNATURE_HEADER),
            raw,
        )
    except Rejected:
        if counter == "refunds":
            ingestor.metrics.refund(UNKNOWN, "rejected")
        else:
            ingestor.metrics.order(UNKNOWN, UNKNOWN, "rejected")
        raise
    return raw, merchant


_BOOL = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


# Parameters that decide who signed: any doubt about them is a 401, before anything else.
_SIGNING_PARAMS = frozenset({"merchant", "t", signing.SIG_PARAM})


def _query_params(raw_query: str) -> tuple[dict[str, str], str | None]:
    """The signed parameters, and the first other parameter given twice (refused with 422
    once the signature is known to be good). Every malformed signature is a 401."""
    try:
        signed, _ = signing.split_signed_query(raw_query)
    except signing.SignatureRejected as exc:
        raise Rejected(401, exc.field, exc.reason) from None
    params: dict[str, str] = {}
    repeated: str | None = None
    for name, value in parse_qsl(signed, keep_blank_values=True):
        if name == signing.SIG_PARAM or (name in params and name in _SIGNING_PARAMS):
            raise Rejected(401, name, "given more than once")
        if name in params:
            repeated = repeated or name
            continue
        params[name] = value
    t = params.get("t")
    if t is not None and not signing.is_unix_seconds(t):
        raise Rejected(401, "t", "missing or not unix seconds")
    return params, repeated


def _is_integer_text(text: str) -> bool:
    digits = text.removeprefix("-")
    return 0 < len(digits) <= 20 and digits.isascii() and digits.isdigit()


def _postback_order(params: dict[str, str], now_ms: int) -> dict[str, Any]:
    """Query parameters as an order: numbers and booleans from text, time defaults to now."""
    order: dict[str, Any] = dict(params)
    when = order.get("occurred_at")
    if when is None or when == "":
        order["occurred_at"] = now_ms
    elif when.isascii() and when.isdigit():
        order["occurred_at"] = int(when)
    # Query values are text; the order model takes amounts only as integers. Longer
    # digit runs stay text and are refused by the model (int() would raise past 4300).
    amount = order.get("amount_minor")
    if amount is not None and _is_integer_text(amount):
        order["amount_minor"] = int(amount)
    if "new_customer" in order:
        flag = _BOOL.get(order["new_customer"].lower())
        if flag is None:
            raise Rejected(422, "new_customer", "use true or false")
        order["new_customer"] = flag
    if "items" in order:
        raise Rejected(422, "items", "not supported in a postback; use POST /v1/orders")
    return order
