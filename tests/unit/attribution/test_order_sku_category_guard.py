"""An order on the topic listing one sku under two categories is taken by the attribution
worker and the what-if decoder alike (the orders service refuses it at entry, 422): one
an earlier version had taken, still on the topic at an upgrade, was dead-lettered and
its commission lost. The worker's own pending orders, read back from its state, load."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import orjson
import pytest
from coupon_campaign import TS, VERSION
from recording_runtime import recording_runtime

from afflux.attribution.join import decode_state
from afflux.attribution.stage import Owned, Record
from afflux.shared.core.whatif.log import CampaignLog
from afflux.shared.events import ConversionAttributed
from afflux.shared.topics import CONVERSIONS, DLQ, ORDERS
from afflux.shared.whatif_decode import LogReader
from afflux.shared.wire import decode_record

pytestmark = pytest.mark.unit


def order(second_category: str) -> dict[str, Any]:
    return {
        "type": "OrderPlaced",
        "event_id": f"ev-{second_category}",
        "occurred_at": TS,
        "order_id": f"order-{second_category}",
        "campaign_id": "camp",
        "merchant_id": "merchant",
        "currency": "EUR",
        "amount_minor": 10_100,
        "coupon_code": "ANA",
        "items": [
            {"sku": "X", "price_minor": 10_000, "category": "shoes"},
            {"sku": "X", "price_minor": 100, "category": second_category},
        ],
    }


CATEGORIES = [
    pytest.param("gift_card", id="the same sku as a gift card"),
    pytest.param("shoes", id="the same sku twice as shoes"),
]


@pytest.mark.parametrize("second_category", CATEGORIES)
def test_an_order_listing_a_sku_under_two_categories_is_converted(second_category: str) -> None:
    sent: list[tuple[str, bytes | None]] = []
    rt = recording_runtime(sent, VERSION, "sku-category-guard")
    value = orjson.dumps(order(second_category))

    async def run() -> None:
        rt.join.owned[0] = Owned(rt.join.new_state())
        await rt.join.handle(Record(ORDERS.name, 0, 0, b"k", value, TS))

    asyncio.run(run())
    events = [
        (t, e) for t, v in sent if t in (DLQ.name, CONVERSIONS.name) for e in decode_record(v)
    ]
    letters = [e for t, e in events if t == DLQ.name]
    conversions = [e for _, e in events if isinstance(e, ConversionAttributed)]
    assert letters == []
    [conversion] = conversions
    assert [i.category for i in conversion.items] == ["shoes", second_category]


@pytest.mark.parametrize("second_category", CATEGORIES)
def test_the_whatif_decoder_takes_the_same_orders(second_category: str) -> None:
    reader = LogReader(CampaignLog("camp"))
    reader.record(orjson.dumps(order(second_category)))
    assert len(reader.log.orders) == 1
    assert reader.skipped == 0


def test_a_pending_order_taken_before_the_rule_still_loads_from_the_workers_state() -> None:
    state = decode_state(json.dumps({"p": [[order("gift_card"), TS]]}).encode())
    [(placed, arrived)] = state.pending.values()
    assert ([i.category for i in placed.items], arrived) == (["shoes", "gift_card"], TS)
