"""An order, refund or renewal written straight to its topic dated more than its campaign's
backfill limit plus the clock skew before its record's timestamp (seconds sent as
milliseconds, a year-old replay) is dead-lettered (event_time_too_old) and changes
nothing: taken, it would be attributed and approved at once, its return window long past.
The limit is the orders service's own (``core.event_time.backfill_limit_ms``), so the
worker takes whatever the orders API places; a record marked a backfill (the header the
orders service's admin backfill sets) is held to the upper bound only, as the admin
backfill is. The batch oracle leaves out the same events."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest
from recording_runtime import recording_runtime, ten_percent_sale

from afflux.attribution.runtime import TERMS_REFUSALS, Runtime
from afflux.attribution.stage import Owned, Record
from afflux.oracle import admitted
from afflux.orders.errors import Rejected
from afflux.orders.placement import TimeLimits, place
from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.event_time import (
    BACKFILL_HEADER,
    BACKFILL_HEADERS,
    DEFAULT_CLOCK_SKEW_MS,
    EVENT_TIME_TOO_OLD,
    Headers,
    allowed_age_ms,
    backfill_limit_ms,
    event_time_too_old,
    is_backfill,
)
from afflux.shared.core.terms import TermsVersion
from afflux.shared.events import (
    ClickRecorded,
    DeadLetter,
    Envelope,
    LeadConfirmed,
    OrderPlaced,
    OrderRefunded,
    SubscriptionRenewed,
)
from afflux.shared.topics import CLICKS, DLQ, ORDERS, REFUNDS
from afflux.shared.wire import decode_record, encode

pytestmark = pytest.mark.unit

TS = 1_793_491_200_000  # the record's timestamp (2026-11-01)
SKEW = DEFAULT_CLOCK_SKEW_MS
VERSION = ten_percent_sale()  # a 30-day window and the default 30-day lock
LIMIT = backfill_limit_ms((VERSION,), None)
ALLOWED = allowed_age_ms(LIMIT, SKEW)


def test_the_limit_is_the_longest_window_plus_the_longest_lock_plus_the_skew() -> None:
    assert LIMIT == 60 * MS_PER_DAY
    assert ALLOWED == 60 * MS_PER_DAY + 300_000
    assert backfill_limit_ms((VERSION,), 10) == 10 * MS_PER_DAY  # the setting replaces it


def test_before_every_start_the_limit_is_the_first_published_versions() -> None:
    """Version 2, published to start before version 1's start, governs from its own start
    on; before it version 1 still judges events (``terms_in_force``), so its limit holds."""
    first = ten_percent_sale()  # a 30-day window and a 30-day lock
    first = TermsVersion(version=1, effective_from=TS, published_at=0, terms=first.terms)
    shorter = first.terms.model_copy(update={"cookie_window_days": 7})
    second = TermsVersion(
        version=2, effective_from=TS - 10 * MS_PER_DAY, published_at=1, terms=shorter
    )

    assert backfill_limit_ms((first, second), None, TS - 11 * MS_PER_DAY) == 60 * MS_PER_DAY
    assert backfill_limit_ms((first, second), None, TS - 10 * MS_PER_DAY) == 60 * MS_PER_DAY
    assert backfill_limit_ms((second,), None, TS - 11 * MS_PER_DAY) == 37 * MS_PER_DAY


@dataclass(frozen=True)
class Case:
    name: str
    occurred_at: int
    refused: bool


CASES = [
    Case("at the record's time", TS, False),
    Case("exactly the limit plus the skew before", TS - ALLOWED, False),
    Case("1 ms more", TS - ALLOWED - 1, True),
    Case("the orders API's own edge", TS - LIMIT, False),
    Case("seconds sent as milliseconds (January 1970)", TS // 1000, True),
    Case("three years ago", TS - 3 * 365 * MS_PER_DAY, True),
    Case("the epoch", 0, True),
    Case("the skew ahead is not this rule's business", TS + SKEW, False),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_event_time_lower_bound(case: Case) -> None:
    assert event_time_too_old(case.occurred_at, TS, ALLOWED) is case.refused


@dataclass(frozen=True)
class HeaderCase:
    headers: Headers
    backfill: bool


@pytest.mark.parametrize(
    "case",
    [
        HeaderCase(None, False),
        HeaderCase((), False),
        HeaderCase(BACKFILL_HEADERS, True),
        HeaderCase([("trace", b"x"), (BACKFILL_HEADER, b"1")], True),
        HeaderCase([(BACKFILL_HEADER, b"0")], False),
        HeaderCase([(BACKFILL_HEADER, b"")], False),
        HeaderCase([("Afflux-Backfill", b"1")], False),  # Kafka header names are exact
        HeaderCase({BACKFILL_HEADER: b"1"}, True),
    ],
)
def test_which_headers_mark_a_backfill(case: HeaderCase) -> None:
    assert is_backfill(case.headers) is case.backfill


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


def renewal(at: int) -> SubscriptionRenewed:
    return SubscriptionRenewed(
        event_id=f"renewal-ev-{at}",
        occurred_at=at,
        order_id="order",
        renewal_order_id=f"order:renewal-{at}",
        renewal_number=1,
        campaign_id="camp",
        merchant_id="merchant",
        amount_minor=1_000,
        currency="EUR",
    )


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


def confirmation(at: int) -> LeadConfirmed:
    return LeadConfirmed(event_id=f"lead-ev-{at}", occurred_at=at, order_id="o", campaign_id="camp")


PLACED = [(ORDERS.name, order), (REFUNDS.name, refund), (REFUNDS.name, renewal)]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("make", [order, refund, renewal], ids=lambda f: f.__name__)
def test_the_oracle_leaves_out_exactly_the_events_the_worker_refuses(case: Case, make: Any) -> None:
    event = make(case.occurred_at)
    campaigns = {"camp": (VERSION,)}
    assert (admitted([(event, TS)], SKEW, campaigns) == []) is case.refused
    # A record marked a backfill is held to the upper bound only.
    assert admitted([(event, TS, True)], SKEW, campaigns) == [event]
    # Without the campaigns the oracle applies the upper bound only (as before).
    assert admitted([(event, TS)], SKEW) == [event]


def handled(
    topic: str, event: Envelope, headers: Headers = (), **runtime_args: Any
) -> tuple[list[DeadLetter], Runtime]:
    """The dead letters of one record at ``TS`` holding ``event``."""
    sent: list[tuple[str, bytes | None]] = []
    rt = recording_runtime(sent, VERSION, "too-old", **runtime_args)

    async def run() -> None:
        rt.join.owned[0] = Owned(rt.join.new_state())
        rt.refunds.owned[0] = Owned(rt.refunds.new_state())
        stage = rt.refunds if topic == REFUNDS.name else rt.join
        record = Record(topic, 0, 0, b"k", encode(event), TS, tuple(headers or ()))
        await stage.handle(record)

    asyncio.run(run())
    letters = [e for t, v in sent if t == DLQ.name for e in decode_record(v)]
    assert all(isinstance(letter, DeadLetter) for letter in letters)
    return [letter for letter in letters if isinstance(letter, DeadLetter)], rt


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@pytest.mark.parametrize(("topic", "make"), PLACED, ids=["order", "refund", "renewal"])
def test_an_order_refund_or_renewal_too_old_for_its_record_is_dead_lettered(
    case: Case, topic: str, make: Any
) -> None:
    letters, rt = handled(topic, make(case.occurred_at))
    stage = rt.refunds if topic == REFUNDS.name else rt.join
    owned = stage.owned[0]
    if not case.refused:
        assert [letter.reason for letter in letters] == []
        return
    [letter] = letters
    assert letter.reason.startswith(f"{EVENT_TIME_TOO_OLD}: occurred_at {case.occurred_at} ")
    assert f"is {TS - case.occurred_at} ms before the record's timestamp {TS}" in letter.reason
    assert f"(allowed: {ALLOWED} ms" in letter.reason
    assert (letter.source_topic, letter.source_offset) == (topic, 0)
    assert owned.consumed[topic] == 1  # refused, never retried
    assert owned.state.watermark == 0  # it changed nothing
    assert not owned.state.dirty


@pytest.mark.parametrize(("topic", "make"), PLACED, ids=["order", "refund", "renewal"])
def test_a_record_marked_a_backfill_is_taken_however_old(topic: str, make: Any) -> None:
    old = TS - 400 * MS_PER_DAY  # what the orders service's admin backfill takes
    letters, rt = handled(topic, make(old), BACKFILL_HEADERS)
    assert letters == []
    stage = rt.refunds if topic == REFUNDS.name else rt.join
    assert stage.owned[0].state.watermark == old


@pytest.mark.parametrize(
    ("topic", "make"),
    [(CLICKS.name, click), (ORDERS.name, confirmation)],
    ids=["click", "lead confirmation"],
)
def test_clicks_and_lead_confirmations_are_not_held_to_the_backfill_limit(
    topic: str, make: Any
) -> None:
    """The orders API takes a confirmation of any age (it decides nothing by its time);
    a click is stamped by the clicks service and no order limit applies to it."""
    letters, _ = handled(topic, make(TS - 400 * MS_PER_DAY))
    assert letters == []


def test_the_orders_services_setting_replaces_the_limit_for_every_campaign() -> None:
    allowed = allowed_age_ms(10 * MS_PER_DAY, SKEW)  # AFFLUX_ORDERS_BACKFILL_LIMIT_DAYS=10
    assert handled(ORDERS.name, order(TS - allowed), backfill_limit_days=10)[0] == []
    [letter] = handled(ORDERS.name, order(TS - allowed - 1), backfill_limit_days=10)[0]
    assert letter.reason.startswith(EVENT_TIME_TOO_OLD)
    # The oracle, given the same setting, leaves it out too.
    event = order(TS - allowed - 1)
    assert admitted([(event, TS)], SKEW, {"camp": (VERSION,)}, backfill_limit_days=10) == []


def test_newer_terms_may_lift_the_refusal() -> None:
    """A campaign whose terms just lengthened its window or lock: the worker's view may
    be a fetch behind the orders service's, so the refusal waits for it (terms_recheck)."""
    assert EVENT_TIME_TOO_OLD in TERMS_REFUSALS


