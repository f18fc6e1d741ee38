"""A worker runtime whose transport records what it sends instead of producing it, over
one campaign's terms: the guards' tests drive records through it without a broker."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from afflux.attribution.metrics import AttributionMetrics
from afflux.attribution.runtime import Runtime
from afflux.attribution.stage import Transport
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import CampaignTermsPublished
from afflux.shared.io.campaign_view import CampaignDirectory

Sent = list[tuple[str, bytes | None]]  # (topic, value) in the order sent


def recording_runtime(
    sent: Sent,
    version: TermsVersion,
    group: str,
    directory: CampaignDirectory | None = None,
    clock: Callable[[], int] | None = None,
    partitions: int | None = None,
    **runtime_args: Any,
) -> Runtime:
    """``partitions``: every topic's partition count as the broker would tell it (None:
    unknown); ``runtime_args``: further ``Runtime`` arguments (``backfill_limit_days``)."""

    async def send(topic: str, key: bytes | None, value: bytes | None, p: int | None) -> Any:
        sent.append((topic, value))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    directory = directory or CampaignDirectory()
    campaign = version.terms.campaign_id
    directory.apply(
        CampaignTermsPublished(
            event_id="terms", occurred_at=0, campaign_id=campaign, versions=(version,)
        )
    )
    return Runtime(
        transport=Transport(send, partition_count=lambda topic: partitions),
        bootstrap="127.0.0.1:1",
        group=group,
        directory=directory,
        metrics=AttributionMetrics(),
        refund_wait_ms=0,
        order_retention_ms=86_400_000,
        **({"clock": clock} if clock is not None else {}),
        **runtime_args,
    )


def ten_percent_sale(campaign: str = "camp") -> TermsVersion:
    """Version 1 of a campaign paying 10 % a sale: 30-day window, 1 s grace."""
    terms = CampaignTerms.model_validate(
        {
            "campaign_id": campaign,
            "merchant_id": "merchant",
            "currency": "EUR",
            "cookie_window_days": 30,
            "grace_seconds": 1,
            "plan": {"sale": {"rate": {"percent": "10"}}},
        }
    )
    return TermsVersion(version=1, effective_from=0, published_at=0, terms=terms)
