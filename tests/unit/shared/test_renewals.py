"""Recurring commissions: which renewals of a first order earn (afflux.shared.core.renewals)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pytest
from pydantic import ValidationError

from afflux.shared.core.attribution import ClickTouch
from afflux.shared.core.renewals import (
    BEFORE_FIRST_ORDER,
    BEYOND_LIMIT,
    FIRST_ORDER_IS_RENEWAL,
    MAX_RENEWAL_NUMBERS,
    NO_RECURRING_TERMS,
    NUMBER_TAKEN,
    RENEWAL_ORDER_IS_FIRST_ORDER,
    add_months,
    first_order_refusal,
    renewal_claim,
    renewal_order_refusal,
    renewal_refusal,
)
from afflux.shared.core.terms import CampaignTerms, RecurringCommission, TermsVersion
from afflux.shared.core.whatif.diff import whatif
from afflux.shared.core.whatif.log import CampaignLog, LoggedOrder, LoggedRenewal

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
    # Nothing renews before it was bought: 1 ms before the first order earns nothing ...
    Case("1 ms before the first order", BY_COUNT, 1, FIRST - 1, BEFORE_FIRST_ORDER),
    Case("a year before, by months", BY_MONTHS, 1, FIRST - 365 * 86_400_000, BEFORE_FIRST_ORDER),
    # ... at the first order's own ms it does (the same instant is not before it).
    Case("at the first order's ms", BY_COUNT, 1, FIRST, ""),
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


@dataclass(frozen=True)
class ClaimCase:
    name: str
    taken: dict[int, str]
    number: int
    renewal_order_id: str
    refusal: str


FULL = {n: f"r-{n}" for n in range(1, MAX_RENEWAL_NUMBERS + 1)}
CLAIMS = [
    # A number nobody took is the renewal's.
    ClaimCase("free number", {1: "r-1"}, 2, "r-2", ""),
    # A copy of the renewal that took it keeps it (an idempotent duplicate).
    ClaimCase("its own number again", {1: "r-1"}, 1, "r-1", ""),
    # The same number under another renewal order id would be paid twice.
    ClaimCase("number taken by another", {1: "r-1"}, 1, "r-1b", NUMBER_TAKEN),
    # The last number the table keeps...
    ClaimCase("last kept number", {k: v for k, v in FULL.items() if k != 7}, 7, "r-7", ""),
    # ... and one more: refused as past the limit, so the table stays bounded.
    ClaimCase("table full", FULL, MAX_RENEWAL_NUMBERS + 1, "r-x", BEYOND_LIMIT),
    # A taken number in a full table is still the taker's.
    ClaimCase("full, own number", FULL, 5, "r-5", ""),
]


@pytest.mark.parametrize("case", CLAIMS, ids=lambda c: c.name)
def test_each_renewal_number_of_a_first_order_is_taken_once(case: ClaimCase) -> None:
    assert renewal_claim(case.taken, case.number, case.renewal_order_id) == case.refusal


def test_a_renewal_order_is_never_renewed() -> None:
    assert (first_order_refusal(True), first_order_refusal(False)) == (FIRST_ORDER_IS_RENEWAL, "")


def test_a_renewal_never_takes_its_first_orders_id() -> None:
    assert renewal_order_refusal("o-1", "o-1").startswith(RENEWAL_ORDER_IS_FIRST_ORDER)
    assert renewal_order_refusal("o-1", "o-1:renewal-1") == ""


def test_a_whatif_pays_no_renewal_the_worker_refuses() -> None:
    # The number again under another id, a renewal of the renewal, and one reusing its
    # first order's id (dead-lettered): only the first renewal earns, as in the worker.
    terms = CampaignTerms.model_validate(
        {
            "campaign_id": "subs",
            "merchant_id": "m",
            "currency": "EUR",
            "plan": {
                "sale": {"rate": {"percent": "10"}},
                "recurring": {"rate": {"percent": "20"}, "max_renewals": 12},
            },
        }
    )
    version = TermsVersion(version=1, effective_from=0, published_at=0, terms=terms)
    log = CampaignLog("subs")
    log.add_click("v", ClickTouch("k", "ana", "subs", FIRST - 1000))
    log.add_order(LoggedOrder("o-1", "e-1", "v", FIRST, 5000, "EUR"))
    for first, renewal_order, event in [
        ("o-1", "o-1:r1", "e-r1"),
        ("o-1", "o-1:r1-again", "e-r1-again"),
        ("o-1:r1", "o-1:r1:r1", "e-r1-of"),
        ("o-1", "o-1", "e-r1-self"),
    ]:
        log.add_renewal(LoggedRenewal(first, renewal_order, 1, event, FIRST + 1, 1000, "EUR"))

    diff = whatif(log, (version,), terms.model_copy(update={"model": "first_click"}))

    assert diff.current_total_minor == diff.draft_total_minor == 500 + 200
