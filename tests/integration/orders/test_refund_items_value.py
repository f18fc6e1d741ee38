"""A refund naming its order's items is refused before anything is produced when they do
not make up what it refunds: the ledger would take back the whole items' commission for
a small refund, or keep the commission of the items a whole refund leaves unnamed."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

pytestmark = pytest.mark.integration


async def test_a_goodwill_refund_naming_a_whole_item_by_quantity_is_refused(
    api: Any, campaigns: Any, topics: Any
) -> None:
    order_id = f"o-{uuid.uuid4().hex[:12]}"
    order = {
        "order_id": order_id,
        "campaign_id": campaigns.shop.campaign_id,
        "occurred_at": int(time.time() * 1000),
        "amount_minor": 3000,
        "currency": "EUR",
        "visitor_id": f"v-{uuid.uuid4().hex[:12]}",
        "items": [
            {"sku": "shoe", "quantity": 1, "price_minor": 2000},
            {"sku": "card", "quantity": 1, "price_minor": 1000},
        ],
    }
    assert (await api.post("/v1/orders", order)).status_code == 202

    def refund(amount: int, item: dict[str, Any]) -> dict[str, Any]:
        return {
            "refund_id": f"r-{uuid.uuid4().hex[:12]}",
            "order_id": order_id,
            "campaign_id": order["campaign_id"],
            "occurred_at": int(time.time() * 1000),
            "amount_minor": amount,
            "currency": "EUR",
            "items": [item],
        }

    before = await topics.settle()
    goodwill = await api.post("/v1/refunds", refund(500, {"sku": "shoe", "quantity": 1}))
    whole = await api.post("/v1/refunds", refund(3000, {"sku": "shoe", "quantity": 1}))
    by_amount = await api.post("/v1/refunds", refund(500, {"sku": "shoe", "amount_minor": 500}))

    assert (goodwill.status_code, goodwill.json()["detail"][0]["field"]) == (422, "items")
    assert (whole.status_code, whole.json()["detail"][0]["field"]) == (422, "items")
    assert by_amount.status_code == 202, by_amount.text
    await topics.settle()
    produced = [e for e in topics.since(before, "refunds") if e["order_id"] == order_id]
    assert [e["items"] for e in produced] == [
        [{"sku": "shoe", "quantity": None, "amount_minor": 500}]
    ]
