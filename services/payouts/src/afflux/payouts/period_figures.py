"""A creator's figures in a campaign-period, read at one instant: total, reversed, and
the part approved only after ``as_of``.

A step writes a period's ``sums``, ``due:<a>`` and ``dueamt:<a>`` in one atomic
compare-and-set, so reading them in separate round trips can straddle a step. A step
that lowers a creator's total and pending part together (a refund before approval, a
declined review, a downward re-rank, a cap cut, a bonus reversed) then reads as the
old total less the new pending part: money still pending counted as approved, and a
payout run paid it. A script reads each creator's figures from the period's slot at
once (its keys share the period's hash tag, so it runs on a cluster too), and returns
the amounts as stored (summed here: Lua numbers are doubles). It also reads the
period's compaction marker: compaction deletes the schedule and moves the pending
part into the snapshot in one step, so a caller that read the marker apart counted
the pending part twice (or not at all) when a pass landed between the two reads.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, NamedTuple

from afflux.payouts.store import LedgerStore

# KEYS[1] the period's sums, KEYS[2] its compaction marker; per creator j (ARGV[j + 1])
# KEYS[2j + 1] its due:<a> and KEYS[2j + 2] its dueamt:<a>. ARGV[1] as_of.
# {the marker's approved_by or false, per creator {total, reversed, {amounts}}}.
_FIGURES = """
local after = '(' .. ARGV[1]
local approved_by = redis.call('HGET', KEYS[2], 'approved_by')
local out = {}
for j = 1, #ARGV - 1 do
  local a = ARGV[j + 1]
  local sums = redis.call('HMGET', KEYS[1], 'total|' .. a, 'reversed|' .. a)
  local times = redis.call('ZRANGEBYSCORE', KEYS[2 * j + 1], after, '+inf')
  local amounts = {}
  for from = 1, #times, 1000 do
    local upto = math.min(from + 999, #times)
    local part = redis.call('HMGET', KEYS[2 * j + 2], unpack(times, from, upto))
    for _, v in ipairs(part) do
      if v then amounts[#amounts + 1] = v end
    end
  end
  out[j] = {sums[1] or '0', sums[2] or '0', amounts}
end
return {approved_by, out}
"""

Wanted = tuple[str, str, str]  # campaign, period, creator
# Creators per script: each creator's figures are read at one instant, so a period of
# many creators is read in several scripts, none holding Redis for long.
CREATORS_PER_SCRIPT = 500


class Figures(NamedTuple):
    total: int
    reversed: int
    pending: int  # on the approval schedule, after ``as_of``
    # The compaction marker's last approval, read with the rest; None: not compacted
    # (a compacted period has no schedule: its pending part is in the snapshot).
    compacted_approved_by: int | None


async def period_figures(store: LedgerStore, wanted: Sequence[Wanted], as_of: int) -> list[Figures]:
    """Per (campaign, period, creator) of ``wanted``: its ``Figures`` at ``as_of``, each
    creator's read at one instant with the period's compaction marker. One pipeline, as the reads it
    replaced: a script per campaign-period and per ``CREATORS_PER_SCRIPT`` creators."""
    by_period: dict[tuple[str, str], list[int]] = defaultdict(list)
    for n, (cid, period, _) in enumerate(wanted):
        by_period[(cid, period)].append(n)
    parts = [
        (cp, indexes[at : at + CREATORS_PER_SCRIPT])
        for cp, indexes in sorted(by_period.items())
        for at in range(0, len(indexes), CREATORS_PER_SCRIPT)
    ]
    out: list[Figures] = [Figures(0, 0, 0, None)] * len(wanted)
    if not parts:
        return out
    k = store.keys
    async with store.redis.pipeline(transaction=False) as pipe:
        for cp, indexes in parts:
            creators = [wanted[n][2] for n in indexes]
            keys = [k.period(*cp, "sums"), k.period(*cp, "compacted")]
            for a in creators:
                keys += [k.period(*cp, f"due:{a}"), k.period(*cp, f"dueamt:{a}")]
            pipe.eval(_FIGURES, len(keys), *keys, as_of, *creators)
        answers: list[list[Any]] = await pipe.execute()
    for (_, indexes), (approved_by, figures) in zip(parts, answers, strict=True):
        marker = int(approved_by) if approved_by else None
        for n, (total, reversed_, amounts) in zip(indexes, figures, strict=True):
            out[n] = Figures(int(total), int(reversed_), sum(int(v) for v in amounts), marker)
    return out
