"""When a campaign-period's journal may be compacted into a statement snapshot.

A period is **closed** at its end + the campaign's longest attribution window +
its longest lock (each over every version of its terms) + a grace. The first two
are the orders service's backfill limit: an order (or a refund dated) older than
that is refused unless an operator sends it as a backfill, and the commission of
everything the period holds is approved by then. The grace leaves room for what
was accepted just before the limit and is still on its way (the attribution
worker's wait for late clicks, a backlog of the ledger consumer).

A period is **fully paid** when every creator with postings there has nothing
pending at ``now`` and payout runs have paid the creator, in the campaign, at
least what its postings add up to in this period and every earlier one. Payout
records are named by the payout run's period, not by the periods whose postings
they pay (a run in December pays November's approved postings), and a run pays
approved minus paid over the whole campaign: so what was paid covers the earliest
periods first, and a period is settled once the campaign's paid total reaches the
postings up to and including it.

Pure: the clock and the money are inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.periods import period_bounds
from afflux.shared.core.terms import TermsVersion

# As long as the refund stage keeps orders (AFFLUX_ORDER_RETENTION_DAYS) and the ledger
# keeps a period's line records: a refund reported later finds no line to claw back
# from anyway, and one reported earlier must find its period still open, or its
# clawback would be dead-lettered and the creator keep what the merchant refunded.
DEFAULT_GRACE_DAYS = 400
DEFAULT_GRACE_MS = DEFAULT_GRACE_DAYS * MS_PER_DAY


@dataclass(frozen=True)
class CreatorStanding:
    """One creator with postings in the period, as the ledger and payout records say."""

    affiliate_id: str
    pending: int  # the creator's postings in the period approved only after now
    owed_through: int  # the creator's postings in this and every earlier period of the campaign
    paid: int  # what payout runs recorded for the creator in the campaign


@dataclass(frozen=True)
class PeriodStanding:
    campaign_id: str
    period: str
    versions: tuple[TermsVersion, ...]  # every version of the campaign's terms
    creators: tuple[CreatorStanding, ...]


@dataclass(frozen=True)
class Verdict:
    compactable: bool
    reason: str  # why not, or "closed and fully paid"
    closes_at: int  # UTC ms from which the period is closed


def closes_at(period: str, versions: Sequence[TermsVersion], grace_ms: int) -> int:
    """The period's end + the longest window + the longest lock + ``grace_ms``."""
    if not versions:
        raise ValueError("a campaign without terms has no closing time")
    window = max(v.terms.max_window_ms() for v in versions)
    lock = max(v.terms.lock_ms for v in versions)
    return period_bounds(period)[1] + window + lock + grace_ms


def verdict(standing: PeriodStanding, now: int, grace_ms: int = DEFAULT_GRACE_MS) -> Verdict:
    """Whether the period may be compacted at ``now``, and why (not)."""
    closing = closes_at(standing.period, standing.versions, grace_ms)
    if now < closing:
        return Verdict(False, f"open until {closing} (ms)", closing)
    for creator in sorted(standing.creators, key=lambda c: c.affiliate_id):
        if creator.pending:
            reason = f"{creator.affiliate_id!r} has {creator.pending} pending"
            return Verdict(False, reason, closing)
        if creator.paid < creator.owed_through:
            unpaid = creator.owed_through - creator.paid
            reason = f"{creator.affiliate_id!r} has {unpaid} not paid yet"
            return Verdict(False, reason, closing)
    return Verdict(True, "closed and fully paid", closing)
