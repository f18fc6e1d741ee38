"""The orders app: build its dependencies, include its routers (routes/*.py).

Every value a route touches is on ``app.state`` and reaches the route through an
alias of afflux.orders.deps; the lifespan connects to Redis and Kafka, follows the
campaigns topic and puts the ingestor there.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from afflux.orders.claims import ClaimStore
from afflux.orders.health import CHECKS, BrokerProbe, watch_broker
from afflux.orders.ingest import Ingestor, Limits
from afflux.orders.merchant_secrets import MerchantSecrets, load_secrets
from afflux.orders.metrics import OrdersMetrics
from afflux.orders.openapi import merchant_paths, merchant_schemas
from afflux.orders.outcome_index import OutcomeConsumer, OutcomeIndex, OutcomeMetrics
from afflux.orders.publisher import Publisher
from afflux.orders.routes import (
    backfill,
    campaigns,
    insights,
    orders,
    outcomes,
    postback,
    refunds,
    renewals,
)
from afflux.orders.settings import OrdersSettings
from afflux.orders.terms_publisher import TermsPublisher
from afflux.shared.core.clock import Clock
from afflux.shared.io.background import cancel_and_wait
from afflux.shared.io.campaign_view import BadRecord, CampaignDirectory, follow_campaigns
from afflux.shared.io.clock_offset import ClockOffsetCollector
from afflux.shared.io.clock_source import system_clock
from afflux.shared.io.http.apidocs import install_api_docs
from afflux.shared.io.http.health import health_router, metrics_router
from afflux.shared.io.http.problems import Problem, install_problem_handlers
from afflux.shared.io.kafka import dead_letter_of, deliver_dead_letter, new_producer
from afflux.shared.io.redis_client import single_server


def configured_secrets(settings: OrdersSettings) -> dict[str, tuple[str, ...]]:
    """Each merchant's secrets from the settings; raises InvalidSecrets (never echoing one)."""
    raw = settings.merchant_secrets.get_secret_value() if settings.merchant_secrets else None
    production = settings.env == "production"
    return load_secrets(settings.merchant_secrets_file, raw, production=production)


def build_secrets(settings: OrdersSettings, directory: CampaignDirectory) -> MerchantSecrets:
    """Merchant secrets from settings; raises InvalidSecrets (never echoing a secret)."""
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
        configured_secrets(settings),
        development=settings.env == "development",
        campaign_merchants=campaign_merchants,
    )


def ingest_limits(settings: OrdersSettings) -> Limits:
    return Limits(
        skew_ms=settings.orders_clock_skew_s * 1000,
        backfill_limit_days=settings.orders_backfill_limit_days,
        tolerance_s=settings.orders_signature_tolerance_s,
        produce_timeout_s=settings.orders_produce_timeout_s,
        pending_wait_s=settings.orders_produce_timeout_s + 2.0,
        batches_in_flight=settings.orders_batches_in_flight,
    )


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Handler = Callable[[Request], Awaitable[Response]]
# The hot path: one signed order. Its handler runs before FastAPI's middleware and routing.
HOT_PATH = "/v1/orders"


