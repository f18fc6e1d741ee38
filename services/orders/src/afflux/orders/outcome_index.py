"""The order-outcome index: every event the topics carry about an order, by (campaign, order).

A consumer of its own group (``afflux-order-outcomes``) reads ``orders``, ``refunds``,
``conversions``, ``reversals``, ``attribution.unmatched`` and ``reviews`` and stores each event
about an order in the order's Redis hash, one field per event id (so a redelivery
writes the same field again and changes nothing); the group's offsets are committed
after the writes, for the partitions that moved, at most once a second
(``paced_commits``). ``GET /v1/orders/{order_id}`` reads the hash back and answers from
it (``outcome.order_outcome``).

Bounds: an order keeps at most ``MAX_EVENTS_PER_ORDER`` refund events (refunds,
unmatched refunds, reversals) and as many of its other events (the order, answers,
confirmation), each class counted apart: a hostile stream of refunds for one order
cannot grow one key without end nor push out the decision (the answer then says it was
truncated), and every hash expires ``retention_days`` after its last write. A record
that cannot be decoded, or an item the index cannot place, is dead-lettered with its
reason and the consumer goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord
from prometheus_client import CollectorRegistry, Counter
from redis.asyncio import Redis

from afflux.orders.insights import InsightStore
from afflux.shared.core.products import order_bounds_problem
from afflux.shared.events import (
    ConversionAttributed,
    ConversionReversed,
    ConversionReviewed,
    DeadLetter,
    Envelope,
    LeadConfirmed,
    OrderPlaced,
    OrderRefunded,
    OrderUnattributed,
    RefundUnmatched,
    SubscriptionRenewed,
    SurveyAnswered,
)
from afflux.shared.io.background import stop_if_cancelled
from afflux.shared.io.kafka import (
    dead_letter_of,
    deliver_dead_letter,
    new_group_consumer,
    stop_consumer,
)
from afflux.shared.io.paced_commits import COMMIT_INTERVAL_S, PacedCommits
from afflux.shared.io.redis_client import redis_away
from afflux.shared.topics import (
    CONVERSIONS,
    DLQ,
    ORDERS,
    REFUNDS,
    REVERSALS,
    REVIEWS,
    UNMATCHED,
)
from afflux.shared.wire import UndecodableRecord, event_from_dict, parse_value

GROUP = "afflux-order-outcomes"
# What each topic carries about orders; anything else on them is dead-lettered.
CARRIED: dict[str, tuple[type[Envelope], ...]] = {
    ORDERS.name: (OrderPlaced, LeadConfirmed, SurveyAnswered),
    REFUNDS.name: (OrderRefunded, SubscriptionRenewed),  # renewals: under the first order
    # LeadConfirmed: the worker forwards each to the ledger here; stored once by event id.
    CONVERSIONS.name: (ConversionAttributed, LeadConfirmed),
    REVERSALS.name: (ConversionReversed,),
    UNMATCHED.name: (OrderUnattributed, RefundUnmatched),
    # A review's decision on a held conversion: the order's outcome says it was declined.
    REVIEWS.name: (ConversionReviewed,),
}
# The attribution worker's letters of orders it refused (``Refusal``): read from the
# dead-letter topic, where anything else is passed over (never dead-lettered again).
REFUSING_CONSUMER = "afflux-attribution"
TOPICS = (*CARRIED, DLQ.name)
# Refunds come as often as a merchant sends them; the order and its answers are few. Each
# class has its own bound, so a flood of refunds never pushes out the decision.
MAX_EVENTS_PER_ORDER = 100
REFUND_EVENTS = (OrderRefunded, RefundUnmatched, ConversionReversed)


def event_class(event: Envelope) -> str:
    """The bound an event counts against: ``refund`` (as many as a merchant sends) or
    ``answer``. A reversal replacing a conversion (``reattributed``) is part of the answer:
    counted with the refunds, 50 partial refunds (two events each) pushed it out and the
    replaced creator read as the winner."""
    if isinstance(event, ConversionReversed) and event.reason == "reattributed":
        return "answer"
    return "refund" if isinstance(event, REFUND_EVENTS) else "answer"


def indexed_order_id(event: Envelope) -> str:
    """The order an event is stored under: a renewal under its own renewal order id (which
    its answer and refunds name; under the first order, nothing ever read it)."""
    if isinstance(event, SubscriptionRenewed):
        return event.renewal_order_id
    return str(event.order_id)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Refusal:
    """The attribution worker's dead letter of an order it refused (a ``key_mismatch``,
    another merchant's campaign, a conflicting copy...): stored under the order it names,
    so the order's outcome says it was refused where it said ``pending`` for ever."""

    campaign_id: str
    order_id: str
    letter: DeadLetter


