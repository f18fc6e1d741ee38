"""A batch of orders asks the terms barrier once, whatever partitions it spans, and
before it takes the stage's lock.

Asked per partition, each ask started after the last one had answered, so it could not
share it: a batch over four partitions made four ListOffsets round trips one after the
other, all under the lock the timer needs to decide the orders whose grace had passed
(a cookie order's conversion p99 was grace + 268 to 289 ms on an idle machine, the goal
grace + 250).
"""

from __future__ import annotations

import asyncio

import pytest
from recording_runtime import recording_runtime, ten_percent_sale

from afflux.attribution.stage import Owned, Record
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import OrderPlaced
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.terms_barrier import TermsBarrier
from afflux.shared.topics import CONVERSIONS, ORDERS
from afflux.shared.wire import encode

pytestmark = pytest.mark.unit

TS = 1_793_491_200_000


class CountedBarrier(TermsBarrier):
    """Answers every ask with an empty ``campaigns`` topic (the view holds it), counting
    the asks and whether the stage's lock was held while each was made."""

    def __init__(self, directory: CampaignDirectory, lock: asyncio.Lock) -> None:
        super().__init__(directory, "127.0.0.1:1")
        self.asks: list[bool] = []
        self.lock = lock

    async def _ends(self) -> dict[int, int]:
        self.asks.append(self.lock.locked())
        await asyncio.sleep(0)  # the broker's answer: another task may run meanwhile
        return {0: 0}


def order(n: int) -> OrderPlaced:
    return OrderPlaced(
        event_id=f"ev-{n}",
        occurred_at=TS,
        order_id=f"o-{n}",
        campaign_id="camp",
        merchant_id="merchant",
        currency="EUR",
        amount_minor=10_000,
        visitor_id=f"v-{n}",
    )


def asks_for_one_batch(partitions: int) -> list[bool]:
    directory = CampaignDirectory()
    rt = recording_runtime([], ten_percent_sale(), "barrier-asks", directory=directory)
    barrier = CountedBarrier(directory, rt.join.lock)
    rt.join.barrier = barrier
    rt.join.barrier_topics = frozenset({ORDERS.name})

    async def run() -> list[bool]:
        records = []
        for p in range(partitions):
            rt.join.owned[p] = Owned(rt.join.new_state())
            records.append(Record(ORDERS.name, p, 0, f"v-{p}".encode(), encode(order(p)), TS))
        assert await rt.join.handle_many(records) == [True] * partitions
        return barrier.asks

    return asyncio.run(run())


@pytest.mark.parametrize("partitions", [1, 2, 4])
def test_a_batch_of_orders_asks_the_barrier_once_outside_the_lock(partitions: int) -> None:
    assert asks_for_one_batch(partitions) == [False]


class LaggingBarrier(TermsBarrier):
    """The broker holds one ``campaigns`` record more than the view (``lags``), and a wait
    for the view ends at once: what a view behind a loaded machine's share of waiting is.
    ``fails``: the broker does not answer the ask at all."""

    def __init__(self, directory: CampaignDirectory, lags: bool, fails: bool = False) -> None:
        super().__init__(directory, "127.0.0.1:1", wait_s=0.0)
        self.lags = lags
        self.fails = fails

    async def _ends(self) -> dict[int, int]:
        if self.fails:
            raise TimeoutError("ListOffsets not answered")
        return {0: 1 if self.lags else 0}


def coupon_terms() -> TermsVersion:
    terms = CampaignTerms.model_validate(
        {
            "campaign_id": "camp",
            "merchant_id": "merchant",
            "currency": "EUR",
            "coupons": {"SAVE": "ana"},
            "plan": {"sale": {"rate": {"percent": "10"}}},
        }
    )
    return TermsVersion(version=1, effective_from=0, published_at=0, terms=terms)


@pytest.mark.parametrize(
    ("lags", "fails", "at_once"), [(False, False, True), (True, False, False), (False, True, False)]
)
def test_an_order_is_decided_at_once_only_when_the_view_holds_the_brokers_terms(
    lags: bool, fails: bool, at_once: bool
) -> None:
    """A creator's code settles the order, but a view known to lag may lack the version
    that gave the code to another creator: the order waits for its grace instead (it went
    to the old version's creator for good, the last of 20 raced in a loaded CI run). So
    does it when the broker does not answer the ask: the view may lag for that very
    reason."""
    sent: list[tuple[str, bytes | None]] = []
    directory = CampaignDirectory()
    rt = recording_runtime(sent, coupon_terms(), "barrier-lags", directory=directory)
    rt.join.barrier = LaggingBarrier(directory, lags, fails)
    rt.join.barrier_topics = frozenset({ORDERS.name})
    placed = order(1).model_copy(update={"coupon_code": "SAVE"})

    async def run() -> None:
        rt.join.owned[0] = Owned(rt.join.new_state())
        record = Record(ORDERS.name, 0, 0, b"v-1", encode(placed), TS)
        assert await rt.join.handle_many([record]) == [True]

    asyncio.run(run())

    assert any(topic == CONVERSIONS.name for topic, _ in sent) is at_once
