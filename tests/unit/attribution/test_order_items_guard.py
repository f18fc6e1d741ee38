"""An order on the topic whose items (and non-commissionable part) do not make up its
amount is dead-lettered by the attribution worker with the reason, as the orders service
refuses it at entry: it never becomes a conversion paid on items worth more than the
order (10 % of 10^12 on an order of 1,000). The batch oracle and the what-if decoder
leave out the same orders."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import orjson
import pytest
from coupon_campaign import TS, VERSION
from recording_runtime import recording_runtime

from afflux.attribution.runtime import Runtime
from afflux.attribution.stage import Owned, Record
from afflux.oracle.batch import attribute
from afflux.shared.core.whatif.log import CampaignLog
from afflux.shared.events import (
    ConversionAttributed,
    DeadLetter,
    OrderItem,
    OrderPlaced,
    OrderUnattributed,
)
from afflux.shared.topics import CONVERSIONS, DLQ, ORDERS, UNMATCHED
from afflux.shared.whatif_decode import LogReader
from afflux.shared.wire import decode_record, encode

pytestmark = pytest.mark.unit


@dataclass(frozen=True)
class Case:
    name: str
    items: tuple[tuple[int, int], ...]  # (quantity, unit price)
    non_commissionable: int
    refused: bool


AMOUNT = 1_000
CASES = [
    # Items make up the amount exactly: taken.
    Case("items equal the amount", ((2, 400), (1, 200)), 0, False),
    # Items plus shipping make up the amount: taken.
    Case("items and shipping equal the amount", ((1, 900),), 100, False),
    # One minor unit short: refused.
    Case("items one short", ((1, 999),), 0, True),
    # One minor unit over: refused.
    Case("items one over", ((1, 1_001),), 0, True),
    # A quantity that makes the items worth 10^12: refused, never paid on them.
    Case("a huge quantity", ((1_000_000, 1_000_000),), 0, True),
    # Shipping alone larger than the amount: refused.
    Case("shipping over the amount", ((1, 0),), 1_001, True),
]


def order(case: Case) -> OrderPlaced:
    return OrderPlaced(
        event_id=f"ev-{case.name}",
        occurred_at=TS,
        order_id=f"order-{case.name.replace(' ', '-')}",
        campaign_id="camp",
        merchant_id="merchant",
        currency="EUR",
        amount_minor=AMOUNT,
        coupon_code="ANA",
        items=tuple(
            OrderItem(sku=f"sku-{i}", quantity=q, price_minor=p)
            for i, (q, p) in enumerate(case.items)
        ),
        non_commissionable_minor=case.non_commissionable,
    )


def runtime(sent: list[tuple[str, bytes | None]]) -> Runtime:
    return recording_runtime(sent, VERSION, "items-guard")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_an_order_whose_items_do_not_make_up_its_amount_is_dead_lettered(case: Case) -> None:
    sent: list[tuple[str, bytes | None]] = []
    rt = runtime(sent)

    async def run() -> None:
        rt.join.owned[0] = Owned(rt.join.new_state())
        await rt.join.handle(Record(ORDERS.name, 0, 0, b"k", encode(order(case)), TS))

    asyncio.run(run())
    wanted = (DLQ.name, CONVERSIONS.name, UNMATCHED.name)
    events = [(t, e) for t, v in sent if t in wanted for e in decode_record(v)]
    letters = [e for t, e in events if t == DLQ.name]
    decided = [e for _, e in events if isinstance(e, ConversionAttributed | OrderUnattributed)]
    if case.refused:
        [letter] = letters
        assert isinstance(letter, DeadLetter)
        assert letter.reason.startswith("items sum to"), letter.reason
        assert f"amount_minor is {AMOUNT}" in letter.reason
        assert decided == []
        assert rt.join.owned[0].consumed[ORDERS.name] == 1  # refused, never retried
    else:
        assert letters == []
        [conversion] = decided
        assert isinstance(conversion, ConversionAttributed)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_the_oracle_and_the_whatif_decoder_leave_out_the_same_orders(case: Case) -> None:
    placed = order(case)
    result = attribute([placed], {"camp": (VERSION,)})
    assert (result.conversions == []) is case.refused
    reader = LogReader(CampaignLog("camp"))
    reader.record(orjson.dumps(placed.model_dump(mode="json")))
    assert (reader.log.orders == []) is case.refused
    assert reader.skipped == int(case.refused)


def test_an_order_above_max_order_minor_is_refused_by_the_worker_and_left_out_by_the_oracle() -> (
    None
):
    # Written straight to the topic (the orders service refuses it at entry): the worker
    # dead-lettered it while the oracle attributed it, so `afflux verify` differed.
    capped = VERSION.model_copy(
        update={"terms": VERSION.terms.model_copy(update={"max_order_minor": AMOUNT - 1})}
    )
    placed = order(CASES[0])
    sent: list[tuple[str, bytes | None]] = []
    rt = recording_runtime(sent, capped, "max-order")

    async def run() -> None:
        rt.join.owned[0] = Owned(rt.join.new_state())
        await rt.join.handle(Record(ORDERS.name, 0, 0, b"k", encode(placed), TS))

    asyncio.run(run())
    [letter] = [e for t, v in sent if t == DLQ.name for e in decode_record(v)]
    assert isinstance(letter, DeadLetter)
    assert "above the campaign's max_order_minor" in letter.reason
    assert attribute([placed], {"camp": (capped,)}).conversions == []
    assert attribute([placed], {"camp": (VERSION,)}).conversions != []
