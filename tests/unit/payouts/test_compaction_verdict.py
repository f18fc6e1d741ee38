"""When a campaign-period may be compacted: closed (end + longest window + longest lock +
grace, over every terms version) and fully paid, at every boundary."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.journal.compaction import (
    CreatorStanding,
    PeriodStanding,
    closes_at,
    verdict,
)
from afflux.shared.core.periods import period_bounds
from afflux.shared.core.terms import CampaignTerms, TermsVersion

pytestmark = pytest.mark.unit

PERIOD = "2026-01"
END = period_bounds(PERIOD)[1]  # 2026-02-01T00:00:00Z
GRACE = 30 * MS_PER_DAY


def version(number: int, window_days: int, lock_days: int, **extra: object) -> TermsVersion:
    terms = CampaignTerms(
        campaign_id="camp",
        merchant_id="m",
        currency="EUR",
        cookie_window_days=window_days,
        lock_days=lock_days,
        **extra,
    )
    return TermsVersion(version=number, effective_from=0, published_at=0, terms=terms)


# v2 shortens the window and lengthens the lock; a creator override is the longest window.
V1 = version(1, window_days=30, lock_days=14)
V2 = version(2, window_days=7, lock_days=45)
V3 = version(3, window_days=7, lock_days=7, window_overrides_days={"star": 60})
CLOSES = END + 30 * MS_PER_DAY + 45 * MS_PER_DAY + GRACE  # longest of each, over v1 and v2


def paid(affiliate: str, owed: int, paid_: int, pending: int = 0) -> CreatorStanding:
    return CreatorStanding(affiliate, pending=pending, owed_through=owed, paid=paid_)


@dataclass(frozen=True)
class Case:
    name: str
    now: int
    creators: tuple[CreatorStanding, ...]
    compactable: bool
    reason: str


CASES = [
    # closed exactly at end + longest window + longest lock + grace
    Case("at_close", CLOSES, (paid("a", 1000, 1000),), True, "closed and fully paid"),
    # 1 ms before: still open, however paid
    Case("one_ms_before_close", CLOSES - 1, (paid("a", 1000, 1000),), False, "open until"),
    # 1 ms after: closed
    Case("one_ms_after_close", CLOSES + 1, (paid("a", 1000, 1000),), True, "closed"),
    # one cent unpaid keeps the period
    Case("one_cent_unpaid", CLOSES, (paid("a", 1000, 999),), False, "'a' has 1 not paid yet"),
    # paid more than owed through this period (later periods paid too, or a clawback): settled
    Case("overpaid", CLOSES, (paid("a", 1000, 1500),), True, "closed"),
    # one cent still pending (a posting approved after now)
    Case("one_cent_pending", CLOSES, (paid("a", 1000, 1000, pending=1),), False, "1 pending"),
    # every creator must be settled: the second one is not
    Case("second_creator_unpaid", CLOSES, (paid("a", 5, 5), paid("b", 5, 0)), False, "'b'"),
    # no creator with postings (clicks only): nothing to pay, closed is enough
    Case("no_postings", CLOSES, (), True, "closed"),
    # nothing owed and nothing paid (postings netting to zero)
    Case("netted_to_zero", CLOSES, (paid("a", 0, 0),), True, "closed"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_compactable_only_when_closed_and_fully_paid(case: Case) -> None:
    standing = PeriodStanding("camp", PERIOD, (V1, V2), case.creators)
    got = verdict(standing, case.now, GRACE)
    assert got.compactable is case.compactable
    assert case.reason in got.reason
    assert got.closes_at == CLOSES


def test_creator_window_override_counts_as_the_longest_window() -> None:
    assert closes_at(PERIOD, (V3,), 0) == END + 60 * MS_PER_DAY + 7 * MS_PER_DAY


def test_grace_moves_the_close() -> None:
    assert closes_at(PERIOD, (V1,), 0) + GRACE == closes_at(PERIOD, (V1,), GRACE)


def test_a_campaign_without_terms_has_no_close() -> None:
    with pytest.raises(ValueError, match="without terms"):
        closes_at(PERIOD, (), GRACE)
