"""Where an order or refund lands in event time: a real-time report on our clock (moved by
the merchant's clock offset its signature tells, else at the receive time), a late one
moved by the same offset (at its own time when unsigned), refused when too far ahead or
too old."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from afflux.orders.errors import Rejected
from afflux.orders.placement import Placement, TimeLimits, event_time, place
from afflux.orders.rules import OrderRequest, RefundRequest, order_event, refund_event
from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.event_time import (
    BackfillLimits,
    allowed_age_ms,
    backfill_limit_ms,
    event_time_too_old,
)
from afflux.shared.core.periods import period_of
from afflux.shared.core.terms import CampaignTerms, TermsVersion

pytestmark = pytest.mark.unit

NOW = 1_790_000_000_000
SKEW = 300_000
LIMIT = 60 * MS_PER_DAY
LIMITS = TimeLimits(skew_ms=SKEW, backfill_limit_ms=LIMIT)


@dataclass(frozen=True)
class Case:
    name: str
    reported: int  # the merchant's occurred_at
    expected: Placement | None  # None: refused, naming occurred_at
    backfill: bool = False


CASES = [
    # The merchant's clock agrees with ours.
    Case("at the receive time", NOW, Placement(NOW, NOW)),
    # A slow merchant clock within the allowance: placed at receive time, its time kept.
    Case("4 minutes slow", NOW - 240_000, Placement(NOW, NOW - 240_000)),
    # The slow edge is inclusive.
    Case("exactly the skew behind", NOW - SKEW, Placement(NOW, NOW - SKEW)),
    # 1 ms further back is a late report: it keeps its own time, nothing reported aside.
    Case("1 ms past the skew behind", NOW - SKEW - 1, Placement(NOW - SKEW - 1)),
    # A fast merchant clock within the allowance: placed at receive time too.
    Case("4 minutes fast", NOW + 240_000, Placement(NOW, NOW + 240_000)),
    # The future edge is inclusive.
    Case("exactly the skew ahead", NOW + SKEW, Placement(NOW, NOW + SKEW)),
    # Beyond it the clock is wrong, not skewed: refused.
    Case("1 ms past the skew ahead", NOW + SKEW + 1, None),
    # An order an hour old keeps its time.
    Case("an hour old", NOW - 3_600_000, Placement(NOW - 3_600_000)),
    # The backfill limit is inclusive.
    Case("exactly at the backfill limit", NOW - LIMIT, Placement(NOW - LIMIT)),
    # 1 ms older needs an explicit backfill.
    Case("1 ms past the backfill limit", NOW - LIMIT - 1, None),
    # Far in the past, e.g. 400 days.
    Case("400 days old", NOW - 400 * MS_PER_DAY, None),
    # An admin backfill lifts the age limit ...
    Case("backfill 400 days old", NOW - 400 * MS_PER_DAY, Placement(NOW - 400 * MS_PER_DAY), True),
    # ... and keeps even a recent time exactly as sent (the operator vouches for it).
    Case("backfill 4 minutes slow", NOW - 240_000, Placement(NOW - 240_000), True),
    # ... but not the future limit.
    Case("backfill 1 ms past the skew ahead", NOW + SKEW + 1, None, True),
    # A backfill records what already happened: dated ahead of now, a terms version
    # published meanwhile for a time before it would price it otherwise in a replay.
    Case("backfill at the receive time", NOW, Placement(NOW), True),
    Case("backfill 1 ms in the future", NOW + 1, None, True),
    Case("backfill exactly the skew ahead", NOW + SKEW, None, True),
    # Seconds sent for milliseconds (1970-01-21): the hint to backfill paid it into 1970.
    Case("seconds for milliseconds", NOW // 1000, None),
    Case("backfill of seconds for milliseconds", NOW // 1000, None, True),
    Case("backfill of the last millisecond read as seconds", 99_999_999_999, None, True),
    Case("backfill of 1973-03-03T09:46:40Z", 100_000_000_000, Placement(100_000_000_000), True),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_event_time_placement(case: Case) -> None:
    if case.expected is not None:
        assert place(case.reported, NOW, LIMITS, backfill=case.backfill) == case.expected
    else:
        with pytest.raises(Rejected) as raised:
            place(case.reported, NOW, LIMITS, backfill=case.backfill)
        assert (raised.value.status, raised.value.field) == (422, "occurred_at")


@dataclass(frozen=True)
class SignedCase:
    name: str
    reported: int  # the merchant's occurred_at, by its clock
    signed_at: int  # the signature's timestamp, by its clock
    expected: Placement | None


S, M, H, D = 1_000, 60_000, 3_600_000, MS_PER_DAY  # a second, minute, hour, day
SIGNED_CASES = [
    # The merchant's clock agrees with ours, the postback 4 minutes late: placed at the
    # purchase, not at the receive time, so a click made after it cannot win it.
    SignedCase("right, 4 min late", NOW - 4 * M, NOW, Placement(NOW - 4 * M, NOW - 4 * M)),
    # A clock 4 minutes slow, sent at once: moved by the skew, onto the receive time.
    SignedCase("slow, at once", NOW - 4 * M, NOW - 4 * M, Placement(NOW, NOW - 4 * M)),
    # 4 minutes slow and sent 1 minute after the purchase.
    SignedCase("slow, 1 min late", NOW - 5 * M, NOW - 4 * M, Placement(NOW - M, NOW - 5 * M)),
    # 4 minutes fast and sent 2 minutes late: the purchase was 2 minutes ago by our clock.
    SignedCase("fast, 2 min late", NOW + 2 * M, NOW + 4 * M, Placement(NOW - 2 * M, NOW + 2 * M)),
    # Never later than the receive time: a purchase dated after the request was signed.
    SignedCase("dated after its signing", NOW + 5_000, NOW, Placement(NOW, NOW + 5_000)),
    # A late report from a clock that agrees with ours keeps its own time, the
    # signature's whole seconds (rounded down) telling nothing under a second.
    SignedCase("a late report", NOW - 3_600_000, NOW, Placement(NOW - 3_600_000)),
    SignedCase("a late report, t rounded down", NOW - H, NOW - 999, Placement(NOW - H)),
    SignedCase("a late report, 1 s slow", NOW - H, NOW - S, Placement(NOW - H + S, NOW - H)),
    SignedCase("a late report, 1 s fast", NOW - H, NOW + S, Placement(NOW - H - S, NOW - H)),
    # A late report is moved by the offset too: left at its own time, a clock 4 minutes
    # slow put an order reported 65 s after the purchase 4 minutes before it (before the
    # click that led to it), where one reported 55 s after was moved onto the purchase.
    SignedCase(
        "slow, 55 s late", NOW - 4 * M - 55 * S, NOW - 4 * M,
        Placement(NOW - 55 * S, NOW - 4 * M - 55 * S),
    ),
    SignedCase(
        "slow, 65 s late", NOW - 4 * M - 65 * S, NOW - 4 * M,
        Placement(NOW - 65 * S, NOW - 4 * M - 65 * S),
    ),
    # ... and a clock 4 minutes fast put one reported 9 minutes late after clicks made
    # after the purchase.
    SignedCase("fast, 9 min late", NOW - 5 * M, NOW + 4 * M, Placement(NOW - 9 * M, NOW - 5 * M)),
    # A nightly batch from a clock 2 minutes slow: every order moved by the 2 minutes.
    SignedCase(
        "slow, a day late", NOW - D - 2 * M, NOW - 2 * M, Placement(NOW - D, NOW - D - 2 * M)
    ),
    # The backfill limit holds for the moved time, as the attribution worker checks it:
    # held to the merchant's, a fast clock's report at the limit was taken here and
    # dead-lettered there (event_time_too_old).
    SignedCase("fast, at the limit", NOW - LIMIT, NOW + 4 * M, None),
    SignedCase(
        "fast, at the limit on our clock", NOW - LIMIT + 4 * M, NOW + 4 * M,
        Placement(NOW - LIMIT, NOW - LIMIT + 4 * M),
    ),
    SignedCase(
        "slow, 1 ms past the limit by its clock", NOW - LIMIT - 1, NOW - 4 * M,
        Placement(NOW - LIMIT - 1 + 4 * M, NOW - LIMIT - 1),
    ),
    SignedCase("1 ms past the skew ahead", NOW + SKEW + 1, NOW, None),
    SignedCase("right, at once, dated ahead", NOW + 400, NOW, Placement(NOW, NOW + 400)),
    # Dated to the whole second as it is signed (``date +%s000``): moved onto the receive
    # time, after a click made a moment before (kept, it came before that click).
    SignedCase("whole seconds, at once", NOW - 999, NOW - 999, Placement(NOW, NOW - 999)),
]  # fmt: skip

MONTH_END = 1_796_083_199_999  # 2026-11-30T23:59:59.999Z, the last ms of a month


@pytest.mark.parametrize(
    ("name", "reported", "signed_at", "received", "placed"),
    [
        # A right clock: the signature's rounding and transit (1.149 s) would have moved
        # the purchase into December.
        ("right clock", MONTH_END, MONTH_END - 999, MONTH_END + 150, MONTH_END),
        ("right clock, ms earlier", MONTH_END - 500, MONTH_END - 999, MONTH_END + 150, MONTH_END),
        # Within the day the rounding still moves it (a click a moment before must win).
        ("right clock, within the day", MONTH_END - 5_000, MONTH_END - 5_999, MONTH_END - 4_850,
         MONTH_END - 4_850),
        # A late report from a right clock: its offset (1.1 s) tells nothing either.
        ("right clock, 10 min late", MONTH_END - 99, MONTH_END + 599_001, MONTH_END + 600_101,
         MONTH_END),
        # Two seconds or more off ours is a clock that is off: moved across midnight.
        ("2 s slow", MONTH_END - 2_000, MONTH_END - 2_999, MONTH_END + 1, MONTH_END + 1),
    ],
)  # fmt: skip
def test_a_purchase_in_a_days_last_second_is_not_moved_into_the_next_by_rounding(
    name: str, reported: int, signed_at: int, received: int, placed: int
) -> None:
    at = place(reported, received, LIMITS, signed_at_ms=signed_at // 1000 * 1000).occurred_at
    assert at == placed
    assert (period_of(at, "month") == "2026-11") is (placed <= MONTH_END)


@pytest.mark.parametrize("case", SIGNED_CASES, ids=[c.name for c in SIGNED_CASES])
def test_a_signed_real_time_report_is_moved_by_the_merchants_clock_offset(
    case: SignedCase,
) -> None:
    if case.expected is not None:
        assert place(case.reported, NOW, LIMITS, signed_at_ms=case.signed_at) == case.expected
    else:
        with pytest.raises(Rejected):
            place(case.reported, NOW, LIMITS, signed_at_ms=case.signed_at)


def test_too_old_names_the_limit_and_the_backfill_endpoint() -> None:
    with pytest.raises(Rejected) as raised:
        place(NOW - LIMIT - 1, NOW, LIMITS, what="refunds")
    assert "60 days" in raised.value.reason
    assert "/v1/admin/backfill/refunds" in raised.value.reason


def test_too_far_ahead_names_the_allowance() -> None:
    with pytest.raises(Rejected) as raised:
        place(NOW + SKEW + 1, NOW, LIMITS)
    assert "300 s in the future" in raised.value.reason


def version(number: int, **terms: object) -> TermsVersion:
    return TermsVersion(
        version=number,
        effective_from=0,
        published_at=0,
        terms=CampaignTerms.model_validate(
            {"campaign_id": "shop", "merchant_id": "m", "currency": "EUR", **terms}
        ),
    )


@dataclass(frozen=True)
class LimitCase:
    name: str
    versions: tuple[TermsVersion, ...]
    configured_days: int | None
    days: int


LIMIT_CASES = [
    # Defaults: a 30-day window and a 30-day lock.
    LimitCase("defaults", (version(1),), None, 60),
    # A creator's longer window counts.
    LimitCase(
        "a longer override",
        (version(1, window_overrides_days={"ana": 90}, lock_days=14),),
        None,
        104,
    ),
    # The longest window and the longest lock may come from different versions.
    LimitCase(
        "across versions",
        (version(1, cookie_window_days=7, lock_days=45), version(2, cookie_window_days=90)),
        None,
        135,
    ),
    # A configured limit replaces the campaign's.
    LimitCase("configured", (version(1),), 10, 10),
]


@pytest.mark.parametrize("case", LIMIT_CASES, ids=[c.name for c in LIMIT_CASES])
def test_backfill_limit_is_longest_window_plus_longest_lock(case: LimitCase) -> None:
    assert backfill_limit_ms(case.versions, case.configured_days) == case.days * MS_PER_DAY


def from_day(day: int, number: int, **terms: object) -> TermsVersion:
    return version(number, **terms).model_copy(update={"effective_from": day * MS_PER_DAY})


# V1 from the start: a 7-day window, 30-day lock; V2 from day 60: a 60-day window;
# V3 from day 90: a 45-day lock.
STEPPED = (
    version(1, cookie_window_days=7, lock_days=30),
    from_day(60, 2, cookie_window_days=60, lock_days=30),
    from_day(90, 3, cookie_window_days=7, lock_days=45),
)


@pytest.mark.parametrize(
    ("at_day", "days"),
    [
        (-5, 37),  # before the first version: the first's
        (12, 37),  # V1 alone: V2, published later, does not reopen older orders
        (60, 90),  # from V2's very start
        (89, 90),
        (90, 105),  # the longest window so far (V2's 60) + V3's lock
        (None, 105),  # any time: the longest the campaign gives (the worker's pruning)
    ],
)
def test_the_backfill_limit_counts_the_versions_in_force_by_the_events_time(
    at_day: int | None, days: int
) -> None:
    at = None if at_day is None else at_day * MS_PER_DAY
    assert backfill_limit_ms(STEPPED, None, at=at) == days * MS_PER_DAY
    assert backfill_limit_ms(STEPPED, 10, at=at) == 10 * MS_PER_DAY


def test_a_version_corrected_at_its_own_instant_still_counts_for_the_backfill_limit() -> None:
    # V2 (a 365-day window) was replaced at its very start by V3 (30 days): never in force,
    # but a log taken under its limit must replay the same, so it counts from its start.
    corrected = (
        version(1, cookie_window_days=30, lock_days=30),
        from_day(100, 2, cookie_window_days=365, lock_days=30),
        from_day(100, 3, cookie_window_days=30, lock_days=30),
    )
    assert backfill_limit_ms(corrected, None, at=50 * MS_PER_DAY) == 60 * MS_PER_DAY
    for at_day in (100, 101, None):
        at = None if at_day is None else at_day * MS_PER_DAY
        assert backfill_limit_ms(corrected, None, at=at) == 395 * MS_PER_DAY


TERMS = CampaignTerms(campaign_id="shop", merchant_id="merchant-a", currency="EUR")


def test_the_order_event_carries_the_placed_and_the_reported_time() -> None:
    request = OrderRequest(
        order_id="o-1",
        campaign_id="shop",
        occurred_at=NOW - 240_000,
        amount_minor=100,
        currency="EUR",
        visitor_id="v-1",
    )
    event = order_event(request, TERMS, "merchant-a", place(NOW - 240_000, NOW, LIMITS))
    assert (event.occurred_at, event.reported_occurred_at) == (NOW, NOW - 240_000)


def test_the_refund_event_carries_the_placed_and_the_reported_time() -> None:
    request = RefundRequest(
        refund_id="r-1",
        order_id="o-1",
        campaign_id="shop",
        occurred_at=NOW + 1,
        amount_minor=100,
        currency="EUR",
    )
    event = refund_event(request, TERMS, "merchant-a", place(NOW + 1, NOW, LIMITS))
    assert (event.occurred_at, event.reported_occurred_at) == (NOW, NOW + 1)
    late = refund_event(request, TERMS, "merchant-a", Placement(NOW - 3_600_000))
    assert (late.occurred_at, late.reported_occurred_at) == (NOW - 3_600_000, None)


def _version(number: int, day: int, window: int) -> TermsVersion:
    terms = CampaignTerms.model_validate(
        {
            "campaign_id": "shop",
            "merchant_id": "m",
            "currency": "EUR",
            "cookie_window_days": window,
            "lock_days": 30,
        }
    )
    start = day * MS_PER_DAY
    return TermsVersion(version=number, effective_from=start, published_at=0, terms=terms)


# 7 + 30 days until day 60, then 60 + 30: the limit depends on the time it is taken at.
LENGTHENED = (_version(1, 0, 7), _version(2, 60, 60))


@pytest.mark.parametrize("offset", [-299_000, -240_000, -1_000, 0, 1_000, 240_000, 299_000])
@pytest.mark.parametrize(
    ("day", "late_days"), [(60, 50), (60, 37), (10, 37), (100, 37), (100, 90), (61, 90)]
)
def test_every_report_the_orders_service_takes_the_worker_takes_too(
    offset: int, day: int, late_days: int
) -> None:
    """The orders service and the attribution worker hold a report to the same limit, at
    the same time (the one produced): a report from a fast clock at the limit, or across
    a version that lengthened it, was taken here (202) and dead-lettered there
    (event_time_too_old), its commission lost."""
    for edge in (-60_000, -1, 0, 1, 60_000):
        bought_at = day * MS_PER_DAY + edge  # on our clock
        now = bought_at + late_days * MS_PER_DAY
        reported, signed_at = bought_at + offset, now + offset
        at = event_time(reported, now, SKEW, signed_at)
        limits = TimeLimits(SKEW, backfill_limit_ms(LENGTHENED, None, at=at))
        try:
            placed = place(reported, now, limits, signed_at_ms=signed_at)
        except Rejected:
            continue
        worker_limit = BackfillLimits.of(LENGTHENED, None).at(placed.occurred_at)
        record_stamped = now + 5_000  # a producer's batching, a retry
        assert not event_time_too_old(
            placed.occurred_at, record_stamped, allowed_age_ms(worker_limit, SKEW)
        ), (edge, placed)


def test_a_time_in_seconds_is_refused_saying_it_reads_as_seconds() -> None:
    with pytest.raises(Rejected) as refused:
        place(NOW // 1000, NOW, LIMITS, backfill=True)

    assert refused.value.field == "occurred_at"
    assert refused.value.reason == (
        "1790000000 is 1970-01-21T17:13:20.000Z in milliseconds: it reads as seconds since"
        " the epoch; afflux times are milliseconds (1790000000000 for"
        " 2026-09-21T14:13:20.000Z) or RFC 3339 with a zone"
    )
