"""What ``/healthz`` of the orders service checks: campaign terms, Redis, the producer."""

from __future__ import annotations

from fastapi import Request

from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.http.health import HealthCheck


async def campaigns_loaded(request: Request) -> str | None:
    directory: CampaignDirectory = request.app.state.directory
    return None if directory.ready.is_set() else "campaign terms not loaded yet"


async def redis_answers(request: Request) -> str | None:
    if getattr(request.app.state, "ingestor", None) is None:
        return "not connected yet"
    return None if await request.app.state.redis.ping() else "no answer to PING"


async def producer_started(request: Request) -> str | None:
    started = getattr(request.app.state, "ingestor", None) is not None
    return None if started else "producer not started yet"


CHECKS: list[tuple[str, HealthCheck]] = [
    ("campaigns", campaigns_loaded),
    ("redis", redis_answers),
    ("kafka", producer_started),
]
