"""The review queue as the ledger holds it: per campaign-period, one sorted set per
status of the conversions of a campaign with review terms (``review:<status>``, scored
by the order's time, written by each step with the line records:
``afflux.shared.core.journal.review_queue``), and each row's line record for what it
shows. Where a conversion is (``{rv:<conversion>}:entry``, written by the consumer before
the conversion's period, expiring with the period's facts as they stand then) finds it
for a decision.

Reading a page costs O(p * (log n + limit)) for p campaign-periods, whatever the number
of conversions: the counts are the sets' sizes, the rows the first ``limit`` of each
period's sets merged by time, and only their line records are read. A period under
review terms written before the sets, and not stepped since, is read from all its line
records instead.

Shared by the HTTP routes (``routes.reviews``) and the portal page."""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from afflux.payouts.store import (
    QUEUE_SET,
    QUEUE_WRITTEN,
    REVIEW_ENTRY,
    REVIEW_INDEX,
    LedgerStore,
)
from afflux.shared.core.ids import derived_id
from afflux.shared.core.journal import review_queue
from afflux.shared.core.journal.records import LineRecord, record_from_json
from afflux.shared.core.journal.review_queue import APPROVED, DECLINED, HELD, NOT_HELD
from afflux.shared.core.terms import TermsVersion

__all__ = ["APPROVED", "DECLINED", "HELD", "NOT_HELD"]
MAX_LISTED = 500  # conversions one answer or page lists; the totals count them all


@dataclass(frozen=True)
class Entry:
    """One conversion of the review index with its line's state."""

    conversion_id: str
    campaign_id: str
    period: str
    order_id: str
    affiliate_id: str
    occurred_at: int
    record: LineRecord | None  # None: the ledger has not applied the conversion yet
    kept_ms: int | None = None  # how long Redis keeps the entry (None: for good)

    @property
    def status(self) -> str:
        return review_queue.status(self.record)

    def view(self) -> dict[str, Any]:
        r = self.record
        return {
            "conversion_id": self.conversion_id,
            "campaign_id": self.campaign_id,
            "period": self.period,
            "order_id": self.order_id,
            "affiliate_id": self.affiliate_id,
            "occurred_at": self.occurred_at,
            "status": self.status,
            "signals": list(r.held) if r is not None else [],
            "risk_signals": list(r.conversion.risk_signals)
            if r is not None and r.conversion is not None
            else [],
            "amount_minor": r.conversion.amount_minor
            if r is not None and r.conversion is not None
            else 0,
            "currency": r.conversion.currency if r is not None and r.conversion is not None else "",
            # What the line pays, a refund before approval taken off (the gross read as if
            # the refunded part were still owed).
            "commission_minor": r.net if r is not None else 0,
            "rule": r.rule if r is not None else "",
            "decided_by": r.review[3] if r is not None and r.review else None,
            "reason": r.review[2] if r is not None and r.review else None,
        }


async def entry(store: LedgerStore, conversion_id: str) -> Entry | None:
    key = store.keys.review(conversion_id, REVIEW_ENTRY)
    async with store.redis.pipeline(transaction=False) as pipe:
        pipe.get(key)
        pipe.pttl(key)
        raw, kept = await pipe.execute()
    if raw is None:  # a ledger written before the entries: the index of them all
        raw = await store.redis.hget(store.keys.ledger(REVIEW_INDEX), conversion_id)
        kept = None
    if raw is None:
        return None
    cid, period, order, affiliate, at = orjson.loads(raw)
    line: bytes | None = await store.redis.hget(
        store.keys.period(cid, period, "lines"), derived_id("line", conversion_id)
    )
    record = None if line is None else record_from_json(orjson.loads(line))
    kept_ms = kept if isinstance(kept, int) and kept > 0 else None
    return Entry(conversion_id, cid, period, order, affiliate, at, record, kept_ms)


@dataclass(frozen=True)
class Queue:
    """One page of the queue: its rows, oldest first, how many conversions have the
    statuses asked (listed or not), and how many are held, approved and declined."""

    rows: list[Entry]
    total: int
    counts: dict[str, int]


