"""A refund dated before the order it takes back is refused where it enters the worker,
as the orders service refuses it at its door (422 ``occurred_at``: "the refund is dated
before its order"), and the batch oracle and the what-if decoder leave out the same:

- written straight to the ``refunds`` topic after its order's outcome, it is
  dead-lettered with its record (``refund_before_order: the refund is dated ...,
  before its order (...)``); before the outcome it waits, and is refused when the
  outcome comes, or, if it expired waiting (answered ``order_unknown``), when the
  outcome comes after all;
- the conversion stays whole and the refund id stays free: a copy dated at or after the
  order takes it, whichever of the two came first;
- a refund at the order's very time is taken.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from refund_worker import (
    CAMPAIGNS,
    DAY,
    TS,
    VERSION,
    Worker,
    events,
    letters,
    order,
    outcome,
    refund,
    reversed_minor,
)

from afflux.attribution.refunds import RefundPartition
from afflux.oracle import attribute
from afflux.shared.core.refund_date import REFUND_BEFORE_ORDER
from afflux.shared.core.whatif.log import CampaignLog
from afflux.shared.events import OrderRefunded, OrderUnattributed, RefundUnmatched
from afflux.shared.topics import CONVERSIONS, ORDERS, REFUNDS, UNMATCHED
from afflux.shared.whatif_decode import LogReader
from afflux.shared.wire import encode

pytestmark = pytest.mark.unit

EARLY = "refund_before_order: the refund is dated 2026-10-31T23:59:59.999Z, before its order"


def early(refund_id: str, amount: int) -> OrderRefunded:
    """A refund a millisecond before the order (at ``TS``)."""
    return refund(refund_id, amount, "EUR", at=TS - 1)


def oracle_reversals(refunds: Sequence[OrderRefunded]) -> list[int]:
    return [r.amount_minor for r in attribute([order(), *refunds], CAMPAIGNS).reversals]


def test_a_refund_a_millisecond_before_its_order_is_dead_lettered_with_its_record() -> None:
    w = Worker()
    w.feed(CONVERSIONS.name, outcome(order()))
    w.feed(REFUNDS.name, early("r-1", 5_000))
    [letter] = letters(w.sent)
    assert letter.reason.startswith(EARLY)
    assert letter.reason.endswith("(2026-11-01T00:00:00.000Z)")
    assert (letter.source_topic, letter.source_offset) == (REFUNDS.name, 0)
    assert reversed_minor(w.sent) == [] == oracle_reversals([early("r-1", 5_000)])


def test_a_refund_at_its_orders_very_time_is_taken() -> None:
    w = Worker()
    w.feed(CONVERSIONS.name, outcome(order()))
    at_order = refund("r-1", 1_200, "EUR", at=TS)
    w.feed(REFUNDS.name, at_order, TS)
    assert letters(w.sent) == []
    assert reversed_minor(w.sent) == [1_200] == oracle_reversals([at_order])


def test_a_refund_that_waited_for_its_order_is_refused_when_the_outcome_comes() -> None:
    w = Worker()
    w.feed(REFUNDS.name, early("r-1", 5_000))
    w.feed(REFUNDS.name, refund("r-2", 1_000, "EUR"))
    assert letters(w.sent) == []
    w.feed(CONVERSIONS.name, outcome(order()))
    [letter] = letters(w.sent)
    assert letter.reason.startswith(EARLY)
    assert (letter.source_offset, letter.error_class) == (-1, "Refused")
    assert reversed_minor(w.sent) == [1_000]


def test_a_refund_that_expired_waiting_is_refused_when_its_order_comes_after_all() -> None:
    w = Worker()
    w.feed(REFUNDS.name, early("r-1", 5_000))
    w.expire()
    [unknown] = events(w.sent, UNMATCHED.name)
    assert isinstance(unknown, RefundUnmatched)
    assert unknown.reason == "order_unknown"
    w.feed(CONVERSIONS.name, outcome(order()))
    [letter] = letters(w.sent)
    assert letter.reason.startswith(EARLY)
    assert reversed_minor(w.sent) == []
    # Its id is free again: dated after the order it is applied.
    w.feed(REFUNDS.name, refund("r-1", 5_000, "EUR"))
    assert reversed_minor(w.sent) == [5_000]


def test_a_refund_of_an_unattributed_order_is_held_to_the_orders_time() -> None:
    w = Worker()
    nobody = outcome(order(coupon=None))
    assert isinstance(nobody, OrderUnattributed)
    w.feed(UNMATCHED.name, nobody)
    w.feed(REFUNDS.name, early("r-1", 5_000))
    w.feed(REFUNDS.name, refund("r-2", 1_000, "EUR"))
    [letter] = letters(w.sent)
    assert letter.reason.startswith(EARLY)
    [unmatched] = events(w.sent, UNMATCHED.name)
    assert isinstance(unmatched, RefundUnmatched)
    assert (unmatched.refund_id, unmatched.reason) == ("r-2", "order_unattributed")


@dataclass(frozen=True)
class Copies:
    """Two copies of one refund id, one dated before the order and one after it,
    arriving in ``order`` (``early`` first or ``late`` first); ``timing``: both after
    the order's outcome, both waiting for it, or the first expired before the second."""

    first: str
    timing: str

    @property
    def name(self) -> str:
        return f"{self.first} copy first, {self.timing}"

    @property
    def refunds(self) -> list[OrderRefunded]:
        copies = [early("r-1", 700), refund("r-1", 700, "EUR")]
        return copies if self.first == "early" else copies[::-1]


COPIES = [Copies(first, t) for t in ("after", "waiting", "expired") for first in ("early", "late")]


def worker_over(case: Copies) -> Worker:
    w = Worker()
    if case.timing == "after":
        w.feed(CONVERSIONS.name, outcome(order()))
    first, second = case.refunds
    w.feed(REFUNDS.name, first)
    if case.timing == "expired":
        w.expire()
    w.feed(REFUNDS.name, second)
    if case.timing != "after":
        w.feed(CONVERSIONS.name, outcome(order()))
    return w


@pytest.mark.parametrize("case", COPIES, ids=lambda c: c.name)
def test_the_copy_dated_after_the_order_takes_the_id_whichever_came_first(case: Copies) -> None:
    w = worker_over(case)
    [letter] = letters(w.sent)
    assert letter.reason.startswith(EARLY)
    assert reversed_minor(w.sent) == oracle_reversals(case.refunds) == [700]


@pytest.mark.parametrize("case", COPIES, ids=lambda c: c.name)
def test_the_whatif_leaves_out_the_same_copy(case: Copies) -> None:
    reader = LogReader(CampaignLog("camp"), versions=(VERSION,))
    placed = [(ORDERS.name, order(), TS)]
    refunded = [(REFUNDS.name, r, TS + DAY) for r in case.refunds]
    for topic, event, ts in placed + refunded if case.timing == "after" else refunded + placed:
        reader.record(encode(event), topic, ts)
    assert reader.refused == {REFUND_BEFORE_ORDER: 1}
    assert [(r.refund_id, r.at) for r in reader.log.refunds] == [("r-1", TS + DAY)]


def test_the_order_time_of_an_unattributed_outcome_survives_a_restart() -> None:
    stage = RefundPartition()
    nobody = outcome(order(coupon=None))
    assert isinstance(nobody, OrderUnattributed)
    stage.unattributed("o-1", nobody)
    restored = RefundPartition()
    for key, value in stage.take_dirty():
        assert value is not None
        restored.restore(key, value)
    assert restored.keys["o-1"].order_times == {"camp": TS}
    assert restored.refusal("o-1", early("r-1", 1)).startswith(EARLY)
