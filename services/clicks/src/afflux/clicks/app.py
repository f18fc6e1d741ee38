"""The clicks app: the redirect layer in front of a FastAPI app (links API, health, metrics).

``create_app`` builds the dependencies and includes the routers (routes/*.py): every
value a route touches is on ``app.state`` and reaches the route through an alias of
afflux.clicks.deps; the lifespan connects to Kafka, restores links, follows campaigns
and puts the redirect's ``ClickContext`` there.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from afflux.clicks.destinations import is_allowed
from afflux.clicks.health import CHECKS
from afflux.clicks.link_log import LinkRestorer, publish_link
from afflux.clicks.links import Link, LinkCache, LinkStore
from afflux.clicks.metrics import ClicksMetrics
from afflux.clicks.openapi import redirect_paths
from afflux.clicks.privacy import IpHasher
from afflux.clicks.quality import BotDetector, CampaignIpWindows, ClickQuality, IpWindow
from afflux.clicks.redirect import ClickContext, Receive, Scope, Send, is_redirect, redirect
from afflux.clicks.routes import links
from afflux.clicks.routes.links import allowed_domains
from afflux.clicks.settings import ClicksSettings
from afflux.clicks.shipper import ClickShipper
from afflux.clicks.visitor_cookie import VisitorSeal
from afflux.clicks.wal import WriteAheadLog
from afflux.shared.core.clock import Clock
from afflux.shared.io.background import cancel_and_wait
from afflux.shared.io.campaign_view import CampaignDirectory, UnknownCampaign, follow_campaigns
from afflux.shared.io.clock_offset import ClockOffsetCollector
from afflux.shared.io.clock_source import system_clock
from afflux.shared.io.http.apidocs import install_api_docs
from afflux.shared.io.http.client_address import ProxyTrust
from afflux.shared.io.http.health import health_router, metrics_router
from afflux.shared.io.http.problems import install_problem_handlers
from afflux.shared.io.kafka import new_producer
from afflux.shared.io.redis_client import single_server
from afflux.shared.topics import CLICKS

log = logging.getLogger(__name__)


def ip_hash_key(settings: ClicksSettings) -> bytes:
    """The configured HMAC key; in development a random one per process, with a warning."""
    if settings.clicks_ip_hash_secret and settings.clicks_ip_hash_secret.get_secret_value():
        return settings.clicks_ip_hash_secret.get_secret_value().encode()
    log.warning(
        "AFFLUX_CLICKS_IP_HASH_SECRET is not set: IPs are hashed with a random key for this "
        "process only (development); set it so hashes stay comparable across restarts"
    )
    return secrets.token_bytes(32)


def wal_dir(settings: ClicksSettings) -> Path:
    suffix = f"-{settings.instance_id}" if settings.instance_id else ""
    return settings.data_dir / f"clicks-wal{suffix}"


def open_wal(settings: ClicksSettings) -> WriteAheadLog:
    """The click log; segments an earlier version left in its disk spool are taken over."""
    suffix = f"-{settings.instance_id}" if settings.instance_id else ""
    return WriteAheadLog(
        wal_dir(settings),
        segment_bytes=settings.clicks_wal_segment_bytes,
        legacy=settings.data_dir / f"clicks-spool{suffix}",
    )


class ClicksApp(FastAPI):
    """FastAPI with the redirect in front: ``GET``/``HEAD /c/...`` is answered by
    afflux.clicks.redirect before FastAPI's middleware and routing (which cost more than
    the redirect itself); everything else, and a redirect before start-up ends, is FastAPI's.
    """

    redirect_context: ClickContext | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        context = self.redirect_context
        if context is not None and is_redirect(scope):
            await redirect(context, scope, send)
            return
        await super().__call__(scope, receive, send)


def create_app(
    settings: ClicksSettings,
    *,
    clock: Clock = system_clock,
    directory: CampaignDirectory | None = None,
) -> FastAPI:
    """The clicks app; its lifespan connects to Redis and Kafka and follows campaigns."""
    view = directory or CampaignDirectory()
    metrics = ClicksMetrics()
    clock_offset = ClockOffsetCollector(metrics.registry, clock)
    secret = ip_hash_key(settings)
    hasher = IpHasher(secret, settings.clicks_ipv6_prefix_bits)
    seal = VisitorSeal(secret)
    proxies = ProxyTrust(settings.trusted_networks())

    def still_allowed(link: Link) -> bool:
        try:
            domains = allowed_domains(view, link.campaign_id, clock())
        except UnknownCampaign:
            return True  # validated at creation; the view may still be loading
        return is_allowed(link.destination_url, domains)

    redis = single_server(settings.redis_url)
    store = LinkStore(
        redis,
        settings.clicks_redis_prefix,
        on_unreadable=lambda reason: metrics.links_unreadable.labels("redis", reason).inc(),
    )
    cache = LinkCache(store, settings.clicks_link_cache_max, still_allowed)
    restorer = LinkRestorer(store, settings.kafka_bootstrap, cache.clear, metrics)
    cache.restore = restorer
    view.on_change(lambda _: cache.clear())  # allowed domains may have changed
    ip_windows = CampaignIpWindows(
        IpWindow(
            settings.clicks_ip_duplicate_window_s * 1000, settings.clicks_ip_agents_per_window
        ),
        view.versions,
    )
    view.on_change(lambda _: ip_windows.clear())

    @asynccontextmanager
    async def lifespan(app: ClicksApp) -> AsyncIterator[None]:
        producer = new_producer(
            settings.kafka_bootstrap,
            linger_ms=0,  # the shipper packs already
            request_timeout_ms=settings.clicks_send_timeout_ms,
        )
        await producer.start()
        try:
            partitions = len(await producer.partitions_for(CLICKS.name))
        except Exception:
            partitions = settings.topic_partitions
        send_timeout_s = settings.clicks_send_timeout_ms / 1000
        store.publish = lambda link: publish_link(producer, link, send_timeout_s)
        restorer.producer = producer
        wal = open_wal(settings)
        shipper = ClickShipper(
            producer,
            CLICKS.name,
            partitions,
            wal,
            max_bytes=settings.clicks_wal_max_bytes,
            window_s=settings.clicks_wal_window_ms / 1000,
            retry_interval_s=settings.clicks_retry_ms / 1000,
            send_timeout_s=send_timeout_s,
            linger_s=settings.clicks_linger_ms / 1000,
            on_sent=metrics.sent.inc,
            on_fsync=metrics.wal_fsync.observe,
            bootstrap=settings.kafka_bootstrap,
        )
        metrics.wal_max_bytes.set(settings.clicks_wal_max_bytes)
        metrics.track_wal(lambda: wal.size_bytes, lambda: wal.segments, lambda: shipper.unsent)
        shipping = [
            asyncio.create_task(shipper.flush_forever(), name="click-wal-flusher"),
            asyncio.create_task(shipper.ship_forever(), name="click-shipper"),
        ]
        tasks = [
            asyncio.create_task(restorer.start(), name="links-restore"),
            asyncio.create_task(cache.follow_changes(), name="link-changes"),
            asyncio.create_task(clock_offset.run(redis), name="clock-offset"),
        ]
        if directory is None:
            tasks.append(asyncio.create_task(follow_campaigns(view, settings.kafka_bootstrap)))
        app.state.shipper = shipper
        app.state.clicks = app.redirect_context = ClickContext(
            cache=cache,
            shipper=shipper,
            metrics=metrics,
            bots=BotDetector(),
            quality=ClickQuality(
                visitor_window_ms=settings.clicks_duplicate_window_s * 1000,
                ip_window=ip_windows,
                rate_per_minute=settings.clicks_ip_rate_per_minute,
                max_entries=settings.clicks_quality_max_entries,
            ),
            ip_hasher=hasher,
            proxies=proxies,
            clock=clock,
            seal=seal,
        )
        gc.collect()
        gc.freeze()  # what start-up built stays out of every later collection
        try:
            yield
        finally:
            app.state.clicks = app.redirect_context = None
            await shipper.close(shipping)
            await cancel_and_wait(tasks)
            await restorer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), settings.clicks_send_timeout_ms / 1000 + 5)
            wal.close()
            await redis.aclose()  # type: ignore[attr-defined]

    # No app-wide refuse_repeated_names: it would run before the admin token check. The
    # route with a JSON body names it after that check (afflux.shared.io.http.bodies).
    app = ClicksApp(title="afflux clicks", lifespan=lifespan)
    app.state.settings = settings
    app.state.clock = clock
    app.state.directory = view
    app.state.metrics = metrics
    app.state.redis = redis
    app.state.store = store
    app.state.cache = cache
    app.state.restorer = restorer
    app.state.clicks = None
    app.state.shipper = None
    install_problem_handlers(app)
    app.include_router(links.router)
    app.include_router(health_router(CHECKS))
    app.include_router(metrics_router(metrics.registry))
    install_api_docs(app, paths=redirect_paths())
    return app
