"""A valid event read on a topic it does not travel on is dead-lettered (``wrong_topic``),
never used: an order written to ``clicks`` was attributed and paid as if the orders
service had accepted it, and a click written to ``orders`` counted as a click."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from coupon_campaign import TS, VERSION
from recording_runtime import recording_runtime

from afflux.attribution.stage import Owned, Record
from afflux.shared.events import (
    ClickRecorded,
    ConversionAttributed,
    DeadLetter,
    Envelope,
    OrderPlaced,
    OrderRefunded,
    OrderUnattributed,
)
from afflux.shared.topics import CLICKS, CONVERSIONS, DLQ, ORDERS, REFUNDS, UNMATCHED
from afflux.shared.wire import decode_record, encode

pytestmark = pytest.mark.unit


ORDER = OrderPlaced(
    event_id="ev-order",
    occurred_at=TS,
    order_id="order-1",
    campaign_id="camp",
    merchant_id="merchant",
    currency="EUR",
    amount_minor=1_000,
    coupon_code="ANA",
)
CLICK = ClickRecorded(
    event_id="ev-click",
    occurred_at=TS - 1,
    click_id="click-1",
    link_code="lnk",
    affiliate_id="bob",
    campaign_id="camp",
    visitor_id="v-1",
)
REFUND = OrderRefunded(
    event_id="ev-refund",
    occurred_at=TS + 1,
    refund_id="refund-1",
    order_id="order-1",
    campaign_id="camp",
    amount_minor=1_000,
    currency="EUR",
)


@dataclass(frozen=True)
class Case:
    name: str
    topic: str
    event: Envelope
    stage: str  # which stage reads the topic


CASES = [
    Case("an order on clicks", CLICKS.name, ORDER, "join"),
    Case("a click on orders", ORDERS.name, CLICK, "join"),
    Case("a refund on conversions", CONVERSIONS.name, REFUND, "refunds"),
    Case("an order on refunds", REFUNDS.name, ORDER, "refunds"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_an_event_on_a_topic_it_does_not_travel_on_is_dead_lettered_and_not_used(
    case: Case,
) -> None:
    sent: list[tuple[str, bytes | None]] = []
    rt = recording_runtime(sent, VERSION, "wrong-topic")
    stage = rt.join if case.stage == "join" else rt.refunds

    async def run() -> None:
        stage.owned[0] = Owned(stage.new_state())
        await stage.handle(Record(case.topic, 0, 0, b"k", encode(case.event), TS + 2))
        await stage.tick()

    asyncio.run(run())
    wanted = (DLQ.name, CONVERSIONS.name, UNMATCHED.name)
    events = [(t, e) for t, v in sent if t in wanted for e in decode_record(v)]
    [letter] = [e for t, e in events if t == DLQ.name]
    assert isinstance(letter, DeadLetter)
    name = type(case.event).__name__
    assert letter.reason == f"wrong_topic: {name} does not travel on {case.topic!r}"
    assert [e for _, e in events if isinstance(e, ConversionAttributed | OrderUnattributed)] == []


def test_the_same_order_on_its_own_topic_is_attributed() -> None:
    sent: list[tuple[str, bytes | None]] = []
    rt = recording_runtime(sent, VERSION, "right-topic")

    async def run() -> None:
        rt.join.owned[0] = Owned(rt.join.new_state())
        await rt.join.handle(Record(ORDERS.name, 0, 0, b"k", encode(ORDER), TS + 2))

    asyncio.run(run())
    decided = [e for t, v in sent if t == CONVERSIONS.name for e in decode_record(v)]
    assert [
        (c.order_id, c.affiliate_id) for c in decided if isinstance(c, ConversionAttributed)
    ] == [("order-1", "ana")]
