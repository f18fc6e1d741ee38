"""Each conversion id belongs to one period of its campaign: the first that placed it.

A period's step refuses a conflicting copy of a conversion it holds
(``afflux.shared.core.journal.conversion_copies``), but a copy dated in another period
(an order written straight to the ``orders`` topic again under another visitor, with
another time) would land where that period has never seen the id, and make a second
line paying the same order. So before the steps, every conversion of a batch claims its
id campaign-wide: ``SET NX`` of the period under the id, then ``GET``. The first claim
stands (one command, atomic, whichever consumer sends it); a copy that finds another
period there is refused by its own period's step and dead-lettered. A replay finds its
own period and goes on. One key per conversion (``{cv:<campaign>|<conversion>}:period``,
so the claims spread over a cluster's slots), expiring at its period's retention as it
stands when the conversion is placed (later writes extend the period's facts, not the
claims: past it, a copy elsewhere is taken as new).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from redis.asyncio import Redis

from afflux.payouts.keys import Keys
from afflux.shared.core.commission import ConversionFact

Placed = tuple[str, str, ConversionFact]  # campaign, period, conversion


async def claim_periods(
    redis: Redis[bytes],
    keys: Keys,
    conversions: Sequence[Placed],
    expiry: Callable[[str], int],
) -> dict[tuple[str, str], dict[str, str]]:
    """(campaign, period) -> {conversion id: the other period holding it} for every
    conversion of ``conversions`` whose id another period claimed first (an earlier
    batch, or an earlier item of this one)."""
    if not conversions:
        return {}
    expiries: dict[str, int] = {}
    async with redis.pipeline(transaction=False) as pipe:
        for cid, period, c in conversions:
            at = expiries.get(period)
            if at is None:
                at = expiries[period] = expiry(period)
            key = keys.conversion_period(cid, c.conversion_id)
            pipe.set(key, period, nx=True, pxat=at)
            pipe.get(key)
        replies = await pipe.execute()
    elsewhere: dict[tuple[str, str], dict[str, str]] = {}
    for (cid, period, c), held in zip(conversions, replies[1::2], strict=True):
        other = period if held is None else held.decode()
        if other != period:
            elsewhere.setdefault((cid, period), {})[c.conversion_id] = other
    return elsewhere
