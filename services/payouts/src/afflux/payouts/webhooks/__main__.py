"""``python -m afflux.payouts.webhooks``: the webhook sender alone, without the ledger
or the HTTP API (for running it apart from the payouts service)."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import cast

from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from afflux.payouts.app import _follow_forever
from afflux.payouts.settings import PayoutsSettings
from afflux.payouts.webhooks.metrics import WebhookMetrics
from afflux.payouts.webhooks.sender import start_sender, webhook_store
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.clock_source import system_clock
from afflux.shared.io.redis_client import connect_ready


async def _run(settings: PayoutsSettings) -> None:
    redis = cast("Redis[bytes]", await connect_ready(settings.redis_url))
    directory = CampaignDirectory()
    follower = asyncio.create_task(_follow_forever(directory, settings.kafka_bootstrap))
    metrics = WebhookMetrics(CollectorRegistry())
    tasks = start_sender(
        settings, webhook_store(redis, settings, metrics), directory, metrics, system_clock
    )
    try:
        # The first task to fail ends the process; a supervisor restarts it.
        done, _ = await asyncio.wait([follower, *tasks], return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()
    finally:
        for task in [follower, *tasks]:
            task.cancel()
        await redis.aclose()  # type: ignore[attr-defined]


def main() -> int:
    settings = PayoutsSettings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(_run(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
