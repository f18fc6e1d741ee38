"""The journal in Redis: one atomic step per campaign-period, so it runs on Redis Cluster.

A consumed batch is split by campaign-period. For each, the store keeps the
period's ``PeriodState`` in memory (loaded once from its line records, then kept
current), calls its pure ``step`` with the batch's new facts, and writes the
postings, the changed line records, the KPI counters and the balance sums in one
``compare_and_set`` on the period's slot: the write happens only if the period's
``ver`` still holds the token this store last wrote or read. Another consumer
that wrote the period in between makes it fail; the store then reloads the
period and decides again. A batch's cost is what it adds: the period is read
only on the first batch that touches it (or after another writer's).

Exactly once, without a transaction across slots: each fact's id joins the
period's ``events`` set (a click's id its ``clickids`` set) in the same step that
posts its effects, and a fact already there is skipped. The partitions' next
offsets (and the fingerprint of the last record, see ``divergence``) are written
after every period of the batch is: a crash in between replays the batch, and the
periods already written skip what they hold.

A content's stats and its release need the period of its publication, which only
the publication knows: the publication records ``<platform>:<content_id> ->
["<campaign>", "<period>", "<creator>", <awaiting>]`` in the ``{ledger}:content`` hash
(first one wins; ``awaiting`` is true while a content its creator's own key published
awaits its release: its release writes the route again with false, and the brand's
publication that takes it over writes its own route over it; a route of three elements,
written before, reads it from the content's state) before its
period is written, and the consumer reads it there (``content_route``). The content's
state (publication, latest snapshot, hold) is kept in its period's ``content`` hash,
written with the period's lines in the same step.

Lead confirmations need their conversion's period, which only the conversion
knows: a small script in the campaign's slot hands each over atomically (the
conversion records ``order -> period`` and collects an early confirmation; a
confirmation finds the period or waits in ``early``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from afflux.payouts import payout_records, refused_step, tallies
from afflux.payouts.batch import Applied, Batch, LedgerReset, Period, PeriodsRefused
from afflux.payouts.conversion_claims import claim_periods
from afflux.payouts.creator_balance import CreatorSums, outbox_value
from afflux.payouts.keys import Keys, creator_index_member
from afflux.payouts.snapshots import (
    COMPACTED_TOKEN,
    PeriodCompacted,
    PeriodExpired,
    refuse_compacted,
)
from afflux.payouts.tallies import ClickItem
from afflux.shared.core.clock import Clock
from afflux.shared.core.commission import ConversionFact, RefundFact
from afflux.shared.core.engagement import ContentEvent, ContentState, Publication
from afflux.shared.core.ids import derived_id
from afflux.shared.core.journal import review_queue
from afflux.shared.core.journal.bounds import CreatorSumOutOfRange, creators_out_of_range
from afflux.shared.core.journal.compaction import closes_at
from afflux.shared.core.journal.content_records import content_from_json, content_to_json
from afflux.shared.core.journal.conversion_copies import new_conversions, new_refunds
from afflux.shared.core.journal.override_lines import override_agencies
from afflux.shared.core.journal.period import PeriodState, StepInput, StepResult
from afflux.shared.core.journal.records import (
    LineRecord,
    Posting,
    record_from_json,
    record_to_json,
)
from afflux.shared.core.journal.review_lines import ReviewFact, Standing
from afflux.shared.core.periods import period_bounds
from afflux.shared.core.terms import TermsVersion
from afflux.shared.io.clock_source import system_clock
from afflux.shared.io.redis_client import (
    WriteCommand,
    compare_and_set,
    members_of,
    refused_for_now,
)

Versions = Callable[[str], Sequence[TermsVersion]]
CACHED_PERIODS = 256
CACHED_LINES = 400_000
RETENTION_DAYS = 400
# {rv:<conversion>}:entry: where a conversion of a campaign with review terms is
REVIEW_ENTRY = "entry"
# {ledger}:reviews, the same for every conversion, as ledgers before the entries kept it
REVIEW_INDEX = "reviews"
# Per campaign-period: the review queue's status sets (``review:<status>``) and the mark
# that they were written for every line (``review_queue``).
QUEUE_SET = "review:"
QUEUE_WRITTEN = "review:written"
# {c:<campaign>}:first_orders: first order id -> its standing (the signals holding it, its
# decision) while held or since, as its period last changed it; {c:<campaign>}:renewals:<order>:
# the periods holding renewals of that order, which follow it.
FIRST_ORDERS = "first_orders"
REGISTERED_MAX = 1_000_000  # index entries this store remembers having written
_CHUNK = 2_000  # field/value pairs per write command
_EXACT = 2**53

__all__ = [
    "Applied",
    "Batch",
    "ClickItem",
    "LedgerReset",
    "LedgerStore",
    "Period",
    "PeriodsRefused",
    "posting_json",
]


def refusal_cause(exc: Exception) -> Exception:
    """What made ``LedgerStore.apply`` refuse: the first refused period's exception."""
    if isinstance(exc, PeriodsRefused):
        exc = next(iter(exc.refused.values()))
    return exc.cause if isinstance(exc, _DecisionFailed) else exc


class _DecisionFailed(Exception):
    """A period's load or decision raised (not Redis being away): nothing of it written.
    ``kept``: the cached period is as stored again (``refused_step``), else it is dropped."""

    def __init__(self, cause: Exception, *, kept: bool = False) -> None:
        super().__init__(repr(cause))
        self.cause = cause
        self.kept = kept


class _RefusedAsStored(Exception):
    """The bound refused a step and the cached period was put back as stored."""

    def __init__(self, cause: CreatorSumOutOfRange, cached: _Cached) -> None:
        super().__init__(repr(cause))
        self.cause = cause
        self.cached = cached


