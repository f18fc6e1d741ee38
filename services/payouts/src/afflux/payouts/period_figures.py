"""A creator's figures in a campaign-period, read at one instant: total, reversed, and
the part approved only after ``as_of``.

A step writes a period's ``sums``, ``due:<a>`` and ``dueamt:<a>`` in one atomic
compare-and-set, so reading them in separate round trips can straddle a step. A step
that lowers a creator's total and pending part together (a refund before approval, a
declined review, a downward re-rank, a cap cut, a bonus reversed) then reads as the
old total less the new pending part: money still pending counted as approved, and a
payout run paid it. A script reads each creator's figures from the period's slot at
once (its keys share the period's hash tag, so it runs on a cluster too), and returns
the amounts as stored (summed here: Lua numbers are doubles).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from afflux.payouts.store import LedgerStore

# KEYS[1] the period's sums; per creator j (ARGV[j + 1]) KEYS[2j] its due:<a> and
# KEYS[2j + 1] its dueamt:<a>. ARGV[1] as_of. Per creator: {total, reversed, {amounts}}.
_FIGURES = """
local after = '(' .. ARGV[1]
local out = {}
for j = 1, #ARGV - 1 do
  local a = ARGV[j + 1]
  local sums = redis.call('HMGET', KEYS[1], 'total|' .. a, 'reversed|' .. a)
  local times = redis.call('ZRANGEBYSCORE', KEYS[2 * j], after, '+inf')
  local amounts = {}
  for from = 1, #times, 1000 do
    local upto = math.min(from + 999, #times)
    local part = redis.call('HMGET', KEYS[2 * j + 1], unpack(times, from, upto))
    for _, v in ipairs(part) do
      if v then amounts[#amounts + 1] = v end
    end
  end
  out[j] = {sums[1] or '0', sums[2] or '0', amounts}
end
return out
"""

Wanted = tuple[str, str, str]  # campaign, period, creator
# Creators per script: each creator's figures are read at one instant, so a period of
# many creators is read in several scripts, none holding Redis for long.
CREATORS_PER_SCRIPT = 500


async def period_figures(
    store: LedgerStore, wanted: Sequence[Wanted], as_of: int
) -> list[tuple[int, int, int]]:
    """Per (campaign, period, creator) of ``wanted``: (total, reversed, pending after
    ``as_of``), each creator's read at one instant. One pipeline, as the reads it
    replaced: a script per campaign-period and per ``CREATORS_PER_SCRIPT`` creators."""
    by_period: dict[tuple[str, str], list[int]] = defaultdict(list)
    for n, (cid, period, _) in enumerate(wanted):
        by_period[(cid, period)].append(n)
    parts = [
        (cp, indexes[at : at + CREATORS_PER_SCRIPT])
        for cp, indexes in sorted(by_period.items())
        for at in range(0, len(indexes), CREATORS_PER_SCRIPT)
    ]
    out: list[tuple[int, int, int]] = [(0, 0, 0)] * len(wanted)
    if not parts:
        return out
    k = store.keys
    async with store.redis.pipeline(transaction=False) as pipe:
        for cp, indexes in parts:
            creators = [wanted[n][2] for n in indexes]
            keys = [k.period(*cp, "sums")]
            for a in creators:
                keys += [k.period(*cp, f"due:{a}"), k.period(*cp, f"dueamt:{a}")]
            pipe.eval(_FIGURES, len(keys), *keys, as_of, *creators)
        answers: list[list[Any]] = await pipe.execute()
    for (_, indexes), figures in zip(parts, answers, strict=True):
        for n, (total, reversed_, amounts) in zip(indexes, figures, strict=True):
            out[n] = (int(total), int(reversed_), sum(int(v) for v in amounts))
    return out
