"""The items of a batch that name one order are taken one after the other, in the
batch's order, on the real broker and Redis. Taken all at once, a refund naming items
(one Redis round trip more before it claims its order's refund room) lost that room to
a later refund of the order without items, every time: the batch's first refund was
refused for "500 left to refund", a room only the later one had taken."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from .conftest import ADMIN_TOKEN

pytestmark = pytest.mark.integration

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def refund(
    order: dict[str, Any], amount: int, at: int, items: list[dict[str, Any]]
) -> dict[str, Any]:
    body = {
        "refund_id": new_id("r"),
        "order_id": order["order_id"],
        "campaign_id": order["campaign_id"],
        "occurred_at": at,
        "amount_minor": amount,
        "currency": "EUR",
    }
    return body | ({"items": items} if items else {})


async def test_a_refund_naming_an_item_keeps_its_place_before_a_later_whole_refund(
    api: Any, client: httpx.AsyncClient, campaigns: Any
) -> None:
    for _ in range(3):  # the race lost every time: once would do, three leave no doubt
        now = int(time.time() * 1000)
        order = {
            "order_id": new_id("o"),
            "campaign_id": campaigns.shop.campaign_id,
            "occurred_at": now - 60_000,
            "amount_minor": 10_000,
            "currency": "EUR",
            "visitor_id": new_id("v"),
            "items": [
                {"sku": "coat", "quantity": 1, "price_minor": 9_000},
                {"sku": "card", "quantity": 1, "price_minor": 1_000},
            ],
        }
        assert (await api.post("/v1/orders", order)).status_code == 202

        card = refund(order, 1_000, now - 2_000, [{"sku": "card", "quantity": 1}])
        rest = refund(order, 9_500, now - 1_000, [])
        answer = await client.post(
            "/v1/admin/backfill/refunds", json={"refunds": [card, rest]}, headers=ADMIN
        )

        assert answer.status_code == 200, answer.text
        first, second = answer.json()["results"]
        assert (first["index"], first["status"]) == (0, "accepted"), first
        assert (second["index"], second["status"]) == (1, "rejected"), second
        assert "9000 left to refund" in str(second), second


async def test_of_two_copies_of_an_order_in_one_batch_the_first_is_taken(
    client: httpx.AsyncClient, campaigns: Any
) -> None:
    order_id = new_id("o")
    now = int(time.time() * 1000)

    def copy(amount: int) -> dict[str, Any]:
        return {
            "order_id": order_id,
            "campaign_id": campaigns.shop.campaign_id,
            "occurred_at": now - 60_000,
            "amount_minor": amount,
            "currency": "EUR",
            "visitor_id": "v-one",
        }

    answer = await client.post(
        "/v1/admin/backfill/orders", json={"orders": [copy(1_000), copy(5_000)]}, headers=ADMIN
    )

    assert answer.status_code == 200, answer.text
    first, second = answer.json()["results"]
    assert first["status"] == "accepted", first
    assert second["status"] == "rejected", second
    assert "amount_minor" in str(second), second
