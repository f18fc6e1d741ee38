"""What a refused step leaves of its campaign-period: the period as stored, without
reading all of it again.

A step changes the cached ``PeriodState`` (and the click tally) as it decides; when the
bound then refuses it (``CreatorSumOutOfRange``), nothing of it was written, so the
period in Redis is still what the cache held before the step. Dropping the cache made
the next step read and parse every line of the period again, twice for each refused
sale (its batch, then itself alone), which let one merchant's over-bound sales slow the
ledger in proportion to the size of its period. Here only what the step changed is read
back (its changed lines, tally fields, confirmations and content states: the batch's
size) and the aggregates are derived again from the lines in memory: what a reload
does, without its read and parse.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence

import orjson
from redis.asyncio import Redis

from afflux.payouts import tallies
from afflux.payouts.keys import Keys
from afflux.shared.core.journal.content_records import content_from_json
from afflux.shared.core.journal.period import PeriodState
from afflux.shared.core.journal.records import record_from_json


async def as_stored(
    redis: Redis[bytes],
    keys: Keys,
    state: PeriodState,
    tally: MutableMapping[str, str],
    *,
    lines: Sequence[str],
    tally_fields: Sequence[str],
    orders: Sequence[str],
    contents: Sequence[str],
    seq: int,
) -> PeriodState:
    """The period as stored, from ``state`` after a step that was not written: the step's
    changed ``lines``, ``tally_fields`` (put back in ``tally`` in place), confirmed
    ``orders`` and ``contents`` read back, ``seq`` the state's before the step."""
    cid, period = state.campaign_id, state.period
    wanted = (
        ("lines", list(lines)),
        ("clicks", list(tally_fields)),
        ("confirmed", list(orders)),
        ("content", list(contents)),
    )
    async with redis.pipeline(transaction=False) as pipe:
        for name, fields in wanted:
            if fields:
                pipe.hmget(keys.period(cid, period, name), fields)
        answers = iter(await pipe.execute())
    stored = {name: dict(zip(f, next(answers), strict=True)) if f else {} for name, f in wanted}
    for line_id, raw in stored["lines"].items():
        if raw is None:
            state.lines.pop(line_id, None)  # new in the step
        else:
            state.lines[line_id] = record_from_json(orjson.loads(raw))
    for name, raw in stored["clicks"].items():
        if raw is None:
            tally.pop(name, None)
        else:
            tally[name] = raw.decode()
    confirmations = dict(state.confirmations)
    for order, raw in stored["confirmed"].items():
        if raw is None:
            confirmations.pop(order, None)
        else:
            confirmations[order] = raw.decode()
    content = dict(state.contents)
    for key, raw in stored["content"].items():
        if raw is None:
            content.pop(key, None)
        else:
            content[key] = content_from_json(orjson.loads(raw))
    return PeriodState.load(
        cid,
        period,
        state.currency,
        state.versions,
        list(state.lines.values()),
        tallies.all_figures(tally),
        confirmations,
        seq,
        content.values(),
    )
