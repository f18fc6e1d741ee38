"""A refund is bounded by the largest order any of the campaign's versions accepts: an
order placed under a version with a higher max_order_minor could not be refunded in one
piece after a later version lowered it (422), so the creator kept its commission."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest

from afflux.shared.core.terms import CampaignTerms
from afflux.shared.io.campaign_publish import publish_terms

pytestmark = pytest.mark.integration
HOUR_MS = 3_600_000


async def test_an_order_placed_under_a_higher_limit_is_refunded_in_full(
    api: Any, orders_app: Any, infra: Any
) -> None:
    now = int(time.time() * 1000)
    campaign = f"orders-limit-{uuid.uuid4().hex[:8]}"

    def terms(max_order_minor: int) -> CampaignTerms:
        return CampaignTerms.model_validate(
            {
                "campaign_id": campaign,
                "merchant_id": "merchant-a",
                "currency": "EUR",
                "max_order_minor": max_order_minor,
            }
        )

    await publish_terms(infra.kafka_bootstrap, [(terms(1_000_000), 0)])
    # A later version from an hour ago: built on purpose, as no admin path may publish it.
    await publish_terms(infra.kafka_bootstrap, [(terms(1000), now - HOUR_MS)], forward_only=False)
    directory = orders_app.state.directory
    for _ in range(200):
        if campaign in directory and len(directory.versions(campaign)) == 2:
            break
        await asyncio.sleep(0.05)
    order = {
        "order_id": f"o-{uuid.uuid4().hex[:12]}",
        "campaign_id": campaign,
        "occurred_at": now - 2 * HOUR_MS,  # under the version with the higher limit
        "amount_minor": 5000,
        "currency": "EUR",
        "visitor_id": f"v-{uuid.uuid4().hex[:12]}",
    }
    assert (await api.post("/v1/orders", order)).status_code == 202
    refund = {
        "refund_id": f"r-{uuid.uuid4().hex[:12]}",
        "order_id": order["order_id"],
        "campaign_id": campaign,
        "occurred_at": now,
        "amount_minor": 5000,
        "currency": "EUR",
    }

    refunded = await api.post("/v1/refunds", refund)
    too_large = await api.post("/v1/orders", order | {"order_id": "o-new", "occurred_at": now})

    assert refunded.status_code == 202, refunded.text
    # New orders are still held to the limit in force at their time.
    assert (too_large.status_code, too_large.json()["detail"][0]["field"]) == (422, "amount_minor")
