"""An order listing one sku under two categories is refused at entry, naming the later
item's category, and nothing is produced: rates and refunds pool an order's items by sku,
so a refund of the gift card listed beside the shoes of the same sku took back commission
at a blended rate. The same sku twice in one category is taken."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

pytestmark = pytest.mark.integration

REASON = (
    "sku 'X' is of category 'shoes' in items.0: an order lists each sku under one category"
    " (per-product rates and refunds go by sku)"
)


def order(campaigns: Any, second_category: str) -> dict[str, Any]:
    return {
        "order_id": f"o-{uuid.uuid4().hex[:12]}",
        "campaign_id": campaigns.shop.campaign_id,
        "occurred_at": int(time.time() * 1000),
        "amount_minor": 10_100,
        "currency": "EUR",
        "visitor_id": f"v-{uuid.uuid4().hex[:12]}",
        "items": [
            {"sku": "X", "quantity": 1, "price_minor": 10_000, "category": "shoes"},
            {"sku": "X", "quantity": 1, "price_minor": 100, "category": second_category},
        ],
    }


async def test_an_order_listing_a_sku_under_two_categories_is_refused(
    api: Any, campaigns: Any, topics: Any
) -> None:
    before = await topics.settle()

    mixed = await api.post("/v1/orders", order(campaigns, "gift_card"))
    same = await api.post("/v1/orders", order(campaigns, "shoes"))

    assert mixed.status_code == 422, mixed.text
    assert mixed.json()["detail"] == [{"field": "items.1.category", "reason": REASON}]
    assert same.status_code == 202, same.text
    after = await topics.settle()
    assert after.get("orders", 0) - before.get("orders", 0) == 1  # only the one category


async def test_a_batch_refuses_only_its_order_listing_a_sku_under_two_categories(
    api: Any, campaigns: Any
) -> None:
    answer = await api.post(
        "/v1/orders:batch",
        {"orders": [order(campaigns, "shoes"), order(campaigns, "gift_card")]},
    )

    assert answer.status_code == 200, answer.text
    taken, refused = answer.json()["results"]
    assert taken["status"] == "accepted"
    assert refused["status"] == "rejected"
    assert refused["error"] == {"field": "orders.1.items.1.category", "reason": REASON}
