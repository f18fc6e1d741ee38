"""Whether money owed reaches the minimum it is held to when the campaign's terms changed
it: each minimum holds the money approved while it was in force, with the older money
still owed; a few cents from before a raise carry nothing newer through."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from afflux.shared.core.payout_minimum import minimum_met
from afflux.shared.core.terms import CampaignTerms, TermsVersion

pytestmark = pytest.mark.unit

FEB, MAR, RUN = 1_000, 2_000, 3_000


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


RAISED = (_version(1, 0, 5_000), _version(2, FEB, 100_000))
LOWERED = (_version(1, 0, 100_000), _version(2, FEB, 1))
DOWN_UP = (_version(1, 0, 5_000), _version(2, FEB, 50), _version(3, MAR, 100_000))


@dataclass(frozen=True)
class Case:
    name: str
    versions: tuple[TermsVersion, ...]
    approved: tuple[tuple[int, int], ...]
    paid: int
    met: bool


CASES = [
    Case("approved before the raise, over the old minimum", RAISED, ((10, 6_000),), 0, True),
    Case("approved before the raise, under the old minimum", RAISED, ((10, 4_000),), 0, False),
    # the review's case: 0.01 from before the raise carried 60.00 approved after it
    Case(
        "a cent before the raise carries nothing newer", RAISED, ((990, 1), (FEB, 6_000)), 0, False
    ),
    Case("approved after the raise, under it", RAISED, ((FEB, 6_000),), 0, False),
    Case("approved after the raise, over it", RAISED, ((FEB, 100_000),), 0, True),
    Case(
        "old money paid already: only the new is owed",
        RAISED,
        ((10, 6_000), (FEB, 6_000)),
        6_000,
        False,
    ),
    Case(
        "old money partly paid: what is owed of it is under",
        RAISED,
        ((10, 8_000), (FEB, 6_000)),
        4_000,
        False,
    ),
    Case(
        "old money partly paid: what is owed of it is over",
        RAISED,
        ((10, 12_000), (FEB, 6_000)),
        4_000,
        True,
    ),
    Case(
        "a clawback after the raise takes the old money back",
        RAISED,
        ((10, 6_000), (FEB, -6_000), (FEB + 1, 7_000)),
        0,
        False,
    ),
    Case("lowered: pays at once", LOWERED, ((10, 500),), 0, True),
    Case("the lowest in between holds its own money", DOWN_UP, ((FEB, 60),), 0, True),
    Case("and not money after it", DOWN_UP, ((MAR, 60),), 0, False),
    # a new order refunded whole before approval: its accrual and refund share an instant
    Case(
        "a line netting to nothing makes no dip",
        RAISED,
        ((10, 6_000), (FEB, 2_000), (FEB, -2_000)),
        0,
        True,
    ),
    Case("nothing owed", RAISED, ((10, 6_000),), 6_000, False),
    Case("owed less than nothing", RAISED, ((10, 6_000), (20, -7_000)), 0, False),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_minimum_holds_the_money_approved_while_it_was_in_force(case: Case) -> None:
    assert minimum_met(case.versions, case.approved, case.paid, RUN) is case.met


def test_money_approved_at_the_run_itself_counts() -> None:
    assert minimum_met(RAISED, ((RUN, 100_000),), 0, RUN)
