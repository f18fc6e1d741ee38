"""The clicks app: the redirect layer in front of a FastAPI app (links API, health, metrics)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.asyncio import Redis
from starlette.exceptions import HTTPException

from afflux.clicks.destinations import is_allowed
from afflux.clicks.links import Link, LinkCache, LinkStore
from afflux.clicks.links_api import Problem, allowed_domains, links_router
from afflux.clicks.metrics import ClicksMetrics
from afflux.clicks.privacy import IpHasher, ProxyTrust
from afflux.clicks.quality import BotDetector, DuplicateWindow
from afflux.clicks.redirect import ClickContext, RedirectLayer
from afflux.clicks.settings import ClicksSettings
from afflux.clicks.shipper import ClickShipper
from afflux.clicks.spool import Spool
from afflux.shared.campaign_view import CampaignDirectory, UnknownCampaign, follow_campaigns
from afflux.shared.core.clock import Clock, system_clock
from afflux.shared.kafka import new_producer
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


def spool_dir(settings: ClicksSettings) -> Any:
    suffix = f"-{settings.instance_id}" if settings.instance_id else ""
    return settings.data_dir / f"clicks-spool{suffix}"


def create_app(
    settings: ClicksSettings,
    *,
    clock: Clock = system_clock,
    directory: CampaignDirectory | None = None,
) -> FastAPI:
    """The clicks app; its lifespan connects to Redis and Kafka and follows campaigns."""
    view = directory or CampaignDirectory()
    metrics = ClicksMetrics()
    hasher = IpHasher(ip_hash_key(settings))
    proxies = ProxyTrust(settings.trusted_networks())

    def still_allowed(link: Link) -> bool:
        try:
            domains = allowed_domains(view, link.campaign_id, clock())
        except UnknownCampaign:
            return True  # validated at creation; the view may still be loading
        return is_allowed(link.destination_url, domains)

    redis = Redis.from_url(settings.redis_url)
    store = LinkStore(redis, settings.clicks_redis_prefix)
    cache = LinkCache(store, settings.clicks_link_cache_max, still_allowed)
    view.on_change(lambda _: cache.clear())  # allowed domains may have changed

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
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
        spool = Spool(spool_dir(settings))
        shipper = ClickShipper(
            producer,
            CLICKS.name,
            partitions,
            spool,
            queue_max=settings.clicks_queue_max,
            flush_interval_s=settings.clicks_spool_fsync_ms / 1000,
            retry_interval_s=settings.clicks_retry_ms / 1000,
            send_timeout_s=settings.clicks_send_timeout_ms / 1000,
            linger_s=settings.clicks_linger_ms / 1000,
            on_sent=metrics.sent.inc,
        )
        metrics.track_spool(lambda: shipper.spool_depth)
        tasks = [
            asyncio.create_task(shipper.run(), name="click-shipper"),
            asyncio.create_task(cache.follow_changes(), name="link-changes"),
        ]
        if directory is None:
            tasks.append(asyncio.create_task(follow_campaigns(view, settings.kafka_bootstrap)))
        app.state.shipper = shipper
        app.state.clicks = ClickContext(
            cache=cache,
            shipper=shipper,
            metrics=metrics,
            bots=BotDetector(),
            duplicates=DuplicateWindow(settings.clicks_duplicate_window_s * 1000),
            ip_hasher=hasher,
            proxies=proxies,
            clock=clock,
        )
        gc.collect()
        gc.freeze()  # what start-up built stays out of every later collection
        try:
            yield
        finally:
            app.state.clicks = None
            await shipper.close(tasks[0])
            for task in tasks[1:]:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), settings.clicks_send_timeout_ms / 1000 + 5)
            spool.close()
            await redis.aclose()  # type: ignore[attr-defined]

    app = FastAPI(title="afflux clicks", lifespan=lifespan)
    app.state.settings = settings
    app.state.directory = view
    app.state.metrics = metrics
    app.state.clicks = None
    app.include_router(links_router(store, cache, view, settings.clicks_public_url, clock))
    app.add_middleware(RedirectLayer, context=lambda: app.state.clicks)

    @app.exception_handler(Problem)
    async def problem(request: Request, exc: Problem) -> JSONResponse:
        headers = {"Retry-After": "1"} if exc.status == 503 else None
        if exc.status == 401:
            headers = {"WWW-Authenticate": "Bearer"}
        return JSONResponse(exc.body(), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [
            {
                "field": ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body",
                "reason": "unknown field" if err.get("type") == "extra_forbidden" else err["msg"],
            }
            for err in exc.errors()
        ]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        body = {"detail": [{"field": None, "reason": str(exc.detail)}]}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.get("/healthz")
    async def healthz(request: Request) -> JSONResponse:
        """200 once Redis and the campaign view are ready and the producer started.

        A broker lost later does not make the service unready: clicks are spooled.
        """
        shipper: ClickShipper | None = getattr(request.app.state, "shipper", None)
        ready = request.app.state.clicks is not None
        checks: dict[str, Any] = {
            "campaigns": view.ready.is_set(),
            "redis": False,
            "kafka": ("spooling" if shipper.spooling else "ok") if ready and shipper else False,
        }
        with contextlib.suppress(Exception):
            checks["redis"] = bool(await asyncio.wait_for(redis.ping(), 1))
        ok = checks["campaigns"] and checks["redis"] and bool(checks["kafka"])
        return JSONResponse(
            {"status": "ok" if ok else "starting", "checks": checks},
            status_code=200 if ok else 503,
        )

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
