"""Each conversion id belongs to one period of its campaign: the first that placed it.

A period's step refuses a conflicting copy of a conversion it holds
(``afflux.shared.core.journal.conversion_copies``), but a copy dated in another period
(an order written straight to the ``orders`` topic again under another visitor, with
another time) would land where that period has never seen the id, and make a second
line paying the same order. So before the steps, every conversion of a batch claims its
id campaign-wide: the period under the id unless one is there (``GET``, else ``SET``, in
a script).
The first claim stands (atomic, whichever consumer sends it); a copy that finds another
period there is refused by its own period's step and dead-lettered. A replay finds its
own period and goes on. One key per conversion (``{cv:<campaign>|<conversion>}:period``,
so the claims spread over a cluster's slots), expiring at its period's retention as it
stands when the conversion is placed (later writes extend the period's facts, not the
claims: past it, a copy elsewhere is taken as new).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from afflux.payouts.keys import Keys
from afflux.shared.core.commission import ConversionFact

Placed = tuple[str, str, ConversionFact]  # campaign, period, conversion


# KEYS: claims; ARGV: per claim its period and expiry (ms). The period each claim holds.
_CLAIM = """
local held = {}
for i, key in ipairs(KEYS) do
  local period = redis.call('GET', key)
  if not period then
    period = ARGV[2 * i - 1]
    redis.call('SET', key, period, 'PXAT', ARGV[2 * i])
  end
  held[i] = period
end
return held
"""
CLAIMS_PER_SCRIPT = 1_000  # one script holds Redis about a millisecond


async def claim_periods(
    redis: Redis[bytes],
    keys: Keys,
    conversions: Sequence[Placed],
    expiry: Callable[[str, str], int],
) -> dict[tuple[str, str], dict[str, str]]:
    """(campaign, period) -> {conversion id: the other period holding it} for every
    conversion of ``conversions`` whose id another period claimed first (an earlier
    batch, or an earlier item of this one).

    The claims go in scripts of up to ``CLAIMS_PER_SCRIPT`` (one per hash slot on a
    cluster), not a command or two each: a ``SET NX`` and a ``GET`` per conversion cost
    the ledger's client about 30 us per conversion in packing and parsing."""
    if not conversions:
        return {}
    expiries: dict[tuple[str, str], int] = {}
    claims: list[tuple[str, str, int]] = []  # key, period, expiry
    for cid, period, c in conversions:
        at = expiries.get((cid, period))
        if at is None:
            at = expiries[(cid, period)] = expiry(cid, period)
        claims.append((keys.conversion_period(cid, c.conversion_id), period, at))
    groups = _groups(redis, list(range(len(claims))), [claim[0] for claim in claims])
    async with redis.pipeline(transaction=False) as pipe:
        for members in groups:
            args: list[object] = []
            for i in members:
                args += [claims[i][1], claims[i][2]]
            pipe.eval(_CLAIM, len(members), *(claims[i][0] for i in members), *args)
        replies = await pipe.execute()
    held: list[str] = [""] * len(claims)
    for members, reply in zip(groups, replies, strict=True):
        for i, period in zip(members, reply, strict=True):
            held[i] = period.decode()
    elsewhere: dict[tuple[str, str], dict[str, str]] = {}
    for (cid, period, c), other in zip(conversions, held, strict=True):
        if other != period:
            elsewhere.setdefault((cid, period), {})[c.conversion_id] = other
    return elsewhere


def _groups(redis: Redis[bytes], indexes: list[int], keys: list[str]) -> list[list[int]]:
    """The claims in scripts: in order, ``CLAIMS_PER_SCRIPT`` at a time; on a cluster
    those of one hash slot together (a script's keys must share one)."""
    if isinstance(redis, RedisCluster):
        by_slot: dict[int, list[int]] = {}
        for i in indexes:
            by_slot.setdefault(key_slot(keys[i].encode()), []).append(i)
        slotted = list(by_slot.values())
    else:
        slotted = [indexes]
    return [
        members[start : start + CLAIMS_PER_SCRIPT]
        for members in slotted
        for start in range(0, len(members), CLAIMS_PER_SCRIPT)
    ]