def refusal_of(letter: DeadLetter) -> Refusal | None:
    """The order ``letter`` refused, when it is the worker's letter of an order."""
    if letter.consumer != REFUSING_CONSUMER or letter.source_topic != ORDERS.name:
        return None
    try:
        item = parse_value(letter.value.encode())
    except UndecodableRecord:
        return None  # a cut value, or not an event: nothing to place it under
    if not isinstance(item, dict) or item.get("type") != "OrderPlaced":
        return None
    campaign, order = item.get("campaign_id"), item.get("order_id")
    if not (isinstance(campaign, str) and isinstance(order, str) and campaign and order):
        return None
    return Refusal(campaign, order, letter)


@dataclass(frozen=True)
class Copy:
    """Where a copy of an order came (its event id and partition): a copy re-sent under
    the same event id on the right partition after the worker refused it on a wrong one
    is told apart from the refused one by it (``outcome.order_outcome``)."""

    campaign_id: str
    order_id: str
    event_id: str
    partition: int

    @property
    def field(self) -> str:
        return f"{COPY_PREFIX}{self.partition}:{self.event_id}"


COPY_PREFIX = "!copy:"
TRUNCATED = "!truncated"
log = logging.getLogger(__name__)
# A record's event and its place in the record (None: the record is one event).
Placed = tuple[ConsumerRecord[bytes, bytes], int | None, "Envelope | Refusal | Copy"]

# Store each event unless its class is full for the order (the full class is marked
# instead); expiry is renewed on every write. A field per event id: a redelivery is a no-op.
# One call stores a whole poll's events (KEYS[i] with ARGV[3i..3i+2]): a call per event
# cost the service more than the orders themselves.
_STORE = """
local cap, ttl = tonumber(ARGV[1]), ARGV[2]
for i, key in ipairs(KEYS) do
  local at = 3 * i
  if redis.call('HEXISTS', key, ARGV[at]) == 0 then
    local counter = '!n:' .. ARGV[at + 2]
    if tonumber(redis.call('HGET', key, counter) or '0') < cap then
      redis.call('HSET', key, ARGV[at], ARGV[at + 1])
      redis.call('HINCRBY', key, counter, 1)
    else
      redis.call('HSET', key, '!truncated', '1')
    end
  end
  redis.call('PEXPIRE', key, ttl)
end
return #KEYS
"""
# Events per script call: bounds the time one call holds Redis (about 10 µs an event).
EVENTS_PER_CALL = 500


def outcome_key(prefix: str, campaign_id: str, order_id: str) -> str:
    """The order's hash; the campaign's length first, so no two pairs share a key."""
    return f"{prefix}:outcome:{len(campaign_id)}:{campaign_id}:{order_id}"


class OutcomeMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "afflux_order_outcome_events_total",
            "Events stored in the order-outcome index, by topic",
            ["topic"],
            registry=registry,
        )
        self.poll_errors = Counter(
            "afflux_order_outcome_poll_errors_total",
            "Polls of the order-outcome index that failed (then retried)",
            registry=registry,
        )
        self.dead_letters = Counter(
            "afflux_order_outcome_dead_letters_total",
            "Records or items the order-outcome index dead-lettered, by topic",
            ["topic"],
            registry=registry,
        )
        self.dead_letters_unsent = Counter(
            "afflux_order_outcome_dead_letters_unsent_total",
            "Dead letters of the order-outcome index that the broker or producer refused "
            "(logged, never sent; the record is passed all the same)",
            ["topic"],
            registry=registry,
        )


