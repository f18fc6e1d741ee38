"""A timer tick takes up a pending order again only once its grace may have passed: an
order whose deadline is known waits by that deadline, not among the orders a tick walks
through, and is still decided at it (after a terms change, a restart from the disk
store's indexes)."""

from __future__ import annotations

import pytest
from recording_runtime import ten_percent_sale

from afflux.attribution.join import JoinPartition
from afflux.attribution.timer_indexes import dump_indexes, load_indexes
from afflux.shared.core.terms import TermsVersion
from afflux.shared.events import ConversionAttributed, OrderPlaced, OrderUnattributed

pytestmark = pytest.mark.unit

T0 = 1_793_491_200_000
GRACE_MS = 1_000  # ten_percent_sale's


def order(n: int, arrived: int = T0) -> OrderPlaced:
    return OrderPlaced(
        event_id=f"order-ev-{n}",
        occurred_at=arrived,
        order_id=f"order-{n}",
        campaign_id="camp",
        merchant_id="merchant",
        currency="EUR",
        amount_minor=10_000,
        visitor_id=f"v{n}",
    )


class CountedTerms:
    """The terms lookup, counting how often a tick asks it."""

    def __init__(self, version: TermsVersion) -> None:
        self.version = version
        self.asked = 0

    def __call__(self, campaign: str, at: int) -> TermsVersion | None:
        self.asked += 1
        return self.version


def decided(out: list[tuple[str, str, object]]) -> list[str]:
    return sorted(
        e.order_id for _, _, e in out if isinstance(e, ConversionAttributed | OrderUnattributed)
    )


def test_ticks_before_the_deadline_ask_for_each_order_once() -> None:
    join = JoinPartition()
    terms = CountedTerms(ten_percent_sale())
    for n in range(50):
        join.order(f"v{n}", order(n), T0 + n)
    for tick in range(39):  # every 25 ms, the last 1 ms before the first deadline
        assert join.due(T0 + 49 + tick * 25, terms) == []
    assert terms.asked == 50  # once per order, where every tick asked for every order
    assert decided(join.due(T0 + 49 + GRACE_MS, terms)) == sorted(f"order-{n}" for n in range(50))


def test_an_order_is_decided_on_the_tick_its_grace_passes() -> None:
    join = JoinPartition()
    terms = CountedTerms(ten_percent_sale())
    join.order("v1", order(1), T0)
    assert join.due(T0, terms) == []
    assert join.due(T0 + GRACE_MS - 1, terms) == []
    assert decided(join.due(T0 + GRACE_MS, terms)) == ["order-1"]
    assert not join.queue
    assert not join.later


def test_a_shorter_grace_published_while_an_order_waits_is_applied_at_once() -> None:
    join = JoinPartition()
    long_grace = ten_percent_sale().model_copy(
        update={"terms": ten_percent_sale().terms.model_copy(update={"grace_seconds": 60})}
    )
    terms = CountedTerms(long_grace)
    join.order("v1", order(1), T0)
    assert join.due(T0 + GRACE_MS, terms) == []  # waits for its 60 s
    terms.version = ten_percent_sale()  # the campaign view applied a 1 s grace
    assert decided(join.due(T0 + GRACE_MS, terms, terms_seen=1)) == ["order-1"]


def test_orders_waiting_for_their_deadline_survive_a_restart_from_the_indexes() -> None:
    join = JoinPartition()
    terms = CountedTerms(ten_percent_sale())
    join.order("v1", order(1), T0)
    join.order("v2", order(2), T0 + 500)
    assert join.due(T0 + 600, terms) == []  # both wait for their deadline now
    restored = JoinPartition(keys=join.keys)
    load_indexes(restored, dump_indexes(join))
    assert decided(restored.due(T0 + GRACE_MS, terms)) == ["order-1"]
    assert decided(restored.due(T0 + 500 + GRACE_MS, terms)) == ["order-2"]
