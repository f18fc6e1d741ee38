"""A refund accepted before its order counts against the order's amount once the order
arrives: it was forgotten, so refunds of twice the order were each answered 202."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

pytestmark = pytest.mark.integration


async def test_a_refund_sent_before_its_order_counts_once_the_order_is_accepted(
    api: Any, campaigns: Any
) -> None:
    order = {
        "order_id": f"o-{uuid.uuid4().hex[:12]}",
        "campaign_id": campaigns.shop.campaign_id,
        "occurred_at": int(time.time() * 1000),
        "amount_minor": 1000,
        "currency": "EUR",
        "visitor_id": f"v-{uuid.uuid4().hex[:12]}",
    }

    def refund(amount: int) -> dict[str, Any]:
        return {
            "refund_id": f"r-{uuid.uuid4().hex[:12]}",
            "order_id": order["order_id"],
            "campaign_id": order["campaign_id"],
            "occurred_at": int(time.time() * 1000),
            "amount_minor": amount,
            "currency": "EUR",
        }

    early = await api.post("/v1/refunds", refund(800))  # the order is not known yet
    placed = await api.post("/v1/orders", order)
    beyond = await api.post("/v1/refunds", refund(800))
    rest = await api.post("/v1/refunds", refund(200))

    assert (early.status_code, placed.status_code) == (202, 202), (early.text, placed.text)
    assert (beyond.status_code, beyond.json()["detail"][0]["field"]) == (422, "amount_minor")
    assert "200 left to refund" in beyond.json()["detail"][0]["reason"]
    assert rest.status_code == 202, rest.text