@dataclass
class _Items:
    conversions: list[ConversionFact] = field(default_factory=list)
    refunds: list[RefundFact] = field(default_factory=list)
    confirmations: list[tuple[str, str]] = field(default_factory=list)
    clicks: list[ClickItem] = field(default_factory=list)
    content: list[ContentEvent] = field(default_factory=list)
    reviews: list[ReviewFact] = field(default_factory=list)
    first_orders: list[tuple[str, Standing]] = field(default_factory=list)
    # conversion id -> the other period of the campaign that claimed it first: refused
    elsewhere: dict[str, str] = field(default_factory=dict)


@dataclass
class _Cached:
    token: bytes | None
    state: PeriodState
    tally: dict[str, str]
    # The period's KPI counters and balance sums as stored: a step writes their new
    # values (one HSET of many fields) instead of one HINCRBY per field, which cost the
    # server a script call each. Exact because every write is a compare-and-set on the
    # period's version: what this store last wrote or read is what the hash holds.
    kpis: dict[str, int] = field(default_factory=dict)
    sums: dict[str, int] = field(default_factory=dict)
    # (creator, approval time) pairs this store wrote to the period's ``due:<creator>``
    # sets: a posting at a time already there needs no ZADD (most of a batch's postings
    # fall on times earlier batches wrote). Empty when loaded: then the first write of
    # each is sent again, which changes nothing.
    due: set[tuple[str, int]] = field(default_factory=set)
    # When the period's per-event facts expire, as last written (``facts_until``); None:
    # written before the ledger kept it, or never written.
    facts_until: int | None = None
    # Line id -> the conversion's review-queue status as the period's status sets hold
    # it (``review_queue``); None: the sets were never written for this period (a
    # campaign without review terms, or a ledger written before them), so the next write
    # of a campaign with review terms writes every line's.
    queue: dict[str, str] | None = None

    def weight(self) -> int:
        """Lines, and the counters as the tenth of a line each takes in memory."""
        counters = len(self.tally) + len(self.kpis) + len(self.sums) + len(self.due)
        return len(self.state.lines) + counters // 10


# Conversion: record its period, answer an early confirmation (or nil).
_ORDER_PLACED = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return redis.call('HGET', KEYS[2], ARGV[1])
"""
# Confirmation: answer the order's period, or keep the confirmation until it comes.
_ORDER_CONFIRMED = """
local period = redis.call('HGET', KEYS[1], ARGV[1])
if not period then redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) end
return period
"""


# Per partition (slot, next offset, fingerprint): store both, never moving an offset back
# (a consumer that lost its partitions may still finish a batch behind the new owner).
# KEYS[1] the generation, KEYS[2] the replay mark; ARGV[1] a new generation. One that
# starts the generation (the ledger new, rebuilt or lost) marks the replay ``pending``
# in the same step, unless a rebuild left its mark: from then on no payout run pays
# until the topics' ends are known and reached, not even while this consumer reads them
# and another one already replays. Answers {started, the generation}.
_JOIN_GENERATION = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('HSET', KEYS[2], 'pending', '1') end
  return {1, ARGV[1]}
end
return {0, redis.call('GET', KEYS[1])}
"""

# KEYS[1] the replay mark; ARGV: topic|partition, end offset, ... The ends in place of a
# ``pending`` mark (none left when the topics are empty); 0 when it is not pending.
_REPLAY_ENDS = """
if redis.call('HEXISTS', KEYS[1], 'pending') == 0 then return 0 end
redis.call('DEL', KEYS[1])
for i = 1, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
"""

_POSITIONS = """
-- KEYS[2], KEYS[3]: the ledger's generation and rebuild mark; ARGV[1]: the generation
-- the writer joined ('': not checked). A batch under way when the ledger was cleared
-- (a rebuild, or Redis emptied) must not store its offsets in the cleared ledger: the
-- replay would start there and skip everything before.
if ARGV[1] ~= '' and (redis.call('GET', KEYS[2]) ~= ARGV[1] or
    redis.call('EXISTS', KEYS[3]) == 1) then
  return 0
end
for i = 2, #ARGV, 3 do
  local current = redis.call('HGET', KEYS[1], 'o:' .. ARGV[i])
  if not current or tonumber(current) < tonumber(ARGV[i + 1]) then
    redis.call('HSET', KEYS[1], 'o:' .. ARGV[i], ARGV[i + 1])
    if ARGV[i + 2] ~= '' then
      redis.call('HSET', KEYS[1], 'f:' .. ARGV[i], ARGV[i + 2])
    else
      redis.call('HDEL', KEYS[1], 'f:' .. ARGV[i])
    end
  end
end
return 1
"""


