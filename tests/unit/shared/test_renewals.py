"""Recurring commissions: which renewals of a first order earn (afflux.shared.core.renewals)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pytest
from pydantic import ValidationError

from afflux.shared.core.renewals import (
    BEYOND_LIMIT,
    NO_RECURRING_TERMS,
    add_months,
    renewal_refusal,
)
from afflux.shared.core.terms import RecurringCommission

pytestmark = pytest.mark.unit


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


FIRST = ms("2026-01-31T10:00:00+00:00")
BY_COUNT = RecurringCommission.model_validate({"rate": {"percent": "10"}, "max_renewals": 3})
BY_MONTHS = RecurringCommission.model_validate({"rate": {"percent": "10"}, "max_months": 1})


@dataclass(frozen=True)
class Case:
    name: str
    recurring: RecurringCommission | None
    number: int
    at: int
    refusal: str


CASES = [
    # The last renewal the count allows earns.
    Case("renewal 3 of 3", BY_COUNT, 3, FIRST + 1, ""),
    # One past it does not.
    Case("renewal 4 of 3", BY_COUNT, 4, FIRST + 1, BEYOND_LIMIT),
    # One month after 31 January is 28 February (clamped); one ms before it earns.
    Case("1 ms before a month", BY_MONTHS, 9, ms("2026-02-28T10:00:00+00:00") - 1, ""),
    # At the month's end it no longer does.
    Case("at a month", BY_MONTHS, 1, ms("2026-02-28T10:00:00+00:00"), BEYOND_LIMIT),
    # Terms without recurring pay no renewal.
    Case("no recurring terms", None, 1, FIRST + 1, NO_RECURRING_TERMS),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_a_renewal_earns_within_its_limit(case: Case) -> None:
    assert renewal_refusal(case.recurring, FIRST, case.number, case.at) == case.refusal


def test_months_are_calendar_months_in_utc() -> None:
    assert add_months(ms("2026-11-15T08:30:00.250+00:00"), 3) == ms("2027-02-15T08:30:00.250+00:00")
    assert add_months(ms("2024-01-31T00:00:00+00:00"), 1) == ms("2024-02-29T00:00:00+00:00")


@pytest.mark.parametrize(
    "recurring",
    [
        {"rate": {"percent": "10"}},  # neither limit
        {"rate": {"percent": "10"}, "max_renewals": 3, "max_months": 3},  # both
        {"rate": {"percent": "10"}, "max_renewals": 0},  # no renewal at all
    ],
)
def test_recurring_terms_name_exactly_one_limit(recurring: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RecurringCommission.model_validate(recurring)
