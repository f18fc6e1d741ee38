"""The review queue as the ledger holds it: where each conversion of a campaign with
review terms is (``{ledger}:reviews``, written by the consumer before the conversion's
period), and its line's review state (held, approved, declined) from the line record.

Shared by the HTTP routes (``routes.reviews``), the portal page and the KPIs."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from afflux.payouts.store import REVIEW_INDEX, LedgerStore
from afflux.shared.core.ids import derived_id
from afflux.shared.core.journal.records import LineRecord, record_from_json

HELD, APPROVED, DECLINED, NOT_HELD = "held", "approved", "declined", "not_held"
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

    @property
    def status(self) -> str:
        r = self.record
        if r is None or not r.held:
            return NOT_HELD
        if r.review is None:
            return HELD
        return DECLINED if r.review[0] == "decline" else APPROVED

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
            "commission_minor": r.gross if r is not None else 0,
            "rule": r.rule if r is not None else "",
            "decided_by": r.review[3] if r is not None and r.review else None,
            "reason": r.review[2] if r is not None and r.review else None,
        }


REVIEW_DECISIONS = "review_decisions"


async def claim_decision(store: LedgerStore, conversion_id: str, decision: str) -> str:
    """The conversion's decision: ``decision`` when it is the first asked (or the same
    again), else the one asked first. The ledger keeps the first decision on the topic, so
    the API answers the same ("approve then decline" before the ledger applied the
    approval is refused, not accepted and ignored)."""
    key = store.keys.ledger(REVIEW_DECISIONS)
    if await store.redis.hsetnx(key, conversion_id, decision):
        return decision
    taken: bytes | None = await store.redis.hget(key, conversion_id)
    return taken.decode() if taken is not None else decision


async def release_decision(store: LedgerStore, conversion_id: str, decision: str) -> None:
    """Forget a claimed decision the broker did not take (only if it is still that one)."""
    key = store.keys.ledger(REVIEW_DECISIONS)
    taken: bytes | None = await store.redis.hget(key, conversion_id)
    if taken is not None and taken.decode() == decision:
        await store.redis.hdel(key, conversion_id)


async def entry(store: LedgerStore, conversion_id: str) -> Entry | None:
    raw: bytes | None = await store.redis.hget(store.keys.ledger(REVIEW_INDEX), conversion_id)
    if raw is None:
        return None
    [found] = await _with_records(store, [(conversion_id, orjson.loads(raw))])
    return found


async def entries(store: LedgerStore, campaigns: Iterable[str] | None = None) -> list[Entry]:
    """Every indexed conversion (of ``campaigns`` only, when given), by order time."""
    wanted = None if campaigns is None else set(campaigns)
    index = await store.redis.hgetall(store.keys.ledger(REVIEW_INDEX))
    rows = []
    for conversion, raw in index.items():
        where = orjson.loads(raw)
        if wanted is None or where[0] in wanted:
            rows.append((conversion.decode(), where))
    found = await _with_records(store, rows)
    return sorted(found, key=lambda e: (e.occurred_at, e.conversion_id))


async def _with_records(store: LedgerStore, rows: list[tuple[str, list[Any]]]) -> list[Entry]:
    by_period: dict[tuple[str, str], list[tuple[str, list[Any]]]] = defaultdict(list)
    for conversion, where in rows:
        by_period[(where[0], where[1])].append((conversion, where))
    out: list[Entry] = []
    for (cid, period), group in sorted(by_period.items()):
        line_ids = [derived_id("line", conversion) for conversion, _ in group]
        raws = await store.redis.hmget(store.keys.period(cid, period, "lines"), line_ids)
        for (conversion, where), raw in zip(group, raws, strict=True):
            record = record_from_json(orjson.loads(raw)) if raw is not None else None
            out.append(Entry(conversion, cid, period, where[2], where[3], where[4], record))
    return out


def counts(found: Iterable[Entry]) -> dict[str, int]:
    """held, approved and declined conversions."""
    out = {HELD: 0, APPROVED: 0, DECLINED: 0}
    for e in found:
        if e.status in out:
            out[e.status] += 1
    return out
