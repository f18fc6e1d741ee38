"""Which ``min_payout_minor`` a payout is held to, when a campaign's terms changed it.

The minimum in force when the run happens decided alone: a brand publishing a larger
one held every creator's balance already approved under a smaller one, for as long as
it liked. Money owed is held to the smallest minimum in force at any time since it was
approved: a raised minimum holds only what is approved after it takes effect; a lowered
one pays at once. Pure functions over frozen values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from afflux.shared.core.terms import TermsVersion, terms_in_force


def unpaid_since(approved: Iterable[tuple[int, int]], paid_minor: int) -> int | None:
    """When the money still owed was approved: over ``approved`` (approval time, amount
    in minor units), in approval order, the time from which their running sum stays above
    ``paid_minor`` (payouts pay the oldest first; a clawback that took the sum back to what
    was paid leaves nothing older owed); ``None`` when it ends at or below it."""
    running, since = 0, None
    for at, amount in sorted(approved):
        running += amount
        if running <= paid_minor:
            since = None
        elif since is None:
            since = at
    return since


def payout_minimum(versions: Sequence[TermsVersion], since: int | None, as_of: int) -> int:
    """The smallest ``min_payout_minor`` of the versions in force at any time from
    ``since`` to ``as_of`` (only the one at ``as_of`` without ``since``)."""
    if since is None or since >= as_of:
        return terms_in_force(versions, as_of).terms.min_payout_minor
    moments = {
        since,
        as_of,
        *(v.effective_from for v in versions if since < v.effective_from <= as_of),
    }
    return min(terms_in_force(versions, at).terms.min_payout_minor for at in moments)
