"""The ledger in Redis: facts per campaign-period, their lines, and consumed offsets.

One atomic step per consumed batch: under WATCH on every key the batch reads,
the new facts, the recomputed lines of each affected campaign-period and each
partition's next offset are written in one MULTI/EXEC. A crash before EXEC
changes nothing (the batch is consumed again from the stored offsets); a crash
after it leaves the offsets past the batch. Facts are keyed by their ids, so
applying a fact twice changes nothing either. Several consumers may apply at
once: WATCH makes the loser retry on fresh state, so caps never overshoot.

Keys (prefix ``afx:pay:``): ``facts:<campaign>:<period>`` (hash fact id -> JSON),
``clicks:<campaign>:<period>`` (hash of click tallies), ``seen:<campaign>:<period>``
(set of click ids), ``lines:<campaign>:<period>`` (JSON array of lines),
``orders:<campaign>`` (order -> period), ``pending:<campaign>`` (lead
confirmations that came before their conversion), ``cps`` (every
"campaign|period"), ``creator:<affiliate>`` (its "campaign|period"s),
``offsets`` ("topic|partition" -> next offset), ``payouts`` (payout records).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from redis.exceptions import WatchError

from afflux.payouts import facts as ledger_facts
from afflux.shared.core.commission import Line, ledger_lines
from afflux.shared.core.terms import TermsVersion

if TYPE_CHECKING:
    FieldMap = Mapping[str | bytes, bytes | float | int | str]


@dataclass(frozen=True, slots=True)
class ClickItem:
    campaign_id: str
    period: str
    click_id: str
    affiliate_id: str
    occurred_at: int
    is_bot: bool
    is_duplicate: bool


@dataclass
class Batch:
    """What one poll of the consumer brings, already decoded and placed in periods."""

    facts: list[tuple[str, str, str, str]] = field(default_factory=list)  # cid, period, id, json
    orders: list[tuple[str, str, str]] = field(default_factory=list)  # cid, order, period
    confirmations: list[tuple[str, str, str]] = field(default_factory=list)  # cid, order, json
    clicks: list[ClickItem] = field(default_factory=list)
    offsets: dict[str, int] = field(default_factory=dict)  # "topic|partition" -> next offset

    def merge(self, other: Batch) -> None:
        self.facts += other.facts
        self.orders += other.orders
        self.confirmations += other.confirmations
        self.clicks += other.clicks

    def empty(self) -> bool:
        return not (self.facts or self.confirmations or self.clicks or self.offsets)


@dataclass(frozen=True)
class Applied:
    """What changed, for metrics: per campaign-period, the lines before and after."""

    changed: dict[tuple[str, str], tuple[tuple[Line, ...], tuple[Line, ...]]]


Versions = Callable[[str], Sequence[TermsVersion]]


class LedgerStore:
    def __init__(self, redis: Redis[bytes], prefix: str = "afx:pay:") -> None:
        self.redis = redis
        self.p = prefix

    def key(self, *parts: str) -> str:
        return self.p + ":".join(parts)

    async def offsets(self) -> dict[str, int]:
        raw = await self.redis.hgetall(self.key("offsets"))
        return {k.decode(): int(v) for k, v in raw.items()}

    async def apply(
        self, batch: Batch, versions: Versions, currency: Callable[[str], str]
    ) -> Applied:
        while True:
            try:
                return await self._apply_once(batch, versions, currency)
            except WatchError:
                continue

    async def _apply_once(
        self, batch: Batch, versions: Versions, currency: Callable[[str], str]
    ) -> Applied:
        confirm_campaigns = sorted({cid for cid, _, _ in batch.confirmations})
        async with self.redis.pipeline(transaction=True) as pipe:
            await pipe.watch(
                self.key("offsets"),
                *(self.key("orders", c) for c in confirm_campaigns),
                *(self.key("pending", c) for c in sorted({f[0] for f in batch.facts})),
            )
            stored = {
                k.decode(): int(v) for k, v in (await pipe.hgetall(self.key("offsets"))).items()
            }
            offsets = {tp: o for tp, o in batch.offsets.items() if o > stored.get(tp, 0)}
            # Where each confirmed order's conversion lives: this batch, else Redis.
            period_of_order = {(c, o): p for c, o, p in batch.orders}
            for cid in confirm_campaigns:
                wanted = [
                    o
                    for c, o, _ in batch.confirmations
                    if c == cid and (c, o) not in period_of_order
                ]
                if wanted:
                    found = await pipe.hmget(self.key("orders", cid), wanted)
                    for order, period in zip(wanted, found, strict=True):
                        if period is not None:
                            period_of_order[(cid, order)] = period.decode()
            new_facts = list(batch.facts)
            pending: list[tuple[str, str, str]] = []
            for cid, order, raw in batch.confirmations:
                period = period_of_order.get((cid, order))
                if period is None:
                    pending.append((cid, order, raw))
                else:
                    new_facts.append((cid, period, ledger_facts.CONFIRMATION + order, raw))
            # Confirmations that arrived before their conversion, now placeable.
            for cid, order, period in batch.orders:
                early = await pipe.hget(self.key("pending", cid), order)
                if early is not None:
                    new_facts.append(
                        (cid, period, ledger_facts.CONFIRMATION + order, early.decode())
                    )
            affected = sorted(
                {(c, p) for c, p, _, _ in new_facts}
                | {(k.campaign_id, k.period) for k in batch.clicks}
            )
            period_keys = [
                self.key(kind, c, p)
                for c, p in affected
                for kind in ("facts", "clicks", "seen", "lines")
            ]
            if period_keys:  # a batch of dead letters only moves the offsets
                await pipe.watch(*period_keys)
            state: dict[tuple[str, str], dict[str, Any]] = {}
            for cid, period in affected:
                state[(cid, period)] = {
                    "facts": {
                        k.decode(): v.decode()
                        for k, v in (await pipe.hgetall(self.key("facts", cid, period))).items()
                    },
                    "clicks": {
                        k.decode(): v.decode()
                        for k, v in (await pipe.hgetall(self.key("clicks", cid, period))).items()
                    },
                    "lines": await pipe.get(self.key("lines", cid, period)),
                }
            fact_writes: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
            for cid, period, fid, raw in new_facts:
                current = state[(cid, period)]["facts"]
                if current.get(fid) != raw:
                    current[fid] = raw
                    fact_writes[(cid, period)][fid] = raw
            click_writes, seen_adds = await self._tally_clicks(pipe, batch.clicks, state)
            recompute = set(fact_writes) | set(click_writes)
            changed: dict[tuple[str, str], tuple[tuple[Line, ...], tuple[Line, ...]]] = {}
            lines_json: dict[tuple[str, str], str] = {}
            for cid, period in sorted(recompute):
                versions_of = versions(cid)
                entry = state[(cid, period)]
                facts = ledger_facts.period_facts(cid, period, entry["facts"], entry["clicks"])
                after = ledger_lines(facts, versions_of, currency(cid))
                before = tuple(
                    ledger_facts.line_from_json(d) for d in json.loads(entry["lines"] or b"[]")
                )
                if after != before:
                    changed[(cid, period)] = (before, after)
                    lines_json[(cid, period)] = json.dumps(
                        [ledger_facts.line_to_json(x) for x in after], separators=(",", ":")
                    )
            pipe.multi()
            for (cid, period), fields in fact_writes.items():
                pipe.hset(self.key("facts", cid, period), mapping=_fields(fields))
            for (cid, period), fields in click_writes.items():
                pipe.hset(self.key("clicks", cid, period), mapping=_fields(fields))
            for (cid, period), ids in seen_adds.items():
                pipe.sadd(self.key("seen", cid, period), *ids)
            for (cid, period), blob in lines_json.items():
                pipe.set(self.key("lines", cid, period), blob)
            for cid, order, period in batch.orders:
                pipe.hset(self.key("orders", cid), order, period)
                pipe.hdel(self.key("pending", cid), order)
            for cid, order, raw in pending:
                pipe.hset(self.key("pending", cid), order, raw)
            for cid, period in affected:
                pipe.sadd(self.key("cps"), f"{cid}|{period}")
            for (cid, period), (_, after) in changed.items():
                for affiliate in {x.affiliate_id for x in after}:
                    pipe.sadd(self.key("creator", affiliate), f"{cid}|{period}")
            for cid, period, _, raw in new_facts:
                affiliate = json.loads(raw).get("affiliate_id")
                if affiliate:
                    pipe.sadd(self.key("creator", affiliate), f"{cid}|{period}")
            for item in batch.clicks:
                pipe.sadd(
                    self.key("creator", item.affiliate_id), f"{item.campaign_id}|{item.period}"
                )
            if offsets:
                pipe.hset(self.key("offsets"), mapping={k: str(v) for k, v in offsets.items()})
            await pipe.execute()
            return Applied(changed)

    async def _tally_clicks(
        self, pipe: Any, clicks: Sequence[ClickItem], state: dict[tuple[str, str], dict[str, Any]]
    ) -> tuple[dict[tuple[str, str], dict[str, str]], dict[tuple[str, str], list[str]]]:
        by_cp: dict[tuple[str, str], list[ClickItem]] = defaultdict(list)
        for item in clicks:
            by_cp[(item.campaign_id, item.period)].append(item)
        writes: dict[tuple[str, str], dict[str, str]] = {}
        adds: dict[tuple[str, str], list[str]] = {}
        for (cid, period), items in by_cp.items():
            ids = list(dict.fromkeys(i.click_id for i in items))
            known = await pipe.smismember(self.key("seen", cid, period), ids)
            fresh = {i for i, k in zip(ids, known, strict=True) if not k}
            tally = state[(cid, period)]["clicks"]
            counted: set[str] = set()
            for item in items:
                if item.click_id not in fresh or item.click_id in counted:
                    continue
                counted.add(item.click_id)
                a = item.affiliate_id
                if item.is_bot:
                    _inc(tally, f"b|{a}")
                    continue
                _inc(tally, f"r|{a}")
                day = datetime.fromtimestamp(item.occurred_at / 1000, UTC).strftime("%Y-%m-%d")
                _inc(tally, f"d|{a}|{day}")
                if not item.is_duplicate:
                    _inc(tally, f"u|{a}")
                    first = int(tally.get(f"f|{a}", str(item.occurred_at)))
                    tally[f"f|{a}"] = str(min(first, item.occurred_at))
            if counted:
                writes[(cid, period)] = dict(tally)
                adds[(cid, period)] = sorted(counted)
        return writes, adds

    # -- reads -----------------------------------------------------------------

    async def campaign_periods(self, affiliate: str | None = None) -> list[tuple[str, str]]:
        key = self.key("creator", affiliate) if affiliate else self.key("cps")
        members = await self.redis.smembers(key)
        pairs = (m.decode().partition("|") for m in members)
        return sorted((cid, period) for cid, _, period in pairs)

    async def lines(self, cid: str, period: str) -> list[Line]:
        raw = await self.redis.get(self.key("lines", cid, period))
        return [ledger_facts.line_from_json(d) for d in json.loads(raw or b"[]")]

    async def period_state(self, cid: str, period: str) -> tuple[dict[str, str], dict[str, str]]:
        facts = await self.redis.hgetall(self.key("facts", cid, period))
        clicks = await self.redis.hgetall(self.key("clicks", cid, period))
        return (
            {k.decode(): v.decode() for k, v in facts.items()},
            {k.decode(): v.decode() for k, v in clicks.items()},
        )

    async def payouts(self) -> list[dict[str, Any]]:
        raw = await self.redis.hgetall(self.key("payouts"))
        return [json.loads(v) for v in raw.values()]

    async def record_payout(self, slot: str, record: dict[str, Any]) -> bool:
        """Record a payout once per creator, campaign and period; False when it exists."""
        return bool(await self.redis.hsetnx(self.key("payouts"), slot, json.dumps(record)))

    async def payout(self, slot: str) -> dict[str, Any] | None:
        raw = await self.redis.hget(self.key("payouts"), slot)
        return json.loads(raw) if raw else None

    async def mark_emitted(self, slot: str, record: dict[str, Any]) -> None:
        await self.redis.hset(self.key("payouts"), slot, json.dumps({**record, "emitted": True}))


def _inc(tally: dict[str, str], name: str) -> None:
    tally[name] = str(int(tally.get(name, "0")) + 1)


def _fields(values: dict[str, str]) -> FieldMap:
    return dict(values.items())