class OutcomeIndex:
    """Reads and writes the index's hashes."""

    def __init__(self, redis: Redis[bytes], prefix: str, retention_days: int) -> None:
        self.redis = redis
        self.prefix = prefix
        self.retention_ms = retention_days * 86_400_000
        self._store = redis.register_script(_STORE)
        self.insights = InsightStore(redis, prefix, self.retention_ms)

    async def store(self, events: Sequence[Envelope | Refusal | Copy]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for start in range(0, len(events), EVENTS_PER_CALL):
                keys: list[str] = []
                args: list[str | int] = [MAX_EVENTS_PER_ORDER, self.retention_ms]
                for event in events[start : start + EVENTS_PER_CALL]:
                    # Letters and copies are bounded apart from the order's answers: a
                    # flood of refused copies must not push out the decision.
                    if isinstance(event, Refusal):
                        keys.append(outcome_key(self.prefix, event.campaign_id, event.order_id))
                        letter = event.letter
                        args += (letter.event_id, letter.model_dump_json(), "refusal")
                        continue
                    if isinstance(event, Copy):
                        keys.append(outcome_key(self.prefix, event.campaign_id, event.order_id))
                        args += (event.field, "1", "copy")
                        continue
                    keys.append(
                        outcome_key(self.prefix, event.campaign_id, indexed_order_id(event))  # type: ignore[attr-defined]
                    )
                    args += (event.event_id, event.model_dump_json(), event_class(event))
                await self._store(keys=keys, args=args, client=pipe)
            await pipe.execute()
        # The brand's counts (afflux.orders.insights): sets, so a redelivery adds nothing.
        await self.insights.add(e for e in events if not isinstance(e, Refusal | Copy))

    async def events(self, campaign_ids: Sequence[str], order_id: str) -> dict[str, Stored]:
        """Per campaign with anything stored for ``order_id``: its events (undecodable
        ones left out) and whether the order was truncated."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for cid in campaign_ids:
                pipe.hgetall(outcome_key(self.prefix, cid, order_id))
            answers: list[dict[bytes, bytes]] = await pipe.execute()
        found: dict[str, Stored] = {}
        copy_prefix = COPY_PREFIX.encode()
        for cid, raw in zip(campaign_ids, answers, strict=True):
            if not raw:
                continue
            events: list[Envelope] = []
            copies: set[tuple[str, int]] = set()
            for name, value in raw.items():
                if name.startswith(copy_prefix):
                    partition, _, event_id = name[len(copy_prefix) :].decode().partition(":")
                    if partition.isdigit():
                        copies.add((event_id, int(partition)))
                    continue
                if name.startswith(b"!"):  # the marks and counters
                    continue
                with contextlib.suppress(UndecodableRecord):
                    events.append(event_from_dict(parse_value(value)))
            found[cid] = Stored(events, TRUNCATED.encode() in raw, frozenset(copies))
        return found

    async def placed(self, campaign_id: str, order_id: str) -> OrderPlaced | None:
        """The order's OrderPlaced if the index holds it: then the broker acknowledged it."""
        stored = (await self.events([campaign_id], order_id)).get(campaign_id)
        for event in stored.events if stored else ():
            if isinstance(event, OrderPlaced):
                return event
        return None


class Stored:
    __slots__ = ("copies", "events", "truncated")

    def __init__(
        self,
        events: list[Envelope],
        truncated: bool,
        copies: frozenset[tuple[str, int]] = frozenset(),
    ) -> None:
        self.events = events
        self.truncated = truncated
        self.copies = copies  # (event id, partition) of each copy of the order that came


class OutcomeConsumer:
    """Keeps the index from the topics; ``run`` until cancelled."""

    def __init__(
        self,
        *,
        bootstrap: str,
        index: OutcomeIndex,
        producer: AIOKafkaProducer,
        metrics: OutcomeMetrics,
        max_records: int = 1000,
        linger_s: float = 0.1,
        group: str = GROUP,
        commit_interval_s: float = COMMIT_INTERVAL_S,
    ) -> None:
        self.index = index
        self.linger_s = linger_s
        self.producer = producer
        self.metrics = metrics
        self.max_records = max_records
        self.consumer = new_group_consumer(bootstrap, group, *TOPICS)
        self.commits = PacedCommits(self.consumer, commit_interval_s)
        self.ready = asyncio.Event()

    async def run(self) -> None:
        try:
            while True:
                try:
                    await self.consumer.start()
                    break
                except Exception as exc:  # the broker not up yet: the API still answers
                    log.warning("order outcomes: cannot reach the broker yet (%s); retrying", exc)
                    await asyncio.sleep(1.0)
            self.ready.set()
            while True:
                stop_if_cancelled()  # a cancellation aiokafka's getmany swallowed
                try:
                    await self._one_poll()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # a failed commit (a rebalance), a broker error:
                    # what was stored is stored, and a redelivery writes the same fields.
                    self.metrics.poll_errors.inc()
                    log.warning("order outcomes: poll failed (%r); going on", exc)
                    await asyncio.sleep(1.0)
        finally:
            await self.commits.flush()
            await stop_consumer(self.consumer)

    async def _one_poll(self) -> None:
        polled = await self.consumer.getmany(timeout_ms=500, max_records=self.max_records)
        records = [r for batch in polled.values() for r in batch]
        if records:
            await self._until_stored(records)
        # Every poll, an empty one too: the last records of a burst are committed within
        # the interval, not when the next ones come.
        await self.commits.stored({tp: batch[-1].offset + 1 for tp, batch in polled.items()})
        if 0 < len(records) < self.max_records // 10:
            # Caught up: let the next poll gather more. Polling again at once stores and
            # commits a few records at a time, which cost the process more than the orders.
            await asyncio.sleep(self.linger_s)

    async def _until_stored(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        placed: list[Placed] = []
        for record in records:
            placed += await self._events_of(record)
        if await self._store_while_redis_is_away([event for _, _, event in placed]) is None:
            return
        # One event the index cannot take (an event time beyond the calendar, an error
        # reply about its data) must not hold back every later one: store them one by
        # one, dead-letter what fails.
        for record, item, event in placed:
            failure = await self._store_while_redis_is_away([event])
            if failure is not None and record.topic == DLQ.name:
                log.warning("order outcomes: a refusal not indexed (%r)", failure)
            elif failure is not None:
                reason = f"cannot index: {type(failure).__name__}: {failure}"
                await self._dead_letter(record, reason, type(failure).__name__, item)

    async def _store_while_redis_is_away(
        self, events: list[Envelope | Refusal | Copy]
    ) -> Exception | None:
        """None once ``events`` are stored; the exception when storing them failed for
        another reason than Redis being away. While Redis is away the same writes are
        retried: nothing is committed until it is back."""
        while True:
            try:
                await self.index.store(events)
                return None
            except Exception as exc:
                if not redis_away(exc):
                    return exc
                log.warning("order outcomes: Redis refused the writes (%s); retrying", exc)
                await asyncio.sleep(1.0)

    async def _events_of(self, record: ConsumerRecord[bytes, bytes]) -> list[Placed]:
        if record.topic == DLQ.name:
            return self._refusals_of(record)
        try:
            parsed = parse_value(record.value)
        except UndecodableRecord as exc:
            await self._dead_letter(record, str(exc), exc.error_class, None)
            return []
        packed = isinstance(parsed, list)
        out: list[Placed] = []
        for index, item in enumerate(parsed if packed else [parsed]):
            try:
                if not isinstance(item, dict):
                    raise UndecodableRecord("record must be a JSON object or an array of objects")
                event = event_from_dict(item)
            except UndecodableRecord as exc:
                await self._dead_letter(
                    record, str(exc), exc.error_class, index if packed else None
                )
                continue
            at = index if packed else None
            if not isinstance(event, CARRIED.get(record.topic, ())):
                reason = f"unexpected event type {type(event).__name__} on {record.topic}"
                await self._dead_letter(record, reason, "Rejected", at)
                continue
            if isinstance(event, OrderPlaced):
                # An order past the orders API's bounds, written around it: the worker
                # refuses it, and kept here it would hold up to a megabyte for 400 days.
                bounds = order_bounds_problem(
                    event.action, event.coupon_code, event.customer_id, len(event.items)
                )
                if bounds:
                    await self._dead_letter(record, bounds, "Rejected", at)
                    continue
            out.append((record, at, event))
            if isinstance(event, OrderPlaced):
                copy = Copy(event.campaign_id, event.order_id, event.event_id, record.partition)
                out.append((record, at, copy))
            self.metrics.events.labels(record.topic).inc()
        return out

    def _refusals_of(self, record: ConsumerRecord[bytes, bytes]) -> list[Placed]:
        """The worker's letters of refused orders in a record of the dead-letter topic;
        anything else there is passed over: a letter about a letter would never end."""
        try:
            parsed = parse_value(record.value)
        except UndecodableRecord:
            return []
        out: list[Placed] = []
        for index, item in enumerate(parsed if isinstance(parsed, list) else [parsed]):
            if not isinstance(item, dict) or item.get("consumer") != REFUSING_CONSUMER:
                continue
            try:
                letter = event_from_dict(item)
            except UndecodableRecord:
                continue
            refusal = refusal_of(letter) if isinstance(letter, DeadLetter) else None
            if refusal is not None:
                out.append((record, index if isinstance(parsed, list) else None, refusal))
                self.metrics.events.labels(record.topic).inc()
        return out

    async def _dead_letter(
        self,
        record: ConsumerRecord[bytes, bytes],
        reason: str,
        error_class: str | None,
        item: int | None,
    ) -> None:
        letter = dead_letter_of(
            record, consumer=GROUP, reason=reason, error_class=error_class, item=item
        )
        if await deliver_dead_letter(self.producer, letter) is None:
            self.metrics.dead_letters.labels(record.topic).inc()
        else:
            self.metrics.dead_letters_unsent.labels(record.topic).inc()
