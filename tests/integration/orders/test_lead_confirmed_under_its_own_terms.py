"""A lead is confirmed under the terms it was placed under: once a later version stopped
requiring confirmation, a lead placed under the earlier one (which payouts pays only
when confirmed) could no longer be confirmed (409), so it was never paid."""

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


async def test_a_lead_placed_while_confirmation_was_required_can_still_be_confirmed(
    api: Any, orders_app: Any, infra: Any
) -> None:
    now = int(time.time() * 1000)
    campaign = f"orders-leads-v2-{uuid.uuid4().hex[:8]}"

    def terms(required: bool) -> CampaignTerms:
        return CampaignTerms.model_validate(
            {
                "campaign_id": campaign,
                "merchant_id": "merchant-a",
                "currency": "EUR",
                "plan": {"lead_minor": 500},
                "lead_confirmation_required": required,
            }
        )

    await publish_terms(infra.kafka_bootstrap, [(terms(True), 0)])
    # A later version from an hour ago: built on purpose, as no admin path may publish it.
    await publish_terms(infra.kafka_bootstrap, [(terms(False), now - HOUR_MS)], forward_only=False)
    directory = orders_app.state.directory
    for _ in range(200):
        if campaign in directory and len(directory.versions(campaign)) == 2:
            break
        await asyncio.sleep(0.05)
    order_id = f"lead-{uuid.uuid4().hex[:12]}"
    lead = {
        "order_id": order_id,
        "campaign_id": campaign,
        "occurred_at": now - 2 * HOUR_MS,  # under the version that requires confirmation
        "kind": "lead",
        "visitor_id": f"v-{uuid.uuid4().hex[:12]}",
    }
    assert (await api.post("/v1/orders", lead)).status_code == 202

    confirmed = await api.post(f"/v1/leads/{order_id}/confirm", {"campaign_id": campaign})

    assert confirmed.status_code == 202, confirmed.text
