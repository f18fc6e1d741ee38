"""What ``/healthz`` of the clicks service checks: the campaign view, Redis, every link
(restored from the ``links`` topic when Redis lost them) and the click shipper.

A broker lost after start-up does not make the service unready: clicks wait in the
click log, and the ``kafka`` check says ``"retrying"`` instead of ``"ok"``. A click log
that refuses writes (a read-only or failing disk) does not either, as the next click
is what finds the disk back: ``click_log`` says ``"failing: clicks are not recorded"``
(alert ``AffluxClicksUnrecorded``).
"""

from __future__ import annotations

from fastapi import Request
from redis.asyncio import Redis

from afflux.clicks.link_log import LinkRestorer
from afflux.clicks.shipper import ClickShipper
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.http.health import HealthCheck, Passing


async def campaigns_loaded(request: Request) -> str | None:
    directory: CampaignDirectory = request.app.state.directory
    return None if directory.ready.is_set() else "campaign terms not loaded yet"


async def redis_answers(request: Request) -> str | None:
    redis: Redis[bytes] = request.app.state.redis
    return None if await redis.ping() else "no answer to PING"


async def links_restored(request: Request) -> str | None:
    restorer: LinkRestorer = request.app.state.restorer
    return None if restorer.ready.is_set() else "links being restored from the links topic"


async def shipper_started(request: Request) -> str | Passing | None:
    shipper: ClickShipper | None = getattr(request.app.state, "shipper", None)
    if request.app.state.clicks is None or shipper is None:
        return "producer not started yet"
    return Passing("ok" if shipper.broker_ok else "retrying")


async def click_log_writable(request: Request) -> str | Passing | None:
    shipper: ClickShipper | None = getattr(request.app.state, "shipper", None)
    if shipper is None:
        return "producer not started yet"
    return Passing("ok" if shipper.log_ok else "failing: clicks are not recorded")


CHECKS: list[tuple[str, HealthCheck]] = [
    ("campaigns", campaigns_loaded),
    ("redis", redis_answers),
    ("links", links_restored),
    ("kafka", shipper_started),
    ("click_log", click_log_writable),
]