class LedgerStore:
    def __init__(
        self,
        # A RedisCluster (``redis_client.connect``) speaks the same commands; its type
        # stubs do not say so.
        redis: Redis[bytes],
        keys: Keys | None = None,
        *,
        cache_lines: int = CACHED_LINES,
        retention_days: int = RETENTION_DAYS,
        clock: Clock = system_clock,
    ) -> None:
        self.redis = redis
        self.keys = keys or Keys()
        self.cache_lines = cache_lines
        self.retention_ms = retention_days * 86_400_000
        self.clock = clock
        self._periods: OrderedDict[Period, _Cached] = OrderedDict()
        self._registered: set[Period | tuple[str, Period]] = set()
        self.creator_sums = CreatorSums(redis, self.keys)
        self._writer = uuid.uuid4().hex[:12]
        self._writes = 0
        # The ledger's generation this store writes to; None: not checked (tools, tests).
        self.generation: bytes | None = None
        # Whether this store started it (the ledger was new, rebuilt or lost).
        self.started_generation = False

    # -- positions and generation ------------------------------------------------

    async def positions(self) -> tuple[dict[str, int], dict[str, str]]:
        """The stored next offsets, and the fingerprints of the last applied records."""
        raw = await self.redis.hgetall(self.keys.ledger("positions"))
        offsets: dict[str, int] = {}
        last: dict[str, str] = {}
        for name, value in raw.items():
            kind, _, slot = name.decode().partition(":")
            if kind == "o":
                offsets[slot] = int(value)
            elif kind == "f":
                last[slot] = value.decode()
        return offsets, last

    async def offsets(self) -> dict[str, int]:
        return (await self.positions())[0]

    async def rebuilding(self) -> bool:
        return bool(await self.redis.exists(self.keys.ledger("rebuilding")))

    async def join_generation(self) -> bytes:
        """Adopt the ledger's generation, starting one when there is none (a new or
        rebuilt ledger); ``apply`` refuses to write once it has changed."""
        started, current = await self.redis.eval(  # type: ignore[no-untyped-call]
            _JOIN_GENERATION,
            2,
            self.keys.ledger("generation"),
            self.keys.ledger("replay-until"),
            uuid.uuid4().hex,
        )
        self.generation = current
        self.started_generation = bool(started)
        self._periods.clear()
        self._registered.clear()
        await self.drain_outboxes()
        return current or b""

    async def drain_outboxes(self) -> None:
        """Bring every creator's sums up to the postings written (``creator_balance``)."""
        raw: set[bytes] = await self.redis.smembers(self.keys.ledger("cps"))
        cps = [tuple(m.decode().split("|", 1)) for m in raw]
        for start in range(0, len(cps), 500):
            await self.creator_sums.drain((c, p) for c, p in cps[start : start + 500])

    async def replay_ends_pending(self) -> bool:
        """Whether the replay mark waits for the topics' ends (``join_generation``)."""
        return bool(await self.redis.hexists(self.keys.ledger("replay-until"), "pending"))

    async def hold_until_replayed(self, ends: Mapping[str, int]) -> bool:
        """Put ``ends`` (the topics' end offsets when the generation began) in place of the
        ``pending`` mark ``join_generation`` set: what the replay must reach before a
        payout run or compaction pass (``compaction.ledger_behind``). Whether it replaced
        one (a rebuild's mark, with its ends, is left as it is)."""
        args: list[str | int] = []
        for slot, offset in ends.items():
            args += [slot, offset]
        done = await self.redis.eval(  # type: ignore[no-untyped-call]
            _REPLAY_ENDS, 1, self.keys.ledger("replay-until"), *args
        )
        return bool(done)

    async def generation_changed(self) -> bool:
        if self.generation is None:
            return False
        current, rebuilding = await self.redis.mget(
            [self.keys.ledger("generation"), self.keys.ledger("rebuilding")]
        )
        return rebuilding is not None or current != self.generation

    # -- content routes ------------------------------------------------------------

    async def content_route(self, key: str) -> tuple[str, str, str] | None:
        """(campaign, period, creator) of a published content (``<platform>:<content_id>``)."""
        found = await self.content_route_awaiting(key)
        return None if found is None else found[0]

    async def content_route_awaiting(self, key: str) -> tuple[tuple[str, str, str], bool] | None:
        """A published content's route, and whether it awaits its release (first published
        by its creator's own key, no release applied: the brand's publication may take it
        over, ``afflux.shared.core.content.takes_over``)."""
        raw: bytes | None = await self.redis.hget(self.keys.ledger("content"), key)
        if raw is None:
            return None
        campaign_id, period, affiliate_id, *awaiting = orjson.loads(raw)
        route = (str(campaign_id), str(period), str(affiliate_id))
        if awaiting:
            return route, bool(awaiting[0])
        # A route written before it said so: as the content's state in its period holds it.
        state: bytes | None = await self.redis.hget(self.keys.period(*route[:2], "content"), key)
        return route, state is not None and content_from_json(orjson.loads(state)).awaits_release

    async def content_state(self, key: str) -> ContentState | None:
        """A content's publication, latest snapshot and review state, as the ledger holds
        them (None: never published, or its period's facts expired)."""
        route = await self.content_route(key)
        if route is None:
            return None
        raw: bytes | None = await self.redis.hget(self.keys.period(*route[:2], "content"), key)
        return None if raw is None else content_from_json(orjson.loads(raw))

    async def content_states(self, campaign_id: str, period: str) -> list[ContentState]:
        """Every content published in a campaign-period, by key."""
        raw = await self.redis.hgetall(self.keys.period(campaign_id, period, "content"))
        return [content_from_json(orjson.loads(raw[k])) for k in sorted(raw)]

    # -- applying ----------------------------------------------------------------

    async def apply(
        self, batch: Batch, versions: Versions, currency: Callable[[str], str]
    ) -> Applied:
        if await self.generation_changed():
            raise LedgerReset("the ledger was cleared or is being rebuilt")
        try:
            return await self._apply(batch, versions, currency)
        except PeriodsRefused:
            raise  # the refused periods are as stored or out of the cache; the others written
        except BaseException as exc:
            self._periods.clear()  # a period may hold what was not written
            if isinstance(exc, ResponseError) and (passing := refused_for_now(exc)) is not exc:
                raise passing from exc  # Redis 6 wraps OOM and the like in a script's error
            raise

    async def _apply(
        self, batch: Batch, versions: Versions, currency: Callable[[str], str]
    ) -> Applied:
        items: dict[Period, _Items] = defaultdict(_Items)
        creators: dict[Period, set[str]] = defaultdict(set)
        early_seen: list[tuple[str, str]] = []
        # Before anything is handed over or registered: a copy another period claimed
        # first names nothing (its period's step refuses it).
        claimed = await claim_periods(
            self.redis, self.keys, batch.conversions, lambda c, p: self._expiry(p, versions(c))
        )
        for cp, found in claimed.items():
            items[cp].elsewhere = found
        for cid, period, c in batch.conversions:
            items[(cid, period)].conversions.append(c)
            if c.conversion_id not in items[(cid, period)].elsewhere:
                creators[(cid, period)].add(c.affiliate_id)
        for cid, period, r in batch.refunds:
            items[(cid, period)].refunds.append(r)
        for click in batch.clicks:
            items[(click.campaign_id, click.period)].clicks.append(click)
            creators[(click.campaign_id, click.period)].add(click.affiliate_id)
        for cid, period, event in batch.content:
            items[(cid, period)].content.append(event)
            if isinstance(event, Publication):
                creators[(cid, period)].add(event.affiliate_id)
        for cid, period, review in batch.reviews:
            items[(cid, period)].reviews.append(review)
        if batch.content_routes or batch.content_reroutes:  # idempotent: before the periods'
            async with self.redis.pipeline(transaction=False) as pipe:
                for key, route in batch.content_routes.items():
                    record = [*route, key in batch.awaiting]
                    pipe.hsetnx(self.keys.ledger("content"), key, orjson.dumps(record))
                for key, record in batch.content_reroutes.items():  # after: they replace
                    pipe.hset(self.keys.ledger("content"), key, orjson.dumps(record))
                await pipe.execute()
        if batch.review_index:  # idempotent, so before the periods' writes
            # The first decision stands: a conflicting copy of a conversion (refused by its
            # period's step) must not name its creator in the review queue.
            async with self.redis.pipeline(transaction=False) as pipe:
                # One key per conversion, expiring with its period's facts as they stand
                # now (a hash of them all, kept for good, grew by every conversion).
                for conversion, entry in batch.review_index.items():
                    cp = (str(entry[0]), str(entry[1]))
                    if conversion in claimed.get(cp, {}):
                        continue
                    expire_at = self._expiry(cp[1], versions(cp[0]))
                    key = self.keys.review(conversion, REVIEW_ENTRY)
                    pipe.set(key, orjson.dumps(entry), nx=True, pxat=expire_at)
                await pipe.execute()
        await self._hand_over(batch, items, early_seen)
        await self._first_orders_of_renewals(batch, items, versions)
        for (cid, period), names in creators.items():  # agencies earn on these creators' lines
            names |= override_agencies(versions(cid), period, names)
        await self._register(creators, items)
        if any(c.first_order_id for _, _, c in batch.conversions):
            results = await self._step_in_order(items, versions, currency)
        else:
            results = await self._steps_isolated(items, versions, currency)
        done = list(zip(sorted(items), results, strict=True))
        # First orders whose hold or decision moved: their renewals in later periods follow
        # (and the held ones the batch names, for a replay whose steps were written before).
        named = self._held_orders(items)
        while follow := await self._renewals_to_follow(done[-len(results) :], named):
            named = []
            results = await asyncio.gather(
                *(
                    self._follow(cp, follow[cp], versions(cp[0]), currency(cp[0]))
                    for cp in sorted(follow)
                )
            )
            done += zip(sorted(follow), results, strict=True)
        # Before the offsets: a crash in between leaves the outboxes to ``drain``. Every
        # period the batch touched, not only those it posted in: a replay after Redis
        # came back without its last second (AOF everysec) posts nothing new, and must
        # still bring the sums up to an outbox whose sync was lost.
        await self.creator_sums.sync(sorted({cp for cp, _ in done}))
        if early_seen:
            async with self.redis.pipeline(transaction=False) as pipe:
                for cid, order in early_seen:
                    pipe.hdel(self.keys.campaign(cid, "early"), order)
                await pipe.execute()
        await payout_records.restore(self, batch.payouts)  # idempotent: before the offsets
        if batch.offsets:
            args: list[str | int | bytes] = [self.generation or ""]
            for slot, offset in batch.offsets.items():
                args += [slot, offset, batch.last.get(slot, "")]
            stored = await self.redis.eval(  # type: ignore[no-untyped-call]
                _POSITIONS,
                3,
                self.keys.ledger("positions"),
                self.keys.ledger("generation"),
                self.keys.ledger("rebuilding"),
                *args,
            )
            if not stored:
                raise LedgerReset("the ledger was cleared or is being rebuilt")
        self._trim()
        postings: dict[Period, tuple[Posting, ...]] = defaultdict(tuple)
        kpis: dict[Period, dict[str, int]] = defaultdict(dict)
        for cp, step in done:
            postings[cp] += step.postings
            for name, amount in step.kpis.items():
                kpis[cp][name] = kpis[cp].get(name, 0) + amount
        return Applied(dict(postings), dict(kpis))

    async def _steps_isolated(
        self, items: dict[Period, _Items], versions: Versions, currency: Callable[[str], str]
    ) -> list[StepResult]:
        """Every period's step, all run to their end: a period whose decision raised is
        reported with what the others wrote, so that a consumer applies only its items
        one by one (a whole poll applied item by item cost ten normal polls)."""
        periods = sorted(items)
        outcomes = await asyncio.gather(
            *(self._step(cp, items[cp], versions(cp[0]), currency(cp[0])) for cp in periods),
            return_exceptions=True,
        )
        for outcome in outcomes:  # Redis away, a cancellation: the caller's whole-batch path
            if isinstance(outcome, BaseException) and not isinstance(outcome, _DecisionFailed):
                raise outcome
        return self._settled(periods, outcomes)

    async def _follow(
        self, cp: Period, items: _Items, versions: Sequence[TermsVersion], currency: str
    ) -> StepResult:
        """A later period's renewals take their first order's new standing; a compacted
        period's statement is final (its renewals were approved: none waited on a hold)."""
        try:
            return await self._step(cp, items, versions, currency)
        except _DecisionFailed as exc:
            if isinstance(exc.cause, PeriodCompacted | PeriodExpired):
                return StepResult((), (), {})
            raise

    async def _step_in_order(
        self, items: dict[Period, _Items], versions: Versions, currency: Callable[[str], str]
    ) -> list[StepResult]:
        """The periods one after the other, each campaign's earliest first: a renewal in the
        batch gets the standing its first order's step in the same batch gave, before its
        own step (never approved at its lock for a moment while its first order is held).
        A refused period hands nothing over: its later renewals keep the standing stored,
        and follow it once its items are applied (as when they come in a later poll)."""
        periods = sorted(items)
        outcomes: list[StepResult | _DecisionFailed] = []
        for cp in periods:
            try:
                result = await self._step(cp, items[cp], versions(cp[0]), currency(cp[0]))
            except _DecisionFailed as exc:
                outcomes.append(exc)
                continue
            outcomes.append(result)
            for order, standing in result.first_orders:
                for later in periods:
                    if (
                        later[0] == cp[0]
                        and later > cp
                        and any(c.first_order_id == order for c in items[later].conversions)
                    ):
                        items[later].first_orders.append((order, standing))
        return self._settled(periods, outcomes)

    def _settled(
        self, periods: list[Period], outcomes: Sequence[StepResult | BaseException]
    ) -> list[StepResult]:
        """The steps' results, or ``PeriodsRefused`` naming the periods whose decision
        raised (dropped from the cache: their step changed the cached state, then raised;
        kept when the bound refused it and the state was put back as stored)
        with what the others wrote."""
        refused = {
            cp: outcome.cause
            for cp, outcome in zip(periods, outcomes, strict=True)
            if isinstance(outcome, _DecisionFailed)
        }
        written = [
            (cp, o) for cp, o in zip(periods, outcomes, strict=True) if isinstance(o, StepResult)
        ]
        if not refused:
            return [o for _, o in written]
        for cp, outcome in zip(periods, outcomes, strict=True):
            if isinstance(outcome, _DecisionFailed) and not outcome.kept:
                self._periods.pop(cp, None)
        raise PeriodsRefused(
            refused,
            Applied({cp: o.postings for cp, o in written}, {cp: o.kpis for cp, o in written}),
        )

    async def _first_orders_of_renewals(
        self, batch: Batch, items: dict[Period, _Items], versions: Versions
    ) -> None:
        """Each renewal's period is noted under its first order (before the standing is read:
        a step of the first order's period that writes a standing after this read finds
        the period), and the first order's standing from its own period is handed over."""
        renewals = [
            (cid, period, c.first_order_id)
            for cid, period, c in batch.conversions
            if c.first_order_id
        ]
        if not renewals:
            return
        # Kept as long as the latest of its periods' per-event facts: what follows a
        # first order's review is decided long before (one set per subscription
        # otherwise stayed for good).
        expiries: dict[str, int] = {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for cid, period, order in renewals:
                key = self.keys.campaign(cid, f"renewals:{order}")
                pipe.sadd(key, period)
                expiries[key] = max(expiries.get(key, 0), self._expiry(period, versions(cid)))
            for key, expire_at in expiries.items():
                pipe.pexpireat(key, expire_at)
            await pipe.execute()
        async with self.redis.pipeline(transaction=False) as pipe:
            for cid, _, order in renewals:
                pipe.hget(self.keys.campaign(cid, FIRST_ORDERS), order)
            found = await pipe.execute()
        for (cid, period, order), raw in zip(renewals, found, strict=True):
            if raw is not None:
                items[(cid, period)].first_orders.append((order, _standing(orjson.loads(raw))))

    def _held_orders(self, items: dict[Period, _Items]) -> list[tuple[Period, str, Standing]]:
        """The held orders the batch names (its conversions, the conversions its decisions
        are on) as their periods stand after it: a batch replayed after its steps were
        written, but before their renewals' periods followed, finds nothing new to step,
        and must still hand on what those steps changed."""
        out: list[tuple[Period, str, Standing]] = []
        for cp, its in sorted(items.items()):
            cached = self._periods.get(cp)
            if cached is None:
                continue
            state = cached.state
            orders = {c.order_id for c in its.conversions if not c.first_order_id}
            for review in its.reviews:
                record = state.lines.get(derived_id("line", review.conversion_id))
                if record is not None and record.order_id is not None:
                    orders.add(record.order_id)
            for order in sorted(orders):
                standing = state.first_order(order)
                if standing is not None and standing[0]:
                    out.append((cp, order, standing))
        return out

    async def _renewals_to_follow(
        self,
        done: Sequence[tuple[Period, StepResult]],
        named: Sequence[tuple[Period, str, Standing]] = (),
    ) -> dict[Period, _Items]:
        """The later periods holding renewals of the first orders whose standing the steps
        ``done`` changed (or ``named``), with those standings (written first, for renewals
        still to come)."""
        changed = [(cp, order, st) for cp, r in done for order, st in r.first_orders]
        stepped = {(cp, order) for cp, order, _ in changed}
        changed += [x for x in named if (x[0], x[1]) not in stepped]
        if not changed:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for (cid, _), order, standing in changed:
                raw = orjson.dumps([list(standing[0]), standing[1]])
                pipe.hset(self.keys.campaign(cid, FIRST_ORDERS), order, raw)
            for (cid, _), order, _ in changed:
                pipe.smembers(self.keys.campaign(cid, f"renewals:{order}"))
            answers = await pipe.execute()
        follow: dict[Period, _Items] = defaultdict(_Items)
        for ((cid, period), order, standing), periods in zip(
            changed, answers[len(changed) :], strict=True
        ):
            for later in sorted(p.decode() if isinstance(p, bytes) else p for p in periods):
                if later != period:
                    follow[(cid, later)].first_orders.append((order, standing))
        return follow

    async def _hand_over(
        self, batch: Batch, items: dict[Period, _Items], early_seen: list[tuple[str, str]]
    ) -> None:
        """Lead confirmations to their conversion's period, whichever came first."""
        for cid, period, c in batch.conversions:
            if c.kind != "lead" or cid not in batch.confirm_required:
                continue
            if c.conversion_id in items[(cid, period)].elsewhere:
                continue  # refused: the order stays with the period that holds it
            early = await self.redis.eval(  # type: ignore[no-untyped-call]
                _ORDER_PLACED,
                2,
                self.keys.campaign(cid, "orders"),
                self.keys.campaign(cid, "early"),
                c.order_id,
                period,
            )
            if early is not None:
                items[(cid, period)].confirmations.append((c.order_id, early.decode()))
                early_seen.append((cid, c.order_id))
        for cid, order, event_id in batch.confirmations:
            found = await self.redis.eval(  # type: ignore[no-untyped-call]
                _ORDER_CONFIRMED,
                2,
                self.keys.campaign(cid, "orders"),
                self.keys.campaign(cid, "early"),
                order,
                event_id,
            )
            if found is not None:
                items[(cid, found.decode())].confirmations.append((order, event_id))

    async def _register(
        self, creators: dict[Period, set[str]], items: dict[Period, _Items]
    ) -> None:
        """The indexes reads start from (idempotent, so before the periods' writes; what
        this store registered already is not sent again)."""
        new_cps = [cp for cp in items if cp not in self._registered]
        new_creators = [
            (affiliate, cp)
            for cp, affiliates in creators.items()
            for affiliate in affiliates
            if (affiliate, cp) not in self._registered
        ]
        if not (new_cps or new_creators):
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            if new_cps:
                pipe.sadd(self.keys.ledger("cps"), *(f"{c}|{p}" for c, p in new_cps))
            for cid, period in new_cps:
                pipe.sadd(self.keys.campaign(cid, "periods"), period)
            by_shard: dict[str, dict[str | bytes, int]] = defaultdict(dict)
            for affiliate, (cid, period) in new_creators:
                member = creator_index_member(affiliate, cid, period)
                by_shard[self.keys.creator_index(affiliate)][member] = 0
            for shard, members in by_shard.items():
                pipe.zadd(shard, members)
            await pipe.execute()
        if len(self._registered) > REGISTERED_MAX:
            self._registered.clear()
        self._registered.update(new_cps)
        self._registered.update(new_creators)

    async def _step(
        self, cp: Period, items: _Items, versions: Sequence[TermsVersion], currency: str
    ) -> StepResult:
        while True:
            try:
                cached = self._periods.get(cp)
                until = None if cached is None else cached.facts_until
                if until is not None and self.clock() >= until:
                    # Gone from Redis by now, unless another writer kept them longer since:
                    # read the period again (``_load`` refuses it if they are gone).
                    self._periods.pop(cp, None)
                    cached = None
                if cached is not None and not cached.state.opened_under(versions):
                    # Opened before its terms were read (the campaign view lagged across
                    # the period's start): loaded again, as any other consumer loads it.
                    self._periods.pop(cp, None)
                    cached = None
                if cached is None:
                    cached = await self._load(cp, versions, currency)
                cached.state.use_versions(versions)
                result, commands = await self._decide(cp, cached, items)
            except (RedisError, OSError):
                raise
            except _RefusedAsStored as exc:
                self._periods[cp] = exc.cached
                self._periods.move_to_end(cp)
                raise _DecisionFailed(exc.cause, kept=True) from exc.cause
            except Exception as exc:  # a compacted period, a stored record, an item
                raise _DecisionFailed(exc) from exc
            token = self._next_token(cached.state.seq)
            written = await compare_and_set(
                self.redis, self.keys.period(*cp, "ver"), cached.token, token, commands
            )
            if written:
                cached.token = token
                self._periods[cp] = cached
                self._periods.move_to_end(cp)
                return result
            self._periods.pop(cp, None)  # another writer was first: decide again on its state

    async def _decide(
        self, cp: Period, cached: _Cached, items: _Items
    ) -> tuple[StepResult, list[WriteCommand]]:
        k = self.keys
        cid, period = cp
        fact_ids = [c.event_id for c in items.conversions]
        fact_ids += [r.event_id for r in items.refunds]
        fact_ids += [event for _, event in items.confirmations]
        fact_ids += [e.event_id for e in items.content]
        fact_ids += [r.event_id for r in items.reviews]
        click_ids = list(dict.fromkeys(c.click_id for c in items.clicks))
        known_facts, known_clicks = await members_of(
            self.redis,
            [
                (k.period(cid, period, "events"), fact_ids),
                (k.period(cid, period, "clickids"), click_ids),
            ],
        )
        new_ids: list[str] = []

        def fresh(event_id: str) -> bool:
            if event_id in known_facts:
                return False
            known_facts.add(event_id)  # a copy within the batch counts once too
            new_ids.append(event_id)
            return True

        # Before the step changes anything cached: a conflicting copy fails the batch, and
        # alone it is dead-lettered.
        conversions = new_conversions(
            cached.state.lines,
            [c for c in items.conversions if fresh(c.event_id)],
            items.elsewhere,
        )
        refunds = new_refunds(cached.state.lines, [r for r in items.refunds if fresh(r.event_id)])
        confirmations = tuple(x for x in items.confirmations if fresh(x[1]))
        content = tuple(e for e in items.content if fresh(e.event_id))
        reviews = tuple(r for r in items.reviews if fresh(r.event_id))
        clicks: list[ClickItem] = []
        for click in items.clicks:
            if click.click_id not in known_clicks:
                known_clicks.add(click.click_id)
                clicks.append(click)
        # Counted into the cached tally in place, as the step changes the cached state:
        # a copy per batch would cost what the period holds (every creator's clicks per
        # day), not what the batch adds. A write that fails drops the whole cached period.
        tally = cached.tally
        seq = cached.state.seq
        touched, valid = tallies.count_clicks(tally, clicks, cached.state.contents)
        figures = tuple(tallies.figures(tally, a) for a in sorted(valid))
        result = cached.state.step(
            StepInput(
                conversions,
                refunds,
                confirmations,
                figures,
                content,
                reviews=reviews,
                first_orders=tuple(items.first_orders),
            )
        )
        # Before anything is written: the item that takes a creator past the bound is
        # dead-lettered (the batch fails, its items are applied one by one).
        refusals = creators_out_of_range(result.postings, cached.sums, f"{cid} {period}")
        if refusals:
            refused = CreatorSumOutOfRange(refusals[0][1], frozenset(c for c, _ in refusals))
            try:
                cached.state = await refused_step.as_stored(
                    self.redis,
                    k,
                    cached.state,
                    tally,
                    lines=[r.line_id for r in result.changed],
                    tally_fields=sorted(touched),
                    orders=[o for o, _ in confirmations],
                    contents=[e.key for e in content],
                    seq=seq,
                )
            except (RedisError, OSError):
                raise
            except Exception:
                raise refused from None  # the period is dropped: the next step reads it
            raise _RefusedAsStored(refused, cached)
        # Before the writes' PEXPIREATs, which a key created after them would miss.
        commands: list[WriteCommand] = [
            ("HSET", k.period(cid, period, "confirmed"), o, e) for o, e in confirmations
        ]
        commands += self._writes_of(cp, cached, result, touched, new_ids, clicks)
        return result, commands

    def _writes_of(
        self,
        cp: Period,
        cached: _Cached,
        result: StepResult,
        touched: set[str],
        new_ids: list[str],
        clicks: list[ClickItem],
    ) -> list[WriteCommand]:
        k = self.keys
        cid, period = cp

        def at(name: str) -> str:
            return k.period(cid, period, name)

        tally = cached.tally
        commands: list[WriteCommand] = []
        records = [(r.line_id, _json(record_to_json(r))) for r in result.changed]
        commands += _pairs("HSET", at("lines"), records)
        commands += _pairs("HSET", at("clicks"), [(name, tally[name]) for name in touched])
        contents = [(c.key, _json(content_to_json(c))) for c in result.contents]
        commands += _pairs("HSET", at("content"), contents)
        for chunk in _chunks([(i, "") for i in new_ids]):
            commands.append(("SADD", at("events"), *[i for i, _ in chunk]))
        for chunk in _chunks([(c.click_id, "") for c in clicks]):
            commands.append(("SADD", at("clickids"), *[i for i, _ in chunk]))
        by_creator: dict[str, list[Posting]] = defaultdict(list)
        for posting in result.postings:
            by_creator[posting.affiliate_id].append(posting)
        sums: dict[str, int] = defaultdict(int)
        for affiliate, postings in sorted(by_creator.items()):
            entries = [(p.seq, posting_json(p)) for p in postings]
            commands += _pairs("ZADD", at(f"journal:{affiliate}"), entries)
            due: dict[int, int] = defaultdict(int)
            total = reversed_ = 0
            for p in postings:
                due[p.approve_at] += p.amount_minor
                total += p.amount_minor
                if p.component == "refund" or p.component.startswith("clawback"):
                    reversed_ -= p.amount_minor
            sums[f"total|{affiliate}"] += total
            if reversed_:
                sums[f"reversed|{affiliate}"] += reversed_
            known = cached.due
            times = [(a, a) for a in due if (affiliate, a) not in known]
            known.update((affiliate, a) for a, _ in times)
            commands += _pairs("ZADD", at(f"due:{affiliate}"), times)
            commands += _increments(at(f"dueamt:{affiliate}"), due)
        commands += _updated(at("sums"), cached.sums, sums)
        if result.postings:
            first = str(min(p.seq for p in result.postings))
            commands.append(("HSET", at("outbox"), first, outbox_value(result.postings)))
        commands += _updated(at("kpis"), cached.kpis, result.kpis)
        expire_at = self._expiry(period, cached.state.versions)
        if any(v.terms.review is not None for v in cached.state.versions):
            commands += _queue_writes(at, cached, result, expire_at)
        # Per-event facts expire after the retention (postings, sums and KPIs stay),
        # counted from the period's end, or from now for a period already over (a
        # rebuild, a late fact): an expiry in the past would delete at once the ids
        # that make a replay of this very step change nothing.
        for name in ("lines", "events", "clickids", "confirmed", "content"):
            commands.append(("PEXPIREAT", at(name), expire_at))
        # Kept for good: a later load tells a period whose facts expired from a new one.
        # Only once the period holds a fact id (``_load`` reads their absence as expiry).
        if new_ids or clicks or cached.facts_until is not None:
            commands.append(("SET", at("facts_until"), expire_at))
            cached.facts_until = expire_at
        return commands

    async def _load(self, cp: Period, versions: Sequence[TermsVersion], currency: str) -> _Cached:
        cid, period = cp

        def at(name: str) -> str:
            return self.keys.period(cid, period, name)

        await refuse_compacted(self.redis, self.keys, cid, period)  # its statement is final
        token: bytes | None = await self.redis.get(at("ver"))
        if token is not None and token.startswith(COMPACTED_TOKEN):
            # Compacted between the marker's read and this one: a step written on this
            # token would land on the snapshot's period from empty lines (a base fee
            # paid twice, the snapshot hidden by a new journal).
            raise PeriodCompacted(cid, period, int(token.split(b"/")[1]))
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(at("lines"))
            pipe.hgetall(at("clicks"))
            pipe.hgetall(at("confirmed"))
            pipe.hgetall(at("kpis"))
            pipe.hgetall(at("sums"))
            pipe.hgetall(at("content"))
            pipe.get(at("facts_until"))
            pipe.exists(at("events"), at("clickids"))
            pipe.exists(at(QUEUE_WRITTEN))
            raw = await pipe.execute()
        raw_lines, raw_clicks, raw_confirmed, raw_kpis, raw_sums, raw_content = raw[:6]
        facts_until = None if raw[6] is None else int(raw[6])
        # Every write that adds a fact adds its id to ``events`` or ``clickids``: both gone
        # means Redis expired them, whatever this process's clock says.
        if facts_until is not None and (self.clock() >= facts_until or not raw[7]):
            raise PeriodExpired(cid, period, facts_until)
        records: list[LineRecord] = [record_from_json(orjson.loads(v)) for v in raw_lines.values()]
        tally = {name.decode(): value.decode() for name, value in raw_clicks.items()}
        confirmed = {o.decode(): e.decode() for o, e in raw_confirmed.items()}
        seq = int(token.decode().rpartition("/")[2]) if token else 0
        contents = [content_from_json(orjson.loads(v)) for v in raw_content.values()]
        state = PeriodState.load(
            cid,
            period,
            currency,
            versions,
            records,
            tallies.all_figures(tally),
            confirmed,
            seq,
            contents,
        )
        return _Cached(
            token,
            state,
            tally,
            _counters(raw_kpis),
            _counters(raw_sums),
            facts_until=facts_until,
            queue=_queue_as_stored(records) if raw[8] else None,
        )

    def _expiry(self, period: str, versions: Sequence[TermsVersion]) -> int:
        """When a period's per-event facts expire: the retention after the period closes
        to new facts (its end, the campaign's longest window and its longest lock:
        ``compaction.closes_at`` without the grace), or after now for a period already
        closed (a rebuild, a late fact): an expiry in the past would delete at once the
        ids that make a replay change nothing. Counted from the period's end, the lines
        went while a late refund or a backfilled order could still come (a window and a
        lock before compaction may take the period), and such a fact was priced from
        nothing: a base fee paid again, the cap forgotten."""
        closes = period_bounds(period)[1]
        if versions:
            closes = closes_at(period, versions, 0)
        return max(closes, self.clock()) + self.retention_ms

    def _next_token(self, seq: int) -> bytes:
        self._writes += 1
        return f"{self._writer}/{self._writes}/{seq}".encode()

    def _trim(self) -> None:
        """Forget the least recently used periods beyond the cache's bounds."""
        total = sum(p.weight() for p in self._periods.values())
        while self._periods and (len(self._periods) > CACHED_PERIODS or total > self.cache_lines):
            _, dropped = self._periods.popitem(last=False)
            total -= dropped.weight()


def posting_json(posting: Posting) -> str:
    """A posting as the journal stores it: the JSON of ``posting_to_json``, byte for byte.
    orjson writes a slots dataclass field by field in declaration order, tuples as
    lists, so the dict need not be built (a batch writes tens of thousands)."""
    return orjson.dumps(posting).decode()


def _json(value: object) -> str:
    """Compact JSON text (non-ASCII as UTF-8): what the journal stores per posting and line.
    orjson: the encoding is a large share of a batch's cost."""
    return orjson.dumps(value).decode()


def _updated(key: str, stored: dict[str, int], deltas: Mapping[str, int]) -> list[WriteCommand]:
    """Add ``deltas`` to the cached ``stored`` counters and HSET the fields that changed."""
    changed: list[tuple[str, int | str]] = []
    for name, delta in deltas.items():
        if delta:
            stored[name] = value = stored.get(name, 0) + delta
            # Beyond 2**53 a JSON number loses digits in Lua: such a value goes as text.
            changed.append((name, value if -_EXACT < value < _EXACT else str(value)))
    return _pairs("HSET", key, changed)


def _counters(raw: Mapping[bytes, bytes]) -> dict[str, int]:
    return {name.decode(): int(value) for name, value in raw.items()}


def _increments(key: str, deltas: Mapping[Any, int]) -> list[WriteCommand]:
    """HINCRBY of every non-zero delta, many fields per command."""
    # Beyond 2**53 a JSON number loses digits in Lua: such a delta goes as text.
    return _pairs(
        "HINCRBY",
        key,
        [(name, d if -_EXACT < d < _EXACT else str(d)) for name, d in deltas.items() if d],
    )


def _pairs(command: str, key: str, pairs: list[tuple[Any, Any]]) -> list[WriteCommand]:
    """``command key a1 b1 a2 b2 ...``, in commands of at most ``_CHUNK`` pairs."""
    # chain: the pairs flattened in C (a step writes tens of thousands of them).
    return [(command, key, *chain.from_iterable(chunk)) for chunk in _chunks(pairs)]


def _chunks(pairs: list[tuple[Any, Any]]) -> list[list[tuple[Any, Any]]]:
    if len(pairs) <= _CHUNK:  # nearly always: no copy
        return [pairs] if pairs else []
    return [pairs[i : i + _CHUNK] for i in range(0, len(pairs), _CHUNK)]


def _queue_as_stored(records: Sequence[LineRecord]) -> dict[str, str]:
    """The statuses a period's review-queue sets hold: every write of its lines wrote
    their statuses in the same compare-and-set, so they are the loaded records'."""
    return {r.line_id: review_queue.status(r) for r in records if review_queue.is_row(r)}


def _queue_writes(
    at: Callable[[str], str], cached: _Cached, result: StepResult, expire_at: int
) -> list[WriteCommand]:
    """Move the step's conversions between the period's review-queue status sets (every
    line's, the first time the sets are written), expiring with the line records."""
    first = cached.queue is None
    if cached.queue is None:
        cached.queue = {}
    found = review_queue.moves(
        cached.queue, cached.state.lines.values() if first else result.changed
    )
    commands: list[WriteCommand] = []
    for name, members in found.removed.items():
        for chunk in _chunks([(m, "") for m in members]):
            commands.append(("ZREM", at(QUEUE_SET + name), *[m for m, _ in chunk]))
    for name, scored in found.added.items():
        commands += _pairs("ZADD", at(QUEUE_SET + name), scored)
    if first:
        commands.append(("SET", at(QUEUE_WRITTEN), "1"))
    # Every write, as the line records' (a write that moves nothing still moves their
    # expiry: the sets went first, and a conversion still held left the queue).
    for name in (*(QUEUE_SET + s for s in review_queue.STATUSES), QUEUE_WRITTEN):
        commands.append(("PEXPIREAT", at(name), expire_at))
    return commands


def _standing(row: list[Any]) -> Standing:
    review = row[1]
    return (
        tuple(row[0]),
        None if review is None else (review[0], review[1], review[2], review[3], review[4]),
    )
