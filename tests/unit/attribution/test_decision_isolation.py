"""Deciding one order (or settling one refund) that raises dead-letters that one alone:
the others taken off the queue in the same tick are decided as if nothing happened."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import pytest
from recording_runtime import ten_percent_sale

from afflux.attribution.join import JoinPartition
from afflux.attribution.metrics import AttributionMetrics
from afflux.attribution.refunds import RefundPartition
from afflux.attribution.runtime import Runtime
from afflux.attribution.stage import Owned, Transport
from afflux.shared.core.terms import TermsVersion
from afflux.shared.events import (
    ClickRecorded,
    ConversionAttributed,
    DeadLetter,
    OrderPlaced,
    OrderRefunded,
    OrderUnattributed,
    RefundUnmatched,
)
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.topics import DLQ, ORDERS
from afflux.shared.wire import decode_record

pytestmark = pytest.mark.unit

DAY = 86_400_000
T0 = 1_793_491_200_000
GRACE_MS = 1_000


def terms_failing_for(campaigns: set[str], times: frozenset[int] = frozenset()) -> Any:
    def terms(campaign: str, at: int) -> TermsVersion | None:
        if campaign in campaigns or at in times:
            raise LookupError(f"terms of {campaign} unreadable")
        return ten_percent_sale(campaign)

    return terms


def order(campaign: str, n: int, at: int = T0, visitor: str = "v") -> OrderPlaced:
    return OrderPlaced(
        event_id=f"order-ev-{campaign}-{n}",
        occurred_at=at,
        order_id=f"order-{n}",
        campaign_id=campaign,
        merchant_id="merchant",
        currency="EUR",
        amount_minor=10_000,
        visitor_id=visitor,
    )


def click(campaign: str, at: int, visitor: str = "v") -> ClickRecorded:
    return ClickRecorded(
        event_id=f"click-ev-{campaign}-{at}",
        occurred_at=at,
        click_id=f"click-{campaign}-{at}",
        link_code="code",
        affiliate_id="creator",
        campaign_id=campaign,
        visitor_id=visitor,
    )


@dataclass(frozen=True)
class Case:
    broken: str  # the campaign whose terms lookup raises
    orders: tuple[str, ...]  # campaigns of the orders popped in one tick


CASES = [
    Case("bad", ("bad", "good")),  # the failing order first in the queue
    Case("bad", ("good", "bad")),  # the failing order last
    Case("bad", ("good", "bad", "other")),  # in the middle
]


@pytest.mark.parametrize("case", CASES)
def test_an_order_whose_deciding_raises_is_set_aside_and_the_others_are_decided(
    case: Case,
) -> None:
    join = JoinPartition()
    for n, campaign in enumerate(case.orders):
        join.order(f"v{n}", order(campaign, n, visitor=f"v{n}"), arrived=n)
    out = join.due(len(case.orders) + GRACE_MS, terms_failing_for({case.broken}))
    decided = sorted(e.campaign_id for _, _, e in out if isinstance(e, OrderUnattributed))
    assert decided == sorted(c for c in case.orders if c != case.broken)
    [failed] = join.take_failed()
    assert failed.facts["campaign_id"] == case.broken
    assert type(failed.error) is LookupError
    assert failed.reason.startswith("failed: deciding the order: LookupError")
    assert not join.queue  # nothing left to fail again on the next tick
    assert all(not s.pending for s in join.keys.values())


def test_a_copy_of_a_dead_lettered_order_is_decided_afresh() -> None:
    join = JoinPartition()
    join.order("v", order("bad", 1), arrived=0)
    join.due(GRACE_MS, terms_failing_for({"bad"}))
    join.take_failed()
    assert join.order("v", order("bad", 1), arrived=5)
    [(_, _, outcome)] = join.due(5 + GRACE_MS, terms_failing_for(set()))
    assert isinstance(outcome, OrderUnattributed)


def test_a_late_click_is_kept_when_re_deciding_one_of_its_orders_raises() -> None:
    join = JoinPartition()
    join.order("v", order("camp", 1, at=T0), arrived=0)
    join.order("v", order("camp", 2, at=T0 + 1), arrived=0)
    join.due(GRACE_MS, terms_failing_for(set()))
    # The lookup of order 2's terms (at T0 + 1) raises when the late click re-decides it.
    late = join.click("v", click("camp", T0 - DAY), 10_000, terms_failing_for(set(), {T0 + 1}))
    assert late.outcomes == ["attributed"]
    [(_, _, corrected)] = late.outputs
    assert isinstance(corrected, ConversionAttributed)
    assert corrected.order_id == "order-1"
    assert "click-camp-" + str(T0 - DAY) in join.keys["v"].clicks
    [failed] = join.take_failed()
    assert (failed.facts["order_id"], type(failed.error)) == ("order-2", LookupError)
    assert failed.step == "re-deciding on a late click"
    assert not join.keys["v"].decided[("camp", "order-2")].converted  # its decision stands


def refund(n: int, currency: str = "EUR") -> OrderRefunded:
    # model_construct: a record restored as it was written, which validation would refuse now
    return OrderRefunded.model_construct(
        event_id=f"refund-ev-{n}",
        occurred_at=T0,
        refund_id=f"refund-{n}",
        order_id=f"order-{n}",
        campaign_id="camp",
        amount_minor=100,
        currency=currency,
        type="OrderRefunded",
        schema_version=1,
    )


def test_a_waiting_refund_whose_settling_raises_is_set_aside_and_the_others_settle() -> None:
    stage = RefundPartition()
    stage.refund("order-1", refund(1), arrived=0)
    stage.refund("order-2", refund(2, currency="euro"), arrived=0)
    stage.refund("order-3", refund(3), arrived=0)
    out = stage.due(safe_time=10, wait_ms=5)
    assert sorted(e.order_id for _, _, e in out if isinstance(e, RefundUnmatched)) == [
        "order-1",
        "order-3",
    ]
    [failed] = stage.take_failed()
    assert failed.facts["refund_id"] == "refund-2"
    assert type(failed.error).__name__ == "ValidationError"
    assert not stage.waiting


def test_the_timer_dead_letters_the_failing_order_with_its_reason_and_class() -> None:
    sent: list[tuple[str, bytes | None]] = []

    async def send(topic: str, key: bytes | None, value: bytes | None, p: int | None) -> Any:
        sent.append((topic, value))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def run() -> None:
        runtime = Runtime(
            transport=Transport(send),
            bootstrap="127.0.0.1:1",
            group="isolation",
            directory=CampaignDirectory(),
            metrics=AttributionMetrics(),
            refund_wait_ms=0,
            order_retention_ms=DAY,
        )
        runtime.campaigns.terms = terms_failing_for({"bad"})  # type: ignore[method-assign]
        state = JoinPartition()
        state.order("v0", order("bad", 0, visitor="v0"), arrived=0)
        state.order("v1", order("good", 1, visitor="v1"), arrived=0)
        runtime.join.owned[0] = owned = Owned(state)
        owned.safe_ms = GRACE_MS
        await runtime.tick()

    asyncio.run(run())
    letters = [e for t, v in sent if t == DLQ.name for e in decode_record(v)]
    [letter] = letters
    assert isinstance(letter, DeadLetter)
    assert (letter.source_topic, letter.error_class) == (ORDERS.name, "LookupError")
    assert letter.reason.startswith("failed: deciding the order: LookupError")
    assert json.loads(letter.value)["order_id"] == "order-0"
    outcomes = [e for t, v in sent if t != DLQ.name and v for e in _events(v)]
    assert [e.order_id for e in outcomes if isinstance(e, OrderUnattributed)] == ["order-1"]


def _events(value: bytes) -> list[Any]:
    try:
        return list(decode_record(value))
    except Exception:
        return []  # a changelog record, not an event
