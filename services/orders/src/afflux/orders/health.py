"""What ``/healthz`` of the orders service checks: campaign terms, Redis, the broker.

The broker check reads the publisher's own sends first (afflux.orders.broker_watch);
only when they say nothing recent does it ask the broker for metadata, at most once
a second however often /healthz is asked, so a flood of health requests is not a
flood of broker requests.
"""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaProducer
from fastapi import Request
from prometheus_client import Gauge

from afflux.orders.broker_watch import SendWatch, verdict
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.http.health import HealthCheck


async def campaigns_loaded(request: Request) -> str | None:
    directory: CampaignDirectory = request.app.state.directory
    return None if directory.ready.is_set() else "campaign terms not loaded yet"


async def redis_answers(request: Request) -> str | None:
    if getattr(request.app.state, "ingestor", None) is None:
        return "not connected yet"
    return None if await request.app.state.redis.ping() else "no answer to PING"


PROBE_TIMEOUT_S = 0.8
PROBE_REUSED_S = 1.0


class BrokerProbe:
    """A metadata request to the broker, its answer shared for ``PROBE_REUSED_S``."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer
        self._asked: asyncio.Task[str | None] | None = None
        self._asked_at = 0.0

    async def answer(self) -> str | None:
        now = time.monotonic()
        if self._asked is None or (self._asked.done() and now - self._asked_at > PROBE_REUSED_S):
            self._asked_at = now
            self._asked = asyncio.create_task(self._ask())
        return await asyncio.shield(self._asked)

    async def _ask(self) -> str | None:
        try:
            await asyncio.wait_for(self._producer.client.fetch_all_metadata(), PROBE_TIMEOUT_S)
        except TimeoutError:
            return f"no answer to a metadata request within {PROBE_TIMEOUT_S} s"
        except Exception as error:  # the broker's refusal is the reason, whatever its class
            return f"a metadata request failed ({type(error).__name__})"
        return None


async def broker_acknowledges(request: Request) -> str | None:
    ingestor = getattr(request.app.state, "ingestor", None)
    if ingestor is None:
        return "producer not started yet"
    return await broker_reason(ingestor.publisher.watch, request.app.state.broker_probe)


async def broker_reason(watch: SendWatch, probe: BrokerProbe) -> str | None:
    """Why the broker is not answering this service (None: it is): what the sends say,
    else, with nothing recent to tell, a metadata request."""
    found = verdict(watch.state())
    if found != "probe":
        return found
    return await probe.answer()


BROKER_WATCH_EVERY_S = 15.0


async def watch_broker(
    watch: SendWatch, probe: BrokerProbe, up: Gauge, every_s: float = BROKER_WATCH_EVERY_S
) -> None:
    """Set ``up`` to whether the broker answers, every ``every_s``, until cancelled: with
    no merchant traffic nothing else tells that the broker is gone (the alert on 503
    answers cleared while it was still stopped)."""
    while True:
        up.set(0 if await broker_reason(watch, probe) else 1)
        await asyncio.sleep(every_s)


CHECKS: list[tuple[str, HealthCheck]] = [
    ("campaigns", campaigns_loaded),
    ("redis", redis_answers),
    ("kafka", broker_acknowledges),
]
