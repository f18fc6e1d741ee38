"""Commission periods: month and ISO week names, their UTC bounds, and malformed names."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from afflux.shared.core.clock import to_ms
from afflux.shared.core.periods import (
    BadPeriod,
    payout_period,
    period_bounds,
    period_end,
    period_of,
)
from afflux.shared.core.terms import Period

pytestmark = pytest.mark.unit


def ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    return to_ms(datetime(year, month, day, hour, minute, second, tzinfo=UTC))


@pytest.mark.parametrize(
    ("at", "kind", "expect"),
    [
        (ms(2026, 11, 1), "month", "2026-11"),  # the first millisecond of the month
        (ms(2026, 11, 1) - 1, "month", "2026-10"),  # the last millisecond of the one before
        (ms(2026, 12, 31, 23, 59, 59), "month", "2026-12"),  # December, not the next year
        (ms(2027, 1, 1), "month", "2027-01"),  # zero-padded month
        (ms(2026, 11, 16), "week", "2026-W47"),  # a Monday starts its week
        (ms(2026, 11, 16) - 1, "week", "2026-W46"),  # Sunday 23:59:59.999 ends the one before
        (ms(2026, 1, 1), "week", "2026-W01"),  # a Thursday 1 January is in week 1
        (ms(2025, 12, 29), "week", "2026-W01"),  # week 1 may start in the previous year
        (ms(2027, 1, 1), "week", "2026-W53"),  # and a year may end in week 53 of the last
        (ms(2024, 12, 30), "week", "2025-W01"),  # ISO year, not calendar year
        (ms(2026, 3, 2), "week", "2026-W10"),  # zero-padded week
    ],
)
def test_period_of_names_months_and_iso_weeks_in_utc(at: int, kind: Period, expect: str) -> None:
    assert period_of(at, kind) == expect


@pytest.mark.parametrize(
    ("name", "start", "end"),
    [
        ("2026-11", ms(2026, 11, 1), ms(2026, 12, 1)),  # 30 days
        ("2026-12", ms(2026, 12, 1), ms(2027, 1, 1)),  # December ends in the next year
        ("2026-01", ms(2026, 1, 1), ms(2026, 2, 1)),
        ("2024-02", ms(2024, 2, 1), ms(2024, 3, 1)),  # leap February: 29 days
        ("2026-02", ms(2026, 2, 1), ms(2026, 3, 1)),  # 28 days
        ("1970-01", 0, ms(1970, 2, 1)),  # the earliest month
        ("2026-W47", ms(2026, 11, 16), ms(2026, 11, 23)),  # Monday to Monday
        ("2026-W01", ms(2025, 12, 29), ms(2026, 1, 5)),  # starts in the previous year
        ("2026-W53", ms(2026, 12, 28), ms(2027, 1, 4)),  # 2026 has 53 ISO weeks
        ("2025-W01", ms(2024, 12, 30), ms(2025, 1, 6)),
    ],
)
def test_period_bounds_are_half_open_utc_intervals(name: str, start: int, end: int) -> None:
    assert period_bounds(name) == (start, end)
    assert period_end(name) == end


@pytest.mark.parametrize(
    "at",
    [ms(2026, 11, 1), ms(2026, 11, 30, 23, 59, 59), ms(2026, 12, 31, 12), ms(2027, 1, 3, 23)],
)
@pytest.mark.parametrize("kind", ["month", "week"])
def test_a_moment_lies_in_the_bounds_of_its_period(at: int, kind: Period) -> None:
    start, end = period_bounds(period_of(at, kind))
    assert start <= at < end
    assert period_of(start, kind) == period_of(end - 1, kind) == period_of(at, kind)
    assert period_of(end, kind) != period_of(at, kind)


@pytest.mark.parametrize(
    "name",
    [
        "2026-13",  # no 13th month
        "2026-00",  # no month 0
        "1969-12",  # before 1970
        "1969-W01",  # a week before 1970
        "9999-12",  # would end in year 10000, beyond what a datetime holds
        "9999-W52",  # likewise
        "2026-1",  # the month needs two digits
        "26-11",  # the year needs four
        "2026/11",  # wrong separator
        "2026-11-01",  # a day, not a period
        "2026-W00",  # no week 0
        "2026-W54",  # no week 54
        "2025-W53",  # 2025 has 52 ISO weeks
        "2026-W7",  # the week needs two digits
        "2026-w47",  # the W is upper case
        "2026W47",  # the dash is required
        "2026-W47-1",  # a weekday, not a period
        " 2026-11",  # no surrounding blanks
        "2026-11 ",
        "",
        "current",
        # ASCII digits only: other scripts' digits read as the same numbers, so a run
        # paid under a name no statement or ledger query could name
        "\u0662\u0660\u0662\u0666-\u0661\u0662",  # Arabic-Indic 2026-12
        "\u06f2\u06f0\u06f2\u06f6-\u06f1\u06f2",  # Extended Arabic-Indic (Persian)
        "\uff12\uff10\uff12\uff16-\uff11\uff12",  # fullwidth
        "2026-\u0661\u0662",  # one part only
        "\u0662\u0660\u0662\u0666-W\u0664\u0667",  # an ISO week, 2026-W47
        "2026-W\uff14\uff17",
        "\U0001d7e4\U0001d7e2\U0001d7e4\U0001d7e8-11",  # mathematical sans-serif digits
        # nothing after the name: "$" matched before a final newline
        "2026-12\n",
        "2026-W47\n",
        "2026-12\r\n",
        "2026-12\n\n",
    ],
    ids=ascii,
)
def test_malformed_period_names_raise_bad_period(name: str) -> None:
    with pytest.raises(BadPeriod):
        period_bounds(name)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("\u0662\u0660\u0662\u0666-\u0661\u0662", "use YYYY-MM for a month or YYYY-Www"),
        ("2026-12\n", "use YYYY-MM for a month or YYYY-Www"),
        ("2026-13", "no such month"),  # the shape is right, the month is not
    ],
    ids=ascii,
)
def test_a_bad_period_says_why_naming_the_name_as_given(name: str, reason: str) -> None:
    with pytest.raises(BadPeriod) as refused:
        period_bounds(name)
    assert str(refused.value).startswith(repr(name))
    assert reason in str(refused.value)


def test_bad_period_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="YYYY-MM"):
        period_bounds("november")


DEC_13 = ms(2026, 12, 13)  # a Sunday: week 2026-W50, month 2026-12


@pytest.mark.parametrize(
    ("asked", "cadence", "paid_under"),
    [
        ("2027-W01", "week", "2027-W01"),  # a week asked of a weekly campaign: as asked
        ("2027-01", "month", "2027-01"),  # a month asked of a monthly campaign: as asked
        ("2027-W01", "month", "2026-12"),  # never a week's name for a monthly campaign
        ("2027-01", "week", "2026-W50"),  # nor a month's for a weekly one
        (None, "month", "2026-12"),  # nothing asked: the campaign's own period at as_of
        (None, "week", "2026-W50"),
    ],
)
def test_a_campaign_is_paid_under_a_period_of_its_own_cadence(
    asked: str | None, cadence: Period, paid_under: str
) -> None:
    assert payout_period(asked, DEC_13, cadence) == paid_under
