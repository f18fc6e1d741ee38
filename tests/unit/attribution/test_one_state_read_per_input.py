"""An order or a refund reads its key from the disk state store once: the checks that may
refuse it with its record (a conflicting copy, another currency) and taking it share one
lookup. They each looked the key up before, and the store does not remember a key it
lacks: a new order of a visitor without state, or a refund that came before its order's
outcome, was three RocksDB reads (a key it holds is read once, then cached)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from recording_runtime import recording_runtime, ten_percent_sale

from afflux.attribution.handlers import JoinHandler, RefundHandler
from afflux.attribution.join import JoinPartition
from afflux.attribution.refunds import RefundPartition
from afflux.attribution.store import DiskKeys, DiskStores
from afflux.oracle import attribute
from afflux.shared.events import (
    ClickRecorded,
    ConversionAttributed,
    Envelope,
    OrderPlaced,
    OrderRefunded,
)
from afflux.shared.topics import CLICKS, CONVERSIONS, ORDERS, REFUNDS

pytestmark = pytest.mark.unit

TS = 1_793_491_200_000
VERSION = ten_percent_sale()
TOPIC = {
    ClickRecorded: CLICKS.name,
    OrderPlaced: ORDERS.name,
    OrderRefunded: REFUNDS.name,
    ConversionAttributed: CONVERSIONS.name,
}


class CountingDb:
    """The store's database, counting the reads of each key."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.reads: Counter[bytes] = Counter()

    def get(self, key: bytes) -> Any:
        self.reads[key] += 1
        return self.db.get(key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)


def click() -> ClickRecorded:
    return ClickRecorded(
        event_id="ev-c", occurred_at=TS - 1_000, click_id="c-1", link_code="l",
        affiliate_id="ana", campaign_id="camp", visitor_id="v-1",
    )  # fmt: skip


def order(amount: int = 5_000) -> OrderPlaced:
    return OrderPlaced(
        event_id=f"ev-o-{amount}", occurred_at=TS, order_id="o-1", campaign_id="camp",
        merchant_id="merchant", currency="EUR", amount_minor=amount, visitor_id="v-1",
    )  # fmt: skip


def refund(currency: str = "EUR") -> OrderRefunded:
    return OrderRefunded(
        event_id=f"ev-r-{currency}", occurred_at=TS + 1_000, refund_id="r-1", order_id="o-1",
        campaign_id="camp", amount_minor=1_000, currency=currency,
    )  # fmt: skip


@dataclass(frozen=True)
class Case:
    name: str
    before: list[Envelope]  # on disk before the event, not in the cache
    event: Envelope
    refused: str  # the start of the reason it is refused with ('': taken)


def outcome() -> Envelope:
    [conversion] = attribute([click(), order()], {"camp": (VERSION,)}).conversions
    return conversion


CASES = [
    Case("a new order of a visitor never seen", [], order(), ""),
    Case("a new order of a visitor whose clicks are on disk", [click()], order(), ""),
    Case("a copy of an order that asks another amount", [order()], order(9_000), "conflicting"),
    Case("a refund before its order's outcome", [], refund(), ""),
    Case("a refund after its order's outcome", [outcome()], refund(), ""),
    Case("a refund in another currency than its order's", [outcome()], refund("JPY"), "currency"),
]


def handle(
    tmp_path: Path, before: list[Envelope], event: Envelope
) -> tuple[str, Counter[bytes], str]:
    """``before`` applied and checkpointed, then ``event`` through its stage's handler over
    a fresh cache: (its key, the database reads per key, why it was refused)."""
    rt = recording_runtime([], VERSION, "reads")
    joins = isinstance(event, OrderPlaced)
    handler: JoinHandler | RefundHandler = rt.join.handler if joins else rt.refunds.handler
    key = "v-1" if joins else "o-1"
    local = DiskStores(tmp_path, 100).open(0)
    written: JoinPartition | RefundPartition = handler.new_state(local)
    for e in before:
        assert handler.on_event(written, TOPIC[type(e)], e, TS)[1] == ""
    for name, value in written.take_dirty():
        if value is not None:
            local.db.put(name.encode(), value)  # as a checkpoint writes it
    state = handler.new_state(local)  # the cache empty, as after an eviction or a restart
    keys = state.keys
    assert isinstance(keys, DiskKeys)
    counting = CountingDb(keys.db)
    keys.db = counting
    _, refused = handler.on_event(state, TOPIC[type(event)], event, TS + 2_000)
    return key, counting.reads, refused


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_an_order_or_refund_reads_its_key_once(tmp_path: Path, case: Case) -> None:
    key, reads, refused = handle(tmp_path, case.before, case.event)
    assert refused.startswith(case.refused)
    assert bool(refused) is bool(case.refused)
    assert reads[key.encode()] == 1
