"""An order id or a refund id sent again with another amount is a 409, not a "duplicate":
the first body is the one produced and paid, so a 200 would tell the merchant a change
or a second refund landed when nothing was produced."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest

pytestmark = pytest.mark.integration


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def new_order(campaigns: Any) -> dict[str, Any]:
    """A fresh order of 10.00 EUR for the shop campaign."""
    return {
        "order_id": new_id("o"),
        "campaign_id": campaigns.shop.campaign_id,
        "occurred_at": int(time.time() * 1000),
        "amount_minor": 1000,
        "currency": "EUR",
        "visitor_id": new_id("v"),
    }


async def test_an_order_id_sent_again_with_another_amount_is_a_conflict_naming_it(
    api: Any, campaigns: Any, topics: Any
) -> None:
    before = await topics.settle()
    order = new_order(campaigns)
    # the same id, concurrently with five amounts: one is accepted, the others refused
    racing = await asyncio.gather(
        *(api.post("/v1/orders", order | {"amount_minor": 1000 * n}) for n in range(1, 6))
    )
    accepted = [r for r in racing if r.status_code == 202]
    again = await api.post("/v1/orders", order | {"amount_minor": 1000 * 6})

    assert len(accepted) == 1, [r.text for r in racing]
    assert sorted(r.status_code for r in racing) == [202, 409, 409, 409, 409]
    assert (again.status_code, again.json()["detail"][0]["field"]) == (409, "amount_minor")
    await topics.settle()
    produced = [e for e in topics.since(before, "orders") if e["order_id"] == order["order_id"]]
    assert len(produced) == 1
    kept = produced[0]["amount_minor"]
    same = await api.post("/v1/orders", order | {"amount_minor": kept})
    assert (same.status_code, same.json()["status"]) == (200, "duplicate")


async def test_a_refund_id_sent_again_with_another_amount_is_a_conflict_naming_it(
    api: Any, campaigns: Any
) -> None:
    order = new_order(campaigns)
    assert (await api.post("/v1/orders", order)).status_code == 202
    refund = {
        "refund_id": new_id("r"),
        "order_id": order["order_id"],
        "campaign_id": order["campaign_id"],
        "occurred_at": int(time.time() * 1000),
        "amount_minor": 300,
        "currency": "EUR",
    }

    first = await api.post("/v1/refunds", refund)
    second = await api.post("/v1/refunds", refund | {"amount_minor": 200})
    repeat = await api.post("/v1/refunds", refund)

    assert first.status_code == 202, first.text
    assert (second.status_code, second.json()["detail"][0]["field"]) == (409, "amount_minor")
    assert "300" in second.json()["detail"][0]["reason"]
    assert (repeat.status_code, repeat.json()["status"]) == (200, "duplicate")