async def queue(
    store: LedgerStore,
    campaigns: Iterable[str],
    statuses: Sequence[str],
    limit: int,
    versions: Callable[[str], Sequence[TermsVersion]],
) -> Queue:
    """The oldest ``limit`` conversions of ``campaigns`` (their terms' ``versions``) with
    one of ``statuses``."""
    cps = await _periods(store, list(campaigns))
    names = review_queue.STATUSES
    async with store.redis.pipeline(transaction=False) as pipe:
        for cid, period in cps:
            pipe.exists(store.keys.period(cid, period, QUEUE_WRITTEN))
            for name in names:
                pipe.zcard(store.keys.period(cid, period, QUEUE_SET + name))
            for name in statuses:
                key = store.keys.period(cid, period, QUEUE_SET + name)
                pipe.zrange(key, 0, limit - 1, withscores=True)
        raw = await pipe.execute()
    sizes: dict[str, int] = defaultdict(int)
    heads: list[list[tuple[int, str, str, str]]] = []
    unwritten: list[tuple[str, str]] = []
    at = 0
    for cid, period in cps:
        if not raw[at]:
            # Sets never written: a period written before them is read from its lines; one
            # stepped only while no terms in force in it reviewed anything holds nothing
            # (read from its lines, every queue read paid its every line, for good).
            if review_queue.reviewed_during(versions(cid), period):
                unwritten.append((cid, period))
            at += 1 + len(names) + len(statuses)
            continue
        at += 1
        for name in names:
            sizes[name] += raw[at]
            at += 1
        for _ in statuses:
            heads.append([(int(t), m.decode(), cid, period) for m, t in raw[at]])
            at += 1
    for cid, period, found in await _from_line_records(store, unwritten):
        for name in names:
            sizes[name] += len(found.get(name, ()))
        for name in statuses:
            heads.append([(t, m, cid, period) for t, m in sorted(found.get(name, ()))[:limit]])
    # Each set comes sorted by (time, conversion id): merged, the first ``limit`` of all.
    first = list(heapq.merge(*heads))[:limit]
    return Queue(
        await _rows(store, first),
        sum(sizes[name] for name in statuses),
        {name: sizes[name] for name in (HELD, APPROVED, DECLINED)},
    )


async def _from_line_records(
    store: LedgerStore, cps: list[tuple[str, str]]
) -> list[tuple[str, str, dict[str, list[tuple[int, str]]]]]:
    """The queue of campaign-periods whose status sets were never written (a ledger
    written before them, not stepped since), from every line record, as before the sets:
    left out, their held conversions were in no queue until the period's next step, and a
    period nothing came to again never showed them to be decided."""
    if not cps:
        return []
    async with store.redis.pipeline(transaction=False) as pipe:
        for cid, period in cps:
            pipe.hgetall(store.keys.period(cid, period, "lines"))
        raw = await pipe.execute()
    out = []
    for (cid, period), lines in zip(cps, raw, strict=True):
        records = [record_from_json(orjson.loads(v)) for v in lines.values()]
        out.append((cid, period, review_queue.moves({}, records).added))
    return out


async def _periods(store: LedgerStore, campaigns: list[str]) -> list[tuple[str, str]]:
    async with store.redis.pipeline(transaction=False) as pipe:
        for cid in campaigns:
            pipe.smembers(store.keys.campaign(cid, "periods"))
        raw = await pipe.execute()
    return [(cid, p.decode()) for cid, ps in zip(campaigns, raw, strict=True) for p in sorted(ps)]


async def _rows(store: LedgerStore, found: list[tuple[int, str, str, str]]) -> list[Entry]:
    by_period: dict[tuple[str, str], list[str]] = defaultdict(list)
    for _, conversion, cid, period in found:
        by_period[(cid, period)].append(conversion)
    records: dict[str, LineRecord | None] = {}
    async with store.redis.pipeline(transaction=False) as pipe:
        for (cid, period), conversions in by_period.items():
            ids = [derived_id("line", c) for c in conversions]
            pipe.hmget(store.keys.period(cid, period, "lines"), ids)
        raw = await pipe.execute()
    for conversions, raws in zip(by_period.values(), raw, strict=True):
        for conversion, value in zip(conversions, raws, strict=True):
            records[conversion] = None if value is None else record_from_json(orjson.loads(value))
    out = []
    for at, conversion, cid, period in found:
        r = records[conversion]
        c = None if r is None else r.conversion
        out.append(
            Entry(
                conversion,
                cid,
                period,
                "" if c is None else c.order_id,
                "" if r is None else r.affiliate_id,
                at,
                r,
            )
        )
    return out
