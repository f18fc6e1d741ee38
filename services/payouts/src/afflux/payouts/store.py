"""The ledger in Redis: facts per campaign-period, their lines, and consumed offsets.

One atomic step per consumed batch: under WATCH on every key the batch reads,
the new facts, the recomputed lines of each affected campaign-period and each
partition's next offset are written in one MULTI/EXEC. A crash before EXEC
changes nothing (the batch is consumed again from the stored offsets); a crash
after it leaves the offsets past the batch. Facts are keyed by their ids, so
applying a fact twice changes nothing either. Several consumers may apply at
once: WATCH makes the loser retry on fresh state, so caps never overshoot.

The store keeps the campaign-periods it last read or wrote in memory (facts
already parsed, lines already encoded; the most recently used ones, up to a
number of facts), so a batch costs what it adds rather than a re-read of the
whole period. Every write sets the period's
``ver:<campaign>:<period>`` to a token no other write uses; the cached copy is
used only while that key (read under WATCH) still holds the token it was
written or read with. Any failure drops the cache.

Keys (prefix ``afx:pay:``): ``facts:<campaign>:<period>`` (hash fact id -> JSON),
``clicks:<campaign>:<period>`` (hash of click tallies), ``seen:<campaign>:<period>``
(set of click ids), ``lines:<campaign>:<period>`` (JSON array of lines),
``orders:<campaign>`` (order -> period), ``pending:<campaign>`` (lead
confirmations that came before their conversion), ``cps`` (every
"campaign|period"), ``creator:<affiliate>`` (its "campaign|period"s),
``offsets`` ("topic|partition" -> next offset), ``last`` ("topic|partition" ->
fingerprint of the last record applied, written with the offset: see ``divergence``),
``payouts`` (payout records), ``ver:<campaign>:<period>`` (the token of the period's
last write), ``generation`` (the ledger's identity: a rebuild deletes it, so every
consumer notices), ``rebuilding`` (set while ``afflux ledger rebuild`` clears the keys).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from redis.exceptions import WatchError

from afflux.payouts import facts as ledger_facts
from afflux.shared.core.click_flags import BOT, CLICK_FLAGS
from afflux.shared.core.commission import ConversionFact, Line, ledger_lines
from afflux.shared.core.terms import TermsVersion
from afflux.shared.events import ClickRecorded
from afflux.shared.wire import compact_json

if TYPE_CHECKING:
    FieldMap = Mapping[str | bytes, bytes | float | int | str]


@dataclass(frozen=True, slots=True)
class ClickItem:
    campaign_id: str
    period: str
    click_id: str
    affiliate_id: str
    occurred_at: int
    reasons: tuple[str, ...] = ()  # quality flags (``ClickRecorded.reasons``); empty: valid

    @classmethod
    def of(cls, event: ClickRecorded, period: str) -> ClickItem:
        """What the ledger keeps of a click: flagged ones are counted, never paid."""
        return cls(
            campaign_id=event.campaign_id,
            period=period,
            click_id=event.click_id,
            affiliate_id=event.affiliate_id,
            occurred_at=event.occurred_at,
            reasons=event.reasons,
        )


@dataclass
class Batch:
    """What one poll of the consumer brings, already decoded and placed in periods."""

    facts: list[tuple[str, str, str, str]] = field(default_factory=list)  # cid, period, id, json
    orders: list[tuple[str, str, str]] = field(default_factory=list)  # cid, order, period
    confirmations: list[tuple[str, str, str]] = field(default_factory=list)  # cid, order, json
    clicks: list[ClickItem] = field(default_factory=list)
    offsets: dict[str, int] = field(default_factory=dict)  # "topic|partition" -> next offset
    last: dict[str, str] = field(default_factory=dict)  # "topic|partition" -> fingerprint

    def merge(self, other: Batch) -> None:
        self.facts += other.facts
        self.orders += other.orders
        self.confirmations += other.confirmations
        self.clicks += other.clicks

    def empty(self) -> bool:
        return not (self.facts or self.confirmations or self.clicks or self.offsets)


class LedgerReset(Exception):
    """The ledger was cleared (or is being cleared) under the consumer: start over."""


@dataclass(frozen=True)
class Applied:
    """What changed, for metrics: per campaign-period, the lines before and after."""

    changed: dict[tuple[str, str], tuple[tuple[Line, ...], tuple[Line, ...]]]


Versions = Callable[[str], Sequence[TermsVersion]]
Period = tuple[str, str]  # campaign, period
CACHED_PERIODS = 256
CACHED_FACTS = 100_000
THREADED_FACTS = 1_000  # periods bigger than this are recomputed off the event loop


@dataclass(slots=True)
class PeriodState:
    """One campaign-period as stored, with the token its ``ver`` key held then."""

    token: bytes | None
    facts: dict[str, str]
    parsed: dict[str, ledger_facts.Parsed]
    clicks: dict[str, str]
    lines: tuple[Line, ...]
    encoded: dict[Line, str]  # each line's stored JSON, so unchanged lines are not re-encoded
    creators: set[str] = field(default_factory=set)  # already in their creator:<id> sets


class LedgerStore:
    def __init__(
        self, redis: Redis[bytes], prefix: str = "afx:pay:", cache_facts: int = CACHED_FACTS
    ) -> None:
        self.redis = redis
        self.p = prefix
        self.cache_facts = cache_facts
        self._periods: OrderedDict[Period, PeriodState] = OrderedDict()
        self._writer = uuid.uuid4().hex
        self._writes = 0
        # The ledger's generation this store writes to; None: not checked (tools, tests).
        self.generation: bytes | None = None

    def key(self, *parts: str) -> str:
        return self.p + ":".join(parts)

    async def offsets(self) -> dict[str, int]:
        raw = await self.redis.hgetall(self.key("offsets"))
        return {k.decode(): int(v) for k, v in raw.items()}

    async def positions(self) -> tuple[dict[str, int], dict[str, str]]:
        """The stored offsets and the fingerprints of the last applied records, together."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(self.key("offsets"))
            pipe.hgetall(self.key("last"))
            offsets, last = await pipe.execute()
        return (
            {k.decode(): int(v) for k, v in offsets.items()},
            {k.decode(): v.decode() for k, v in last.items()},
        )

    async def rebuilding(self) -> bool:
        return bool(await self.redis.exists(self.key("rebuilding")))

    async def join_generation(self) -> bytes:
        """Adopt the ledger's generation, starting one when there is none (a new or
        rebuilt ledger); ``apply`` refuses to write once it has changed."""
        await self.redis.set(self.key("generation"), uuid.uuid4().hex, nx=True)
        current = await self.redis.get(self.key("generation"))
        self.generation = current
        self._periods.clear()
        return current or b""

    async def generation_changed(self) -> bool:
        if self.generation is None:
            return False
        keys = (self.key("generation"), self.key("rebuilding"))
        current, rebuilding = await self.redis.mget(keys)
        return rebuilding is not None or current != self.generation

    async def apply(
        self, batch: Batch, versions: Versions, currency: Callable[[str], str]
    ) -> Applied:
        while True:
            try:
                return await self._apply_once(batch, versions, currency)
            except WatchError:
                self._periods.clear()  # the cached periods may hold what was not written
                continue
            except BaseException:
                self._periods.clear()
                raise

    async def _apply_once(
        self, batch: Batch, versions: Versions, currency: Callable[[str], str]
    ) -> Applied:
        confirm_campaigns = sorted({cid for cid, _, _ in batch.confirmations})
        async with self.redis.pipeline(transaction=True) as pipe:
            await pipe.watch(
                self.key("offsets"),
                self.key("generation"),
                self.key("rebuilding"),
                *(self.key("orders", c) for c in confirm_campaigns),
                *(self.key("pending", c) for c in sorted({f[0] for f in batch.facts})),
            )
            if self.generation is not None:
                current, rebuilding = await pipe.mget(
                    [self.key("generation"), self.key("rebuilding")]
                )
                if rebuilding is not None or current != self.generation:
                    raise LedgerReset("the ledger was cleared or is being rebuilt")
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
            for cid in sorted({c for c, _, _ in batch.orders}):
                placed = [(o, p) for c, o, p in batch.orders if c == cid]
                found = await pipe.hmget(self.key("pending", cid), [o for o, _ in placed])
                for (order, period), early in zip(placed, found, strict=True):
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
            ver_keys = [self.key("ver", c, p) for c, p in affected]
            if period_keys:  # a batch of dead letters only moves the offsets
                await pipe.watch(*period_keys, *ver_keys)
            tokens = await pipe.mget(ver_keys) if ver_keys else []
            state: dict[Period, PeriodState] = {}
            for cp, token in zip(affected, tokens, strict=True):
                cached = self._periods.get(cp)
                if cached is None or token is None or cached.token != token:
                    cached = await self._load(pipe, cp, token)
                self._periods[cp] = state[cp] = cached
                self._periods.move_to_end(cp)
            fact_writes: dict[Period, dict[str, str]] = defaultdict(dict)
            for cid, period, fid, raw in new_facts:
                entry = state[(cid, period)]
                if entry.facts.get(fid) != raw:
                    entry.facts[fid] = raw
                    entry.parsed[fid] = ledger_facts.parse_fact(fid, raw)
                    fact_writes[(cid, period)][fid] = raw
            click_writes, seen_adds = await self._tally_clicks(pipe, batch.clicks, state)
            recompute = set(fact_writes) | set(click_writes)
            changed: dict[Period, tuple[tuple[Line, ...], tuple[Line, ...]]] = {}
            new_lines: dict[Period, tuple[tuple[Line, ...], dict[Line, str]]] = {}
            for cid, period in sorted(recompute):
                entry = state[(cid, period)]
                terms, paid_in = versions(cid), currency(cid)
                if len(entry.parsed) > THREADED_FACTS:
                    # Pure and CPU-bound: in a thread the event loop (and the HTTP answers
                    # of this process) get their turn every few milliseconds.
                    after = await asyncio.to_thread(
                        _recompute,
                        cid,
                        period,
                        dict(entry.parsed),
                        dict(entry.clicks),
                        terms,
                        paid_in,
                    )
                else:
                    await asyncio.sleep(0)
                    after = _recompute(cid, period, entry.parsed, entry.clicks, terms, paid_in)
                if after != entry.lines:
                    changed[(cid, period)] = (entry.lines, after)
                    encoded = {x: entry.encoded.get(x) or _line_json(x) for x in after}
                    new_lines[(cid, period)] = (after, encoded)
            tokens_written = {cp: self._next_token() for cp in recompute}
            pipe.multi()
            for (cid, period), fields in fact_writes.items():
                pipe.hset(self.key("facts", cid, period), mapping=_fields(fields))
            for (cid, period), fields in click_writes.items():
                pipe.hset(self.key("clicks", cid, period), mapping=_fields(fields))
            for (cid, period), ids in seen_adds.items():
                pipe.sadd(self.key("seen", cid, period), *ids)
            for (cid, period), (after, encoded) in new_lines.items():
                blob = "[" + ",".join(encoded[x] for x in after) + "]"
                pipe.set(self.key("lines", cid, period), blob)
            for (cid, period), written in tokens_written.items():
                pipe.set(self.key("ver", cid, period), written)
            orders_by_campaign: dict[str, dict[str, str]] = defaultdict(dict)
            for cid, order, period in batch.orders:
                orders_by_campaign[cid][order] = period
            for cid, period_of in orders_by_campaign.items():
                pipe.hset(self.key("orders", cid), mapping=_fields(period_of))
                pipe.hdel(self.key("pending", cid), *period_of)
            for cid, order, raw in pending:
                pipe.hset(self.key("pending", cid), order, raw)
            if affected:
                pipe.sadd(self.key("cps"), *(f"{cid}|{period}" for cid, period in affected))
            creators = self._new_creators(state, changed, fact_writes, batch.clicks)
            by_creator: dict[str, list[str]] = defaultdict(list)
            for (cid, period), affiliates in creators.items():
                for affiliate in affiliates:
                    by_creator[affiliate].append(f"{cid}|{period}")
            for affiliate, periods in by_creator.items():
                pipe.sadd(self.key("creator", affiliate), *periods)
            if offsets:
                pipe.hset(self.key("offsets"), mapping={k: str(v) for k, v in offsets.items()})
                last = {tp: batch.last[tp] for tp in offsets if tp in batch.last}
                if last:
                    pipe.hset(self.key("last"), mapping=_fields(last))
            await pipe.execute()
            for cp, affiliates in creators.items():
                state[cp].creators |= affiliates
            for cp, written in tokens_written.items():
                entry = state[cp]
                entry.token = written
                if cp in new_lines:
                    entry.lines, entry.encoded = new_lines[cp]
            self._trim()
            return Applied(changed)

    @staticmethod
    def _new_creators(
        state: dict[Period, PeriodState],
        changed: dict[Period, tuple[tuple[Line, ...], tuple[Line, ...]]],
        fact_writes: dict[Period, dict[str, str]],
        clicks: Sequence[ClickItem],
    ) -> dict[Period, set[str]]:
        """Per period, the creators not yet in its ``creator:<affiliate>`` sets (as far as
        this store knows: a reloaded period registers its creators once more)."""
        found: dict[Period, set[str]] = defaultdict(set)
        for cp, (_, after) in changed.items():
            found[cp].update(x.affiliate_id for x in after)
        for cp, fields in fact_writes.items():
            parsed = state[cp].parsed
            for fid in fields:
                fact = parsed.get(fid)
                if isinstance(fact, ConversionFact):  # the only fact that names a creator
                    found[cp].add(fact.affiliate_id)
        for item in clicks:
            found[(item.campaign_id, item.period)].add(item.affiliate_id)
        fresh = {cp: affiliates - state[cp].creators for cp, affiliates in found.items()}
        return {cp: affiliates for cp, affiliates in fresh.items() if affiliates}

    def _next_token(self) -> bytes:
        self._writes += 1
        return f"{self._writer}:{self._writes}".encode()

    async def _load(self, pipe: Any, cp: Period, token: bytes | None) -> PeriodState:
        """A period as stored (under the caller's WATCH)."""
        cid, period = cp
        facts = {
            k.decode(): v.decode()
            for k, v in (await pipe.hgetall(self.key("facts", cid, period))).items()
        }
        clicks = {
            k.decode(): v.decode()
            for k, v in (await pipe.hgetall(self.key("clicks", cid, period))).items()
        }
        raw_lines = await pipe.get(self.key("lines", cid, period))
        lines = tuple(ledger_facts.line_from_json(d) for d in json.loads(raw_lines or b"[]"))
        return PeriodState(
            token,
            facts,
            {f: ledger_facts.parse_fact(f, raw) for f, raw in facts.items()},
            clicks,
            lines,
            {},
        )

    def _trim(self) -> None:
        """Forget the least recently used periods beyond the cache's bounds."""
        total = sum(len(p.facts) for p in self._periods.values())
        while self._periods and (len(self._periods) > CACHED_PERIODS or total > self.cache_facts):
            _, dropped = self._periods.popitem(last=False)
            total -= len(dropped.facts)

    async def _tally_clicks(
        self, pipe: Any, clicks: Sequence[ClickItem], state: dict[Period, PeriodState]
    ) -> tuple[dict[Period, dict[str, str]], dict[Period, list[str]]]:
        """Count the clicks not seen before; the changed tally fields and new ids per period."""
        by_cp: dict[Period, list[ClickItem]] = defaultdict(list)
        for item in clicks:
            by_cp[(item.campaign_id, item.period)].append(item)
        writes: dict[Period, dict[str, str]] = {}
        adds: dict[Period, list[str]] = {}
        for (cid, period), items in by_cp.items():
            ids = list(dict.fromkeys(i.click_id for i in items))
            known = await pipe.smismember(self.key("seen", cid, period), ids)
            fresh = {i for i, k in zip(ids, known, strict=True) if not k}
            tally = state[(cid, period)].clicks
            touched: set[str] = set()
            counted: set[str] = set()
            for item in items:
                if item.click_id not in fresh or item.click_id in counted:
                    continue
                counted.add(item.click_id)
                a = item.affiliate_id
                if BOT in item.reasons:
                    touched.add(_inc(tally, f"b|{a}"))
                    continue
                touched.add(_inc(tally, f"r|{a}"))
                day = datetime.fromtimestamp(item.occurred_at / 1000, UTC).strftime("%Y-%m-%d")
                touched.add(_inc(tally, f"d|{a}|{day}"))
                for reason in item.reasons:
                    # Reasons other than the known ones (a newer producer) count as "other".
                    known = reason if reason in CLICK_FLAGS else "other"
                    touched.add(_inc(tally, f"x|{a}|{known}"))
                if not item.reasons:
                    touched.add(_inc(tally, f"u|{a}"))
                    first = int(tally.get(f"f|{a}", str(item.occurred_at)))
                    tally[f"f|{a}"] = str(min(first, item.occurred_at))
                    touched.add(f"f|{a}")
            if counted:
                writes[(cid, period)] = {name: tally[name] for name in touched}
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


def _recompute(
    cid: str,
    period: str,
    parsed: Mapping[str, ledger_facts.Parsed],
    clicks: Mapping[str, str],
    terms: Sequence[TermsVersion],
    currency: str,
) -> tuple[Line, ...]:
    return ledger_lines(ledger_facts.period_facts(cid, period, parsed, clicks), terms, currency)


def _inc(tally: dict[str, str], name: str) -> str:
    tally[name] = str(int(tally.get(name, "0")) + 1)
    return name


def _line_json(line: Line) -> str:
    return compact_json(ledger_facts.line_to_json(line))


def _fields(values: dict[str, str]) -> FieldMap:
    return dict(values.items())
