"""Which minimum a payout is held to when the campaign's terms changed it: the smallest
in force at any time since the money owed was approved."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from afflux.shared.core.payout_minimum import payout_minimum, unpaid_since
from afflux.shared.core.terms import CampaignTerms, TermsVersion

pytestmark = pytest.mark.unit

FEB, MAR = 1_000, 2_000


def _version(n: int, effective_from: int, minimum: int) -> TermsVersion:
    terms = CampaignTerms.model_validate(
        {
            "campaign_id": "c",
            "merchant_id": "m",
            "currency": "EUR",
            "min_payout_minor": minimum,
            "plan": {"sale": {"rate": {"percent": "10"}}},
        }
    )
    return TermsVersion(version=n, effective_from=effective_from, published_at=0, terms=terms)


RAISED = (_version(1, 0, 1), _version(2, FEB, 100_000))
LOWERED = (_version(1, 0, 100_000), _version(2, FEB, 1))
UP_DOWN_UP = (_version(1, 0, 500), _version(2, FEB, 50), _version(3, MAR, 100_000))


@dataclass(frozen=True)
class MinimumCase:
    name: str
    versions: tuple[TermsVersion, ...]
    since: int | None
    as_of: int
    minimum: int


MINIMUMS = [
    MinimumCase("owed since before the raise", RAISED, FEB - 1, MAR, 1),
    MinimumCase("owed since the raise's first ms", RAISED, FEB, MAR, 100_000),
    MinimumCase("nothing owed: the version at the run", RAISED, None, MAR, 100_000),
    MinimumCase("lowered: pays at once", LOWERED, 10, MAR, 1),
    MinimumCase("the lowest in between counts", UP_DOWN_UP, 10, MAR + 5, 50),
    MinimumCase("owed only since the last raise", UP_DOWN_UP, MAR, MAR + 5, 100_000),
]


@pytest.mark.parametrize("case", MINIMUMS, ids=[c.name for c in MINIMUMS])
def test_the_minimum_is_the_smallest_in_force_since_the_money_owed_was_approved(
    case: MinimumCase,
) -> None:
    assert payout_minimum(case.versions, case.since, case.as_of) == case.minimum


@pytest.mark.parametrize(
    ("approved", "paid", "since"),
    [
        ([(10, 500), (20, 500)], 0, 10),
        ([(10, 500), (20, 500)], 500, 20),  # the oldest paid first
        ([(20, 500), (10, 500)], 499, 10),  # in approval order, whatever the input's
        ([(10, 500), (20, 500)], 1_000, None),  # all paid
        ([(10, 500), (15, -500), (20, 300)], 0, 20),  # the first 5.00 clawed back whole
        ([(10, 500), (15, -400), (20, 300)], 0, 10),
        ([(10, 500), (15, -500), (20, 300)], 100, 20),
    ],
)
def test_what_is_owed_was_approved_since_the_payments_ran_out(
    approved: list[tuple[int, int]], paid: int, since: int | None
) -> None:
    assert unpaid_since(approved, paid) == since