class OrdersApp(FastAPI):
    """FastAPI with ``POST /v1/orders`` in front: that direct route's handler is called
    without FastAPI's middleware stack and router (which cost about as much as the
    handler), its refusals answered by the same problem handler; everything else is
    FastAPI's."""

    hot_handler: Handler | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self.hot_handler
        if (
            handler is not None
            and scope["type"] == "http"
            and scope["path"] == HOT_PATH
            and scope["method"] == "POST"
        ):
            scope["app"] = self
            request = Request(scope, receive)
            try:
                response = await handler(request)
            except Problem as exc:
                answered = self.exception_handlers[Problem](request, exc)
                response = await answered if inspect.isawaitable(answered) else answered
            await response(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _hot_handler(routes: list[Route]) -> Handler:
    [route] = [r for r in routes if r.path == HOT_PATH and "POST" in (r.methods or ())]
    handler: Handler = route.endpoint
    return handler


def create_app(
    settings: OrdersSettings,
    *,
    clock: Clock = system_clock,
    directory: CampaignDirectory | None = None,
) -> FastAPI:
    """The orders app; its lifespan connects to Redis and Kafka and follows campaigns
    (unless ``directory`` is given, already filled)."""
    view = directory or CampaignDirectory()
    secrets = build_secrets(settings, view)
    metrics = OrdersMetrics()
    outcome_metrics = OutcomeMetrics(metrics.registry)
    clock_offset = ClockOffsetCollector(metrics.registry, clock)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = single_server(settings.redis_url)
        producer = new_producer(
            settings.kafka_bootstrap,
            request_timeout_ms=int(settings.orders_produce_timeout_s * 1000),
            linger_ms=settings.orders_linger_ms,
        )
        await producer.start()
        app.state.broker_probe = BrokerProbe(producer)
        follower = None
        restoring: dict[str, asyncio.Task[None]] = {}

        async def restore_known(campaign_id: str) -> None:
            if campaign_id in view:  # a tombstone of no campaign deletes nothing
                await app.state.terms_publisher.restore(campaign_id)

        if directory is None:
            follower = asyncio.create_task(
                follow_campaigns(
                    view,
                    settings.kafka_bootstrap,
                    on_bad_record=dead_letters_to(
                        producer, metrics, restore=restore_known, restoring=restoring
                    ),
                ),
                name="campaign-terms",
            )
        claims = ClaimStore(
            redis,
            settings.orders_redis_prefix,
            pending_ms=int(settings.orders_pending_s * 1000),
            ttl_s=settings.orders_dedupe_ttl_days * 86_400,
        )
        app.state.outcome_index = index = OutcomeIndex(
            redis, settings.orders_redis_prefix, settings.orders_outcome_retention_days
        )
        app.state.ingestor = ingestor = Ingestor(
            directory=view,
            secrets=secrets,
            claims=claims,
            publisher=Publisher(producer, pack=settings.orders_pack_records),
            metrics=metrics,
            clock=clock,
            limits=ingest_limits(settings),
            placed_on_topic=index.placed if settings.orders_outcome_index else None,
        )
        app.state.redis = redis
        app.state.terms_publisher.use_redis(redis, settings.orders_redis_prefix)
        outcome_task = None
        if settings.orders_outcome_index:
            keeper = OutcomeConsumer(
                bootstrap=settings.kafka_bootstrap,
                index=index,
                producer=producer,
                metrics=outcome_metrics,
            )
            outcome_task = asyncio.create_task(keeper.run(), name="order-outcome-index")
        offset_task = asyncio.create_task(clock_offset.run(redis), name="clock-offset")
        broker_task = asyncio.create_task(
            watch_broker(ingestor.publisher.watch, app.state.broker_probe, metrics.broker_up),
            name="broker-watch",
        )
        gc.collect()
        gc.freeze()  # what start-up built stays out of every later collection
        try:
            yield
        finally:
            app.state.ingestor = None
            await cancel_and_wait(
                [t for t in (outcome_task, follower, offset_task, broker_task) if t is not None]
                + list(restoring.values())
            )
            await ingestor.marks.close()
            await producer.stop()  # flushes what is in flight
            await redis.aclose()  # type: ignore[attr-defined]

    # No app-wide refuse_repeated_names: every route here reads its own body and parses
    # it with ``ingest.parse``, which refuses a name given twice, after the signature or
    # admin token and the byte limit. The app-wide dependency would run first, reading an
    # unbounded body for a caller not yet authenticated, and check the same bytes twice.
    app = OrdersApp(title="afflux orders", lifespan=lifespan)
    app.state.settings = settings
    app.state.clock = clock
    app.state.directory = view
    app.state.metrics = metrics
    app.state.terms_publisher = TermsPublisher(settings.kafka_bootstrap)
    app.state.ingestor = None
    install_problem_handlers(app)
    # The merchant routes are direct routes, matched before anything else: the hot paths.
    app.router.routes[:0] = [
        *orders.routes,
        *postback.routes,
        *refunds.routes,
        *renewals.routes,
    ]
    app.hot_handler = _hot_handler(orders.routes)
    app.include_router(health_router(CHECKS))
    app.include_router(metrics_router(metrics.registry))
    app.include_router(campaigns.router)
    app.include_router(backfill.router)
    app.include_router(outcomes.router)
    app.include_router(insights.router)
    install_api_docs(app, paths=merchant_paths(), schemas=merchant_schemas())
    return app


def dead_letters_to(
    producer: AIOKafkaProducer,
    metrics: OrdersMetrics,
    restore: Callable[[str], Coroutine[Any, Any, None]] | None = None,
    restoring: dict[str, asyncio.Task[None]] | None = None,
) -> BadRecord:
    """Orders owns the campaigns topic's dead letters (every service skips bad records).

    A letter is sent again while the broker is away, so an outage loses none (the
    follower waits meanwhile, as it could read nothing new either); one refused for
    itself (too large for the producer or broker, a closed producer), which no retry
    would cure, is logged by ``deliver_dead_letter`` and counted, and the follower goes
    on with the next record: the view must keep following either way.

    A tombstone keyed by a campaign is also answered with ``restore(campaign_id)``, in
    the background (it takes the publication lock and reads the topic): compaction would
    otherwise in time delete the campaign's whole history."""
    # One restore at a time per campaign; the caller cancels what is left at shutdown.
    pending: dict[str, asyncio.Task[None]] = {} if restoring is None else restoring

    async def send(record: ConsumerRecord[bytes, bytes], reason: str, error_class: str) -> None:
        letter = dead_letter_of(
            record, consumer="orders.campaigns", reason=reason, error_class=error_class
        )
        if await deliver_dead_letter(producer, letter) is not None:
            metrics.campaign_dead_letters_unsent.labels(record.topic).inc()
        else:
            metrics.dlq.labels(record.topic, error_class).inc()
        if restore is not None and record.value is None and record.key:
            campaign_id = record.key.decode("utf-8", "replace")
            if campaign_id not in pending:
                task = asyncio.create_task(restore(campaign_id), name="restore-campaign")
                pending[campaign_id] = task
                task.add_done_callback(lambda _: pending.pop(campaign_id, None))

    return send
