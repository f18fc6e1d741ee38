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


async def test_a_refund_after_early_refunds_beyond_the_order_says_nothing_is_left(
    api: Any, campaigns: Any
) -> None:
    """The order is unknown when the early refunds come, so they may ask more than it;
    the answer to the next one says none of it is left, not a negative amount."""
    order_id = f"o-{uuid.uuid4().hex[:12]}"
    now = int(time.time() * 1000)
    refund = {"order_id": order_id, "campaign_id": campaigns.shop.campaign_id}
    refund |= {"occurred_at": now, "currency": "EUR"}
    early = await api.post("/v1/refunds", {**refund, "refund_id": "r-early", "amount_minor": 1500})
    placed = await api.post(
        "/v1/orders",
        {**refund, "amount_minor": 1000, "visitor_id": f"v-{uuid.uuid4().hex[:12]}"},
    )
    later = await api.post("/v1/refunds", {**refund, "refund_id": "r-later", "amount_minor": 1})

    assert (early.status_code, placed.status_code) == (202, 202), (early.text, placed.text)
    assert later.status_code == 422, later.text
    assert later.json()["detail"][0]["reason"] == (
        "cumulative refunds would exceed the order amount: 0 left to refund"
        " (refunds accepted before the order ask 500 more than it)"
    )
