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

from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import TypeVar

import orjson
from redis.asyncio import Redis

from afflux.payouts import tallies
from afflux.payouts.keys import Keys
from afflux.shared.core.journal.content_records import content_from_json
from afflux.shared.core.journal.period import PeriodState
from afflux.shared.core.journal.records import record_from_json

T = TypeVar("T")


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
    _put_back(state.lines, stored["lines"], lambda raw: record_from_json(orjson.loads(raw)))
    _put_back(tally, stored["clicks"], bytes.decode)
    confirmations = dict(state.confirmations)
    _put_back(confirmations, stored["confirmed"], bytes.decode)
    content = dict(state.contents)
    _put_back(content, stored["content"], lambda raw: content_from_json(orjson.loads(raw)))
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


def _put_back(
    into: MutableMapping[str, T], stored: Mapping[str, bytes | None], decode: Callable[[bytes], T]
) -> None:
    """``into`` as stored: each field read back, or gone when Redis has none (new in the step)."""
    for name, raw in stored.items():
        if raw is None:
            into.pop(name, None)
        else:
            into[name] = decode(raw)
