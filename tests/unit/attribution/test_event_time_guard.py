"""An input event stamped more than the clock skew after its record's timestamp is
dead-lettered (event_time_in_future) and moves nothing; the batch oracle leaves the
same events out."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest
from recording_runtime import recording_runtime, ten_percent_sale

from afflux.attribution.runtime import Runtime
from afflux.attribution.stage import Owned, Record
from afflux.oracle import admitted
from afflux.shared.core.event_time import (
    DEFAULT_CLOCK_SKEW_MS,
    OWN_CLOCK_TOLERANCE_MS,
    event_time_in_future,
)
from afflux.shared.events import (
    ClickRecorded,
    DeadLetter,
    Envelope,
    OrderPlaced,
    OrderRefunded,
)
from afflux.shared.topics import CLICKS, DLQ, ORDERS, REFUNDS
from afflux.shared.wire import decode_record, encode

pytestmark = pytest.mark.unit

TS = 1_793_491_200_000  # the record's timestamp
SKEW = DEFAULT_CLOCK_SKEW_MS


def click(at: int) -> ClickRecorded:
    return ClickRecorded(
        event_id=f"click-ev-{at}",
        occurred_at=at,
        click_id=f"click-{at}",
        link_code="code",
        affiliate_id="creator",
        campaign_id="camp",
        visitor_id="v",
    )


def order(at: int) -> OrderPlaced:
    return OrderPlaced(
        event_id=f"order-ev-{at}",
        occurred_at=at,
        order_id=f"order-{at}",
        campaign_id="camp",
        merchant_id="merchant",
        currency="EUR",
        amount_minor=1_000,
        visitor_id="v",
    )


def refund(at: int) -> OrderRefunded:
    return OrderRefunded(
        event_id=f"refund-ev-{at}",
        occurred_at=at,
        refund_id=f"refund-{at}",
        order_id="order",
        campaign_id="camp",
        amount_minor=100,
        currency="EUR",
    )


@dataclass(frozen=True)
class Case:
    ahead_ms: int  # occurred_at minus the record's timestamp
    refused: bool


CASES = [
    Case(SKEW, False),  # exactly the skew ahead: accepted
    Case(SKEW + 1, True),  # one ms past the skew: dead-lettered
    Case(0, False),  # stamped at the record's time
    Case(-SKEW * 10, False),  # far in the past is not this rule's business
    Case(400 * 86_400_000, True),  # a year ahead
]


@pytest.mark.parametrize("case", CASES)
def test_event_time_bound(case: Case) -> None:
    assert event_time_in_future(TS + case.ahead_ms, TS, SKEW) is case.refused


@pytest.mark.parametrize("case", CASES)
def test_the_oracle_leaves_out_exactly_the_events_the_worker_refuses(case: Case) -> None:
    events: list[tuple[Envelope, int]] = [(click(TS + case.ahead_ms), TS)]
    assert (admitted(events, SKEW) == []) is case.refused


def runtime(sent: list[tuple[str, bytes | None]]) -> Runtime:
    return recording_runtime(sent, ten_percent_sale(), "guard")


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(
    ("topic", "event"), [(CLICKS.name, click), (ORDERS.name, order), (REFUNDS.name, refund)]
)
def test_an_input_stamped_past_the_skew_is_dead_lettered_and_moves_no_watermark(
    case: Case, topic: str, event: Any
) -> None:
    sent: list[tuple[str, bytes | None]] = []
    rt = runtime(sent)

    async def run() -> None:
        rt.join.owned[0] = Owned(rt.join.new_state())
        rt.refunds.owned[0] = Owned(rt.refunds.new_state())
        stage = rt.refunds if topic == REFUNDS.name else rt.join
        await stage.handle(Record(topic, 0, 0, b"v", encode(event(TS + case.ahead_ms)), TS))

    asyncio.run(run())
    letters = [e for t, v in sent if t == DLQ.name for e in decode_record(v)]
    owned = (rt.refunds if topic == REFUNDS.name else rt.join).owned[0]
    if case.refused:
        [letter] = letters
        assert isinstance(letter, DeadLetter)
        assert letter.reason.startswith("event_time_in_future")
        assert (letter.source_topic, letter.source_offset) == (topic, 0)
        assert owned.state.watermark == 0
        assert owned.consumed[topic] == 1  # refused, never retried
    else:
        assert letters == []
        assert owned.state.watermark == max(0, TS + case.ahead_ms)


YEAR_MS = 365 * 86_400_000


@pytest.mark.parametrize(
    ("ahead_ms", "refused"),
    [
        # A worker whose clock runs behind its producers' by more than the skew: their
        # live clicks and orders were dead-lettered, their commission lost for good.
        (SKEW + 1, False),
        (400_000, False),
        (OWN_CLOCK_TOLERANCE_MS, False),  # exactly the tolerance: accepted
        (OWN_CLOCK_TOLERANCE_MS + 1, True),
        (YEAR_MS, True),  # the attack: a year ahead, its record stamped alike
    ],
)
@pytest.mark.parametrize(
    ("topic", "event"), [(CLICKS.name, click), (ORDERS.name, order), (REFUNDS.name, refund)]
)
def test_an_input_past_the_workers_clock_is_dead_lettered_though_its_record_is_stamped_alike(
    ahead_ms: int, refused: bool, topic: str, event: Any
) -> None:
    """A producer sets a record's timestamp: a click dated a year ahead with its record
    stamped the same passed the record check, moved the watermark a year and the next
    prune dropped every click of the partition."""
    sent: list[tuple[str, bytes | None]] = []
    rt = recording_runtime(sent, ten_percent_sale(), "clock-guard", clock=lambda: TS)
    at = TS + ahead_ms

    async def run() -> None:
        rt.join.owned[0] = Owned(rt.join.new_state())
        rt.refunds.owned[0] = Owned(rt.refunds.new_state())
        stage = rt.refunds if topic == REFUNDS.name else rt.join
        await stage.handle(Record(topic, 0, 0, b"v", encode(event(at)), at))

    asyncio.run(run())
    letters = [e for t, v in sent if t == DLQ.name for e in decode_record(v)]
    owned = (rt.refunds if topic == REFUNDS.name else rt.join).owned[0]
    if refused:
        [letter] = letters
        assert isinstance(letter, DeadLetter)
        assert letter.reason.startswith("event_time_in_future")
        assert "after this worker's clock" in letter.reason
        assert owned.state.watermark == 0
    else:
        assert letters == []
        assert owned.state.watermark == at


@pytest.mark.parametrize(
    ("ahead_ms", "kept"),
    [
        (SKEW + 1, True),
        (OWN_CLOCK_TOLERANCE_MS, True),
        (OWN_CLOCK_TOLERANCE_MS + 1, False),
        (YEAR_MS, False),
    ],
)
def test_the_oracle_checking_a_running_stack_leaves_out_what_is_past_its_clock(
    ahead_ms: int, kept: bool
) -> None:
    at = TS + ahead_ms
    events: list[tuple[Envelope, int]] = [(click(at), at), (order(at), at)]
    assert (admitted(events, SKEW, now_ms=TS) != []) is kept
    assert len(admitted(events, SKEW)) == 2  # a replay on its own: the records alone
