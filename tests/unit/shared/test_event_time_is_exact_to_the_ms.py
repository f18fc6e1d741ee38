"""Event times are integer milliseconds, and a time given as RFC 3339 must land on the
same millisecond as the same time given as an integer: a cookie window, a return
window and the backfill bound are all compared to the millisecond.

``to_ms`` went through a float of seconds (``int(moment.timestamp() * 1000)``) and
gave one millisecond less for some times (about one in two hundred before mid-2004
and from 2038 on; none of the years between), so an order one millisecond after its
window could be taken as inside it. The worker's record timestamps went the same
way: Faust hands them over as float seconds."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from afflux.attribution.app import _record
from afflux.shared.core.clock import from_ms, parse_event_time, to_ms

pytestmark = pytest.mark.unit

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def rfc3339(ms: int) -> str:
    return (EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds")


@pytest.mark.parametrize(
    ("text", "expected_ms"),
    [
        # times whose float of seconds, times 1000, fell just under the millisecond
        ("2038-02-06T11:51:48.482Z", 2_149_069_908_482),
        ("2039-02-08T04:17:49.719Z", 2_180_751_469_719),
        ("2004-05-31T13:17:20.909Z", 1_086_009_440_909),
        ("1987-04-25T15:38:30.810Z", 546_363_510_810),
        ("1970-01-01T00:00:00.000Z", 0),
        ("1970-01-01T00:00:00.001Z", 1),
        # below a millisecond: rounded down, as integer milliseconds always were
        ("2026-11-01T10:00:00.123999Z", 1_793_527_200_123),
        ("2026-11-01T10:00:00.9999Z", 1_793_527_200_999),
        # an offset other than UTC
        ("2026-11-01T12:00:00.123+02:00", 1_793_527_200_123),
    ],
)
def test_rfc3339_time_lands_on_its_exact_millisecond(text: str, expected_ms: int) -> None:
    assert parse_event_time(text) == expected_ms


@pytest.mark.parametrize(
    ("first_year", "last_year"),
    [(1971, 1988), (2004, 2008), (2024, 2030), (2038, 2040), (2100, 2110)],
)
def test_every_millisecond_round_trips_through_rfc3339(first_year: int, last_year: int) -> None:
    rng = random.Random(first_year)
    low = to_ms(datetime(first_year, 1, 1, tzinfo=UTC))
    high = to_ms(datetime(last_year, 1, 1, tzinfo=UTC))
    for ms in (rng.randrange(low, high) for _ in range(20_000)):
        assert parse_event_time(rfc3339(ms)) == ms
        assert to_ms(from_ms(ms)) == ms


@pytest.mark.parametrize("ms", [-(10**15), 10**15, 10**20])
def test_a_time_outside_what_a_datetime_holds_is_a_value_error(ms: int) -> None:
    with pytest.raises(ValueError, match="outside the years"):
        from_ms(ms)


@pytest.mark.parametrize("ms", [2_149_069_908_482, 2_180_751_469_719, 1_796_371_767_747])
def test_a_record_timestamp_from_faust_keeps_its_millisecond(ms: int) -> None:
    # Faust's message: the broker's integer milliseconds divided by 1000.0
    message = SimpleNamespace(
        topic="orders",
        partition=0,
        offset=7,
        key=b"k",
        value=b"v",
        timestamp=ms / 1000.0,
        headers=None,
    )
    assert _record(message).timestamp == ms


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("20261204T230000Z", "not an RFC 3339 time with a zone"),  # ISO 8601 basic format
        ("2026-W49-5T23:00:00Z", "not an RFC 3339 time with a zone"),  # a week date
        ("2026-12-04T23:00:00", "not an RFC 3339 time with a zone"),  # no zone
        ("2026-12-04T23:00:00+0000", "not an RFC 3339 time with a zone"),
        ("2026-12-04", "not an RFC 3339 time with a zone"),
        ("2026-12-04T23:00:00\u0665Z", "not an RFC 3339 time with a zone"),  # other digits
        ("0001-01-01T00:00:00Z", "is before 1970-01-01T00:00:00Z, where event times start"),
        ("1969-12-31T23:59:59.999Z", "is before 1970-01-01T00:00:00Z"),
    ],
)
def test_a_time_that_is_not_rfc3339_or_before_the_epoch_is_refused_saying_why(
    text: str, reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_event_time(text)


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-04T23:00:00Z",
        "2026-12-04t23:00:00z",
        "2026-12-04 23:00:00+01:00",
        " 2026-12-04T23:00:00.5Z ",
    ],
)
def test_rfc3339_times_in_each_form_it_allows_are_read(text: str) -> None:
    assert parse_event_time(text) > 0


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2026-12-31T23:59:60Z", "a leap second: times here have none"),
        ("2027-02-29T12:00:00Z", "2027-02 has no day 29"),
        ("2026-04-31T00:00:00Z", "2026-04 has no day 31"),
        ("2027-13-01T00:00:00Z", "there is no month 13"),
        ("2027-01-01T24:00:00Z", "hours run to 23, minutes and seconds to 59"),
        ("2027-01-01T00:00:00+24:00", "outside the years 1 to 9999 or the offsets"),
    ],
)
def test_a_time_in_rfc3339_form_naming_no_instant_says_why(text: str, reason: str) -> None:
    """The merchant's string is RFC 3339 in form: the answer names what is wrong with it
    rather than its format."""
    with pytest.raises(ValueError, match="no such time") as refused:
        parse_event_time(text)

    assert reason in str(refused.value)


def test_a_leap_day_is_a_time() -> None:
    assert parse_event_time("2028-02-29T23:59:59.999Z") == 1_835_481_599_999
