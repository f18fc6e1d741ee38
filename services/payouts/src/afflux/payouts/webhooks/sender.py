"""The webhook sender: its intake (topics into scheduled deliveries) and its delivery
loop, sharing one wake-up event. It runs in the payouts process (``create_app``) or
alone (``python -m afflux.payouts.webhooks``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from redis.asyncio import Redis

from afflux.payouts.settings import PayoutsSettings
from afflux.payouts.webhooks.delivery import Deliverer, DeliveryLimits
from afflux.payouts.webhooks.intake import Intake
from afflux.payouts.webhooks.metrics import WebhookMetrics
from afflux.payouts.webhooks.redis_store import WebhookStore
from afflux.shared.io.campaign_view import CampaignDirectory


def webhook_store(
    redis: Redis[bytes], settings: PayoutsSettings, metrics: WebhookMetrics | None = None
) -> WebhookStore:
    return WebhookStore(
        redis,
        max_endpoints_per_owner=settings.webhooks_max_endpoints_per_owner,
        max_queue_per_endpoint=settings.webhooks_max_queue_per_endpoint,
        max_dead_per_endpoint=settings.webhooks_max_dead_per_endpoint,
        metrics=metrics,
    )


def delivery_limits(settings: PayoutsSettings) -> DeliveryLimits:
    return DeliveryLimits(
        max_attempts=settings.webhooks_max_attempts,
        retry_base_s=settings.webhooks_retry_base_s,
        retry_cap_s=settings.webhooks_retry_cap_s,
        timeout_s=settings.webhooks_timeout_s,
        max_body_bytes=settings.webhooks_max_body_bytes,
        max_response_bytes=settings.webhooks_max_response_bytes,
        concurrency=settings.webhooks_concurrency,
        allow_private=settings.private_addresses_allowed(settings.env),
    )


def start_sender(
    settings: PayoutsSettings,
    store: WebhookStore,
    directory: CampaignDirectory,
    metrics: WebhookMetrics,
    clock: Callable[[], int],
) -> list[asyncio.Task[None]]:
    """The intake and delivery tasks; the caller cancels them."""
    wake = asyncio.Event()
    intake = Intake(
        bootstrap=settings.kafka_bootstrap,
        group_id=settings.webhooks_group_id,
        store=store,
        directory=directory,
        metrics=metrics,
        clock=clock,
        wake=wake,
        max_body_bytes=settings.webhooks_max_body_bytes,
    )
    deliverer = Deliverer(
        store=store, metrics=metrics, limits=delivery_limits(settings), clock=clock, wake=wake
    )
    return [asyncio.create_task(intake.run()), asyncio.create_task(deliverer.run())]
