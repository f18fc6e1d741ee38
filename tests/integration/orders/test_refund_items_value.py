"""A refund naming its order's items is refused before anything is produced when they do
not make up what it refunds: the ledger would take back the whole items' commission for
a small refund, or keep the commission of the items a whole refund leaves unnamed."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from afflux.orders.claims import MAX_REFUNDS_PER_ORDER

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


def _order(campaign_id: str, items: list[dict[str, Any]], amount: int) -> dict[str, Any]:
    return {
        "order_id": f"o-{uuid.uuid4().hex[:12]}",
        "campaign_id": campaign_id,
        "occurred_at": int(time.time() * 1000),
        "amount_minor": amount,
        "currency": "EUR",
        "visitor_id": f"v-{uuid.uuid4().hex[:12]}",
        "items": items,
    }


def _refund(order: dict[str, Any], amount: int, *items: dict[str, Any]) -> dict[str, Any]:
    return {
        "refund_id": f"r-{uuid.uuid4().hex[:12]}",
        "order_id": order["order_id"],
        "campaign_id": order["campaign_id"],
        "occurred_at": int(time.time() * 1000),
        "amount_minor": amount,
        "currency": "EUR",
        "items": list(items),
    }


async def test_an_item_refunded_whole_cannot_be_refunded_again_though_the_order_has_room(
    api: Any, campaigns: Any, topics: Any
) -> None:
    # The ledger caps an item's refunds at the item: a second refund of the shoe would
    # take no commission back for the 2000 refunded.
    order = _order(
        campaigns.shop.campaign_id,
        [
            {"sku": "shoe", "quantity": 1, "price_minor": 2000},
            {"sku": "bag", "quantity": 1, "price_minor": 2000},
        ],
        4000,
    )
    assert (await api.post("/v1/orders", order)).status_code == 202
    before = await topics.settle()

    first = await api.post("/v1/refunds", _refund(order, 2000, {"sku": "shoe", "quantity": 1}))
    again = await api.post("/v1/refunds", _refund(order, 2000, {"sku": "shoe", "quantity": 1}))
    by_amount = await api.post("/v1/refunds", _refund(order, 1, {"sku": "shoe", "amount_minor": 1}))
    bag = await api.post("/v1/refunds", _refund(order, 2000, {"sku": "bag", "quantity": 1}))

    assert first.status_code == 202, first.text
    for refused in (again, by_amount):
        assert refused.status_code == 422, refused.text
        detail = refused.json()["detail"][0]
        assert detail["field"] == "items"
        assert "sku shoe: earlier refunds of this order took 2000 of its 2000" in detail["reason"]
        assert "0 left to refund" in detail["reason"]
    assert bag.status_code == 202, bag.text
    await topics.settle()
    produced = [
        e["amount_minor"]
        for e in topics.since(before, "refunds")
        if e["order_id"] == order["order_id"]
    ]
    assert produced == [2000, 2000]


async def test_each_unit_refunded_one_by_one_fits_and_one_more_is_refused(
    api: Any, campaigns: Any
) -> None:
    # three units of 1000 in all: a unit is 333.33, so each refund by quantity takes 333
    # of the item and the three fit; a fourth would be a unit the order never had
    order = _order(
        campaigns.shop.campaign_id,
        [
            {"sku": "sock", "quantity": 3, "price_minor": 333},
            {"sku": "hat", "quantity": 1, "price_minor": 5001},
        ],
        3 * 333 + 5001,
    )
    assert (await api.post("/v1/orders", order)).status_code == 202

    answers = [
        await api.post("/v1/refunds", _refund(order, 333, {"sku": "sock", "quantity": 1}))
        for _ in range(4)
    ]

    assert [a.status_code for a in answers] == [202, 202, 202, 422], [a.text for a in answers]
    assert "sku sock: earlier refunds of this order took 999 of its 999" in answers[3].text


async def test_a_refund_sent_again_is_a_duplicate_and_the_items_rest_still_fits(
    api: Any, campaigns: Any
) -> None:
    # A refund named again with the same id is a duplicate, not an item refunded twice;
    # a new refund of the rest of a partly refunded item fits exactly.
    order = _order(
        campaigns.shop.campaign_id,
        [{"sku": "coat", "quantity": 2, "price_minor": 1500}],
        3000,
    )
    assert (await api.post("/v1/orders", order)).status_code == 202
    part = _refund(order, 1000, {"sku": "coat", "amount_minor": 1000})

    first = await api.post("/v1/refunds", part)
    same = await api.post("/v1/refunds", part)
    rest = await api.post(
        "/v1/refunds", _refund(order, 2000, {"sku": "coat", "amount_minor": 2000})
    )
    over = await api.post("/v1/refunds", _refund(order, 1, {"sku": "coat", "amount_minor": 1}))

    assert (first.status_code, same.status_code, same.json()["status"]) == (
        202,
        200,
        "duplicate",
    )
    assert rest.status_code == 202, rest.text
    # the order amount is used up too: the total check answers first
    assert (over.status_code, over.json()["detail"][0]["field"]) == (422, "amount_minor")


async def test_a_refund_beyond_the_most_one_order_takes_is_refused_naming_the_order(
    api: Any, campaigns: Any
) -> None:
    order = _order(campaigns.shop.campaign_id, [], 1_000_000)
    del order["items"]
    assert (await api.post("/v1/orders", order)).status_code == 202
    cent = {k: v for k, v in _refund(order, 1).items() if k != "items"}

    answers = [
        await api.post("/v1/refunds", {**cent, "refund_id": f"r-{n}-{order['order_id']}"})
        for n in range(MAX_REFUNDS_PER_ORDER + 1)
    ]

    assert {a.status_code for a in answers[:-1]} == {202}
    assert answers[-1].status_code == 422
    assert answers[-1].json()["detail"] == [
        {
            "field": "order_id",
            "reason": f"order {order['order_id']} has {MAX_REFUNDS_PER_ORDER} refunds already,"
            " the most one order takes: send what is left to refund of it as one refund",
        }
    ]


async def test_a_refund_naming_a_sku_the_order_lacks_is_refused_unless_accepted_before(
    api: Any, orders_app: Any, campaigns: Any
) -> None:
    """A typo'd sku (``bag-l``) was answered 202 and the ledger priced the refund pro rata:
    it is refused naming the item now. A refund an earlier version accepted so, sent again
    unchanged, is still the duplicate it was."""
    order = _order(
        campaigns.shop.campaign_id,
        [{"sku": "bag-1", "quantity": 1, "price_minor": 2000}],
        2000,
    )
    assert (await api.post("/v1/orders", order)).status_code == 202
    typo = _refund(order, 1000, {"sku": "bag-l", "amount_minor": 1000})
    accepted_before = _refund(order, 500, {"sku": "bag-l", "amount_minor": 500})
    claims = orders_app.state.ingestor.claims
    ids = (order["campaign_id"], order["order_id"], accepted_before["refund_id"])
    at = accepted_before["occurred_at"]
    await claims.reserve_refund(*ids, 500, at, occurred_at=at, reported_at=at)
    await claims.settle_refund(*ids, 500, done=True)

    refused = await api.post("/v1/refunds", typo)
    again = await api.post("/v1/refunds", accepted_before)

    assert refused.status_code == 422
    assert refused.json()["detail"] == [
        {"field": "items.0.sku", "reason": "the order has no sku 'bag-l' (its skus: 'bag-1')"}
    ]
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