@dataclass(frozen=True)
class ApiCase:
    name: str
    reported: int  # the merchant's (or operator's) occurred_at
    backfill: bool  # sent through the admin backfill


NOW = TS  # the orders service's receive time
API_CASES = [
    ApiCase("in real time", NOW - 1_000, False),
    ApiCase("a late report at the backfill limit", NOW - LIMIT, False),
    ApiCase("a late report 1 ms inside it", NOW - LIMIT + 1, False),
    ApiCase("an admin backfill of 400 days", NOW - 400 * MS_PER_DAY, True),
    # The oldest the orders API takes: before it, a time reads as seconds.
    ApiCase("an admin backfill of 1973-03-03", 100_000_000_000, True),
]


@pytest.mark.parametrize("case", API_CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("delay_ms", [0, 2_000, SKEW])
def test_the_worker_takes_whatever_the_orders_api_placed(case: ApiCase, delay_ms: int) -> None:
    """The orders service places the event at its receive time ``NOW`` and its producer
    stamps the record up to the skew later; an admin backfill's record carries the
    backfill header."""
    placed = place(case.reported, NOW, TimeLimits(SKEW, LIMIT), backfill=case.backfill)
    headers = BACKFILL_HEADERS if case.backfill else ()
    event = order(placed.occurred_at)
    sent: list[tuple[str, bytes | None]] = []
    rt = recording_runtime(sent, VERSION, "api-agreement")

    async def run() -> None:
        rt.join.owned[0] = Owned(rt.join.new_state())
        record = Record(ORDERS.name, 0, 0, b"k", encode(event), NOW + delay_ms, headers)
        await rt.join.handle(record)

    asyncio.run(run())
    assert [t for t, _ in sent if t == DLQ.name] == []


def test_the_orders_api_refuses_what_it_would_have_to_backfill() -> None:
    """The other side of the edge: the merchant API refuses 1 ms past the limit (the
    worker allows the skew on top, for the time between placing and stamping)."""
    with pytest.raises(Rejected):
        place(NOW - LIMIT - 1, NOW, TimeLimits(SKEW, LIMIT))
