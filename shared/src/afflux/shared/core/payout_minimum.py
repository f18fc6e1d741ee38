"""Whether money owed reaches the ``min_payout_minor`` it is held to, when a campaign's
terms changed the minimum.

The minimum in force when the run happens decided alone: a brand publishing a larger
one held every creator's balance already approved under a smaller one, for as long as
it liked. Now each minimum holds the money approved while it was in force, with the
older money still owed: the payout is due when, for some version, what is owed of the
money approved up to that version's end reaches that version's minimum (the last
version's end is the run: all that is owed against the minimum at the run). A raised
minimum so holds only money approved after it took effect, and a few cents from
before it carry nothing newer through; a lowered one pays at once. Payouts pay the
oldest money first. Pure functions over frozen values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from afflux.shared.core.terms import TermsVersion, terms_in_force


def minimum_met(
    versions: Sequence[TermsVersion],
    approved: Iterable[tuple[int, int]],
    paid_minor: int,
    as_of: int,
) -> bool:
    """Whether the money owed at ``as_of`` is paid: ``approved`` (approval time, amount in
    minor units; approved at ``as_of`` at the latest) less ``paid_minor``, the oldest
    paid first."""
    # One point per instant: an accrual and its refund or cap cut share the line's
    # approval time, and taken apart (the negative first) they made a dip no balance had.
    at_instant: dict[int, int] = {}
    for at, amount in approved:
        at_instant[at] = at_instant.get(at, 0) + amount
    points = sorted(at_instant.items())
    # The running sums after each point, and from each the least one to come: a later
    # clawback takes back money approved before it, so what is owed of the money up to a
    # time is never more than what is owed at any time after it.
    sums, running = [], 0
    for _, amount in points:
        running += amount
        sums.append(running)
    least_after = sums[:]
    for n in range(len(sums) - 2, -1, -1):
        least_after[n] = min(sums[n], least_after[n + 1])
    ends = sorted({v.effective_from for v in versions if v.effective_from <= as_of} | {as_of + 1})
    n = 0
    for end in ends:
        while n < len(points) and points[n][0] < end:
            n += 1
        if n == 0:
            continue  # nothing approved before this version's end
        owed = least_after[n - 1] - paid_minor
        minimum = terms_in_force(versions, end - 1).terms.min_payout_minor
        if owed > 0 and owed >= max(1, minimum):
            return True
    return False
