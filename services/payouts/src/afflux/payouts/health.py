"""What ``/healthz`` of the payouts service checks: campaign terms, the ledger consumer,
Redis, and the ledger itself (no partition diverged from its log, no rebuild under way).

A 503 because of the ledger says which (``status`` ``diverged`` or ``rebuilding``),
lists the problems and diverged partitions, and points at the recovery
(docs/payouts.md, "When the ledger says it diverged").
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import Request

from afflux.payouts.consumer import LedgerConsumer
from afflux.payouts.divergence import RECOVERY
from afflux.payouts.store import LedgerStore
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.http.health import HealthCheck


def _consumer(request: Request) -> LedgerConsumer | None:
    consumer: LedgerConsumer | None = getattr(request.app.state, "consumer", None)
    return consumer


async def campaigns_loaded(request: Request) -> str | None:
    directory: CampaignDirectory = request.app.state.directory
    return None if directory.ready.is_set() else "campaign terms not loaded yet"


async def consumer_subscribed(request: Request) -> str | None:
    consumer = _consumer(request)
    return None if consumer is not None and consumer.ready.is_set() else "not subscribed yet"


async def redis_answers(request: Request) -> str | None:
    store: LedgerStore | None = getattr(request.app.state, "store", None)
    if store is None:
        return "not connected yet"
    return None if await store.redis.ping() else "no answer to PING"


async def ledger_current(request: Request) -> str | None:
    consumer = _consumer(request)
    problems = consumer.health() if consumer is not None else []
    return "; ".join(problems) or None


async def ledger_detail(request: Request) -> Mapping[str, object]:
    """What a 503 adds when the ledger diverged or is being rebuilt."""
    consumer = _consumer(request)
    if consumer is None:
        return {}
    detail: dict[str, object] = {}
    if consumer.diverged:
        detail["status"] = "diverged"
    elif consumer.halted:
        detail["status"] = "rebuilding"
    problems = consumer.health()
    if problems:
        detail["problems"] = problems
        detail["diverged"] = [d.as_json() for d in consumer.diverged.values()]
        detail["recovery"] = f"see docs/payouts.md: `{RECOVERY}`"
    return detail


CHECKS: list[tuple[str, HealthCheck]] = [
    ("campaigns", campaigns_loaded),
    ("consumer", consumer_subscribed),
    ("redis", redis_answers),
    ("ledger", ledger_current),
]
