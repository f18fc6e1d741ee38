"""The payouts app: build its dependencies, include its routers (routes/*.py).

Every value a route touches is on ``app.state`` and reaches the route through an
alias of afflux.payouts.deps; the lifespan connects to Redis and Kafka, follows the
campaigns topic and runs the ledger consumer.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI
from redis.asyncio import Redis

from afflux.payouts import compaction
from afflux.payouts.consumer import LedgerConsumer
from afflux.payouts.errors import JSON_ERRORS
from afflux.payouts.health import CHECKS, ledger_detail
from afflux.payouts.metrics import PayoutsMetrics
from afflux.payouts.portal.routes import install_portal
from afflux.payouts.routes import (
    content,
    creators,
    keys,
    kpis,
    orders,
    reports,
    reviews,
    runs,
    session,
    whatif,
)
from afflux.payouts.settings import PayoutsSettings
from afflux.payouts.store import LedgerStore
from afflux.payouts.webhooks import routes as webhook_routes
from afflux.payouts.webhooks.metrics import WebhookMetrics
from afflux.payouts.webhooks.sender import start_sender, webhook_store
from afflux.shared.core.clock import Clock
from afflux.shared.io.background import cancel_and_wait
from afflux.shared.io.campaign_view import CampaignDirectory, follow_campaigns
from afflux.shared.io.clock_offset import ClockOffsetCollector
from afflux.shared.io.clock_source import system_clock
from afflux.shared.io.http.apidocs import install_api_docs
from afflux.shared.io.http.bodies import NAMES_ONCE_AFTER_CSRF
from afflux.shared.io.http.client_address import ProxyTrust
from afflux.shared.io.http.health import health_router, metrics_router
from afflux.shared.io.http.principals import (
    AccessConfig,
    AccessStore,
    refuse_credentials_in_query,
)
from afflux.shared.io.http.problems import install_problem_handlers
from afflux.shared.io.kafka import new_producer
from afflux.shared.io.redis_client import connect_ready

log = logging.getLogger(__name__)
PRODUCE_TIMEOUT_MS = 10_000


async def _follow_forever(directory: CampaignDirectory, bootstrap: str) -> None:
    """Campaign terms keep flowing across broker outages: restart the follower on failure."""
    while True:
        try:
            await follow_campaigns(directory, bootstrap)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("campaign follower failed; restarting")
        await asyncio.sleep(1)


def _exit_if_failed(task: asyncio.Task[None]) -> None:
    """A ledger that silently stops consuming is worse than a crash a supervisor restarts."""
    if task.cancelled() or task.exception() is None:
        return
    log.critical("background task failed; exiting", exc_info=task.exception())
    os._exit(70)


def access_config(settings: PayoutsSettings) -> AccessConfig:
    """Sessions as the settings say (docs/portal.md, "Access")."""
    public = urlsplit(settings.payouts_public_url) if settings.payouts_public_url else None
    return AccessConfig(
        admin_token=settings.admin_token_value(),
        session_ttl_s=settings.session_ttl_seconds,
        secure_cookie=public is not None and public.scheme == "https",
        public_origins=frozenset({f"{public.scheme}://{public.netloc}"} if public else ()),
        proxies=ProxyTrust(settings.trusted_proxy_networks()),
    )


def create_app(settings: PayoutsSettings, *, clock: Clock = system_clock) -> FastAPI:
    """The payouts app; its lifespan connects to Redis and Kafka, follows campaigns and
    runs the ledger consumer."""
    metrics = PayoutsMetrics()
    webhook_metrics = WebhookMetrics(metrics.registry)
    clock_offset = ClockOffsetCollector(metrics.registry, clock)
    directory = CampaignDirectory()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # redis:// or redis-cluster://; a cluster client speaks the same commands.
        redis = cast("Redis[bytes]", await connect_ready(settings.redis_url))
        # A send the broker does not answer ends in 10 s (aiokafka's default, 40 s, held a
        # content POST past its clients' own timeouts while the broker stalled).
        producer = new_producer(settings.kafka_bootstrap, request_timeout_ms=PRODUCE_TIMEOUT_MS)
        await producer.start()
        store = LedgerStore(
            redis,
            cache_lines=settings.ledger_cache_lines,
            retention_days=settings.ledger_retention_days,
        )
        consumer = LedgerConsumer(
            bootstrap=settings.kafka_bootstrap,
            group_id=settings.payouts_group_id,
            instance_id=f"payouts-{settings.instance_id}" if settings.instance_id else None,
            store=store,
            directory=directory,
            producer=producer,
            metrics=metrics,
            clock=clock,
            max_records=settings.ledger_max_poll_records,
            verify_interval_s=settings.ledger_verify_interval_s,
        )
        tasks = [
            asyncio.create_task(_follow_forever(directory, settings.kafka_bootstrap)),
            asyncio.create_task(consumer.run()),
            asyncio.create_task(metrics.redis_memory.run(redis)),
            asyncio.create_task(clock_offset.run(redis), name="clock-offset"),
        ]
        tasks[1].add_done_callback(_exit_if_failed)
        if settings.ledger_compact_interval_s > 0:  # docs/payouts.md, "Compaction"
            grace_ms = settings.ledger_compact_grace_days * 86_400_000
            tasks.append(
                asyncio.create_task(
                    compaction.run_every(
                        store,
                        directory.versions,
                        directory.ready,
                        settings.ledger_compact_interval_s,
                        grace_ms,
                        clock,
                    )
                )
            )
        webhooks = webhook_store(redis, settings, webhook_metrics)
        if settings.webhooks_enabled:  # its own consumer group: docs/webhooks.md
            senders = start_sender(settings, webhooks, directory, webhook_metrics, clock)
            for sender in senders:
                sender.add_done_callback(_exit_if_failed)
            tasks += senders
        app.state.store, app.state.producer, app.state.consumer = store, producer, consumer
        app.state.webhooks = webhooks
        app.state.access = AccessStore(redis)
        try:
            yield
        finally:
            await cancel_and_wait(tasks)
            await producer.stop()
            await redis.aclose()  # type: ignore[attr-defined]

    app = FastAPI(
        title="afflux payouts",
        description="Commission ledger: balances, explained lines, statements, KPIs, payout runs.",
        lifespan=lifespan,
        # No route reads a credential from the URL; one sent there is refused (400) on
        # every route, so it is noticed and rotated (docs/portal.md, "Access"). A name
        # given twice in a JSON body is refused by each route with one, after its
        # credentials (afflux.shared.io.http.bodies), never here before them.
        dependencies=[Depends(refuse_credentials_in_query)],
    )
    app.state.settings = settings
    app.state.clock = clock
    app.state.directory = directory
    app.state.metrics = metrics
    app.state.store = app.state.producer = app.state.consumer = app.state.webhooks = None
    app.state.access = None
    app.state.access_config = access_config(settings)
    install_problem_handlers(app)
    app.include_router(health_router(CHECKS, detail=ledger_detail))
    app.include_router(metrics_router(metrics.registry))
    app.include_router(creators.router)
    app.include_router(kpis.router)
    app.include_router(runs.router)
    app.include_router(orders.router)
    app.include_router(reports.router, responses=JSON_ERRORS)
    app.include_router(webhook_routes.router)
    app.include_router(keys.router)
    app.include_router(session.router)
    app.include_router(whatif.router)
    # Every content route takes a JSON body behind CsrfDep: the check of repeated names
    # is named here, for the whole router, as the other routes name it in their decorator.
    app.include_router(content.router, dependencies=[NAMES_ONCE_AFTER_CSRF])
    app.include_router(reviews.router)
    install_portal(app)
    install_api_docs(app)
    return app
