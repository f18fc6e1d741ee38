"""The ledger consumer: conversions, lead confirmations, reversals and clicks into Redis.

Each poll becomes one ``Batch`` applied atomically with the partitions' next
offsets (see ``store``). On every assignment the consumer seeks to the offsets
stored in Redis, never to the group's committed ones, so what Redis holds is
exactly what was consumed. Records (or items of packed records) that cannot be
decoded, belong to a campaign without terms, carry another currency or an amount
above the campaign's ``max_order_minor``, or raise anything at all while placed,
go to the dead-letter topic with the reason; the consumer goes on. When applying
a batch raises anything but a Redis outage, the batch is applied again one item
at a time (a failed apply writes nothing) and the item that fails is dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from afflux.payouts import facts as ledger_facts
from afflux.payouts.metrics import PayoutsMetrics
from afflux.payouts.store import Batch, ClickItem, LedgerStore
from afflux.shared.campaign_view import CampaignDirectory, UnknownCampaign
from afflux.shared.core.clock import system_clock
from afflux.shared.core.commission import version_at, version_by_number
from afflux.shared.core.periods import period_of
from afflux.shared.events import (
    ClickRecorded,
    ConversionAttributed,
    ConversionReversed,
    LeadConfirmed,
)
from afflux.shared.kafka import dead_letter, send_dead_letter
from afflux.shared.lag import ConsumerLag
from afflux.shared.topics import CLICKS, CONVERSIONS, REVERSALS
from afflux.shared.wire import UndecodableRecord, event_from_dict, parse_value

log = logging.getLogger(__name__)
T = TypeVar("T")
CONSUMER = "payouts.ledger"
TOPICS = (CONVERSIONS.name, REVERSALS.name, CLICKS.name)


# Redis unreachable, restarting or still loading its AOF: wait for it, never skip a batch.
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)
RETRY_MAX_S = 2.0


class Rejected(ValueError):
    pass


@dataclass
class Placed:
    """One item of a consumed record, placed in its own batch."""

    record: ConsumerRecord[bytes, bytes]
    index: int | None  # None: the record is one event
    batch: Batch
    occurred_at: int


async def until_redis_answers(attempt: Callable[[], Awaitable[T]], what: str) -> T:
    """``attempt()`` again and again while Redis is down, backing off up to ``RETRY_MAX_S``."""
    delay = 0.05
    while True:
        try:
            return await attempt()
        except REDIS_DOWN as exc:
            log.warning("%s: Redis unavailable (%s); retrying in %.2fs", what, exc, delay)
            await asyncio.sleep(delay)
            delay = min(RETRY_MAX_S, delay * 2)


class _SeekToStored(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, consumer: AIOKafkaConsumer, store: LedgerStore) -> None:
        self.consumer = consumer
        self.store = store

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await seek_to_stored(self.consumer, self.store, assigned)


async def seek_to_stored(
    consumer: AIOKafkaConsumer, store: LedgerStore, partitions: Iterable[TopicPartition]
) -> None:
    """Position each partition at the offset Redis holds for it: what the ledger contains."""
    stored = await until_redis_answers(store.offsets, "reading stored offsets")
    for tp in partitions:
        offset = stored.get(f"{tp.topic}|{tp.partition}")
        if offset is None:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, offset)


class LedgerConsumer:
    def __init__(
        self,
        *,
        bootstrap: str,
        group_id: str,
        instance_id: str | None,
        store: LedgerStore,
        directory: CampaignDirectory,
        producer: AIOKafkaProducer,
        metrics: PayoutsMetrics,
        clock: Callable[[], int] = system_clock,
    ) -> None:
        self.store = store
        self.directory = directory
        self.producer = producer
        self.metrics = metrics
        self.clock = clock
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=group_id,
            group_instance_id=instance_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        self.lag = ConsumerLag("payouts", metrics.registry)
        self.ready = asyncio.Event()

    async def run(self) -> None:
        await self.directory.ready.wait()
        await self.consumer.start()
        self.consumer.subscribe(list(TOPICS), listener=_SeekToStored(self.consumer, self.store))
        self.ready.set()
        self.metrics.ready.set(1)
        lag_at = 0.0
        try:
            while True:
                polled = await self.consumer.getmany(timeout_ms=200, max_records=2000)
                if polled:
                    await self._apply(polled)
                if time.monotonic() - lag_at > 2:
                    lag_at = time.monotonic()
                    await self.lag.update(self.consumer)
        finally:
            await self.consumer.stop()

    async def _apply(
        self, polled: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        batch = Batch()
        items: list[Placed] = []
        for tp, records in polled.items():
            for record in records:
                for item in await self._placed(record):
                    batch.merge(item.batch)
                    items.append(item)
            batch.offsets[f"{tp.topic}|{tp.partition}"] = records[-1].offset + 1
        try:
            applied = await self.store.apply(batch, self.directory.versions, self._currency)
        except REDIS_DOWN as exc:
            await self._resume_from_stored(exc)
            return
        except Exception:
            log.exception("applying a batch failed; applying its %d items one by one", len(items))
            try:
                await self._apply_one_by_one(items, batch.offsets)
            except REDIS_DOWN as exc:
                await self._resume_from_stored(exc)
            return
        self.metrics.applied(applied, [i.occurred_at for i in items], self.clock())

    async def _resume_from_stored(self, exc: Exception) -> None:
        # Redis may come back without its last writes (AOF fsync policy), so after
        # any failure the ledger's own offsets, not our position, say where to resume.
        log.warning("ledger write failed (%s); resuming from the offsets in Redis", exc)
        await until_redis_answers(self.store.redis.ping, "waiting for Redis")
        await seek_to_stored(self.consumer, self.store, self.consumer.assignment())

    async def _apply_one_by_one(self, items: list[Placed], offsets: dict[str, int]) -> None:
        """Each item on its own, stored with its record's offset (so a crash re-reads the
        record: facts are keyed by id, applying one twice changes nothing); the item that
        raises is dead-lettered. Then the batch's offsets, past everything."""
        for item in items:
            record = item.record
            item.batch.offsets = {f"{record.topic}|{record.partition}": record.offset}
            try:
                applied = await self.store.apply(
                    item.batch, self.directory.versions, self._currency
                )
            except REDIS_DOWN:
                raise
            except Exception as exc:
                log.exception("ledger item at %s[%d]@%d refused", *_where(record))
                await self._dead_letter(record, f"failed: {exc!r}", type(exc).__name__, item.index)
                continue
            self.metrics.applied(applied, [item.occurred_at], self.clock())
        await self.store.apply(Batch(offsets=offsets), self.directory.versions, self._currency)

    async def _placed(self, record: ConsumerRecord[bytes, bytes]) -> list[Placed]:
        """Every good item of one record placed in its own batch; each bad one dead-lettered."""
        try:
            parsed = parse_value(record.value)
        except UndecodableRecord as exc:
            await self._dead_letter(record, str(exc), exc.error_class)
            return []
        packed = isinstance(parsed, list)
        out: list[Placed] = []
        for index, item in enumerate(parsed if packed else [parsed]):
            at = index if packed else None
            placed = Batch()
            try:
                if not isinstance(item, dict):
                    raise UndecodableRecord("record must be a JSON object or an array of objects")
                event = event_from_dict(item)
                self._place(event, placed)
            except UndecodableRecord as exc:
                await self._dead_letter(record, str(exc), exc.error_class, at)
                continue
            except Rejected as exc:
                await self._dead_letter(record, str(exc), "Rejected", at)
                continue
            except Exception as exc:  # whatever one item raises, it alone is dead-lettered
                await self._dead_letter(
                    record, f"{type(exc).__name__}: {exc}", type(exc).__name__, at
                )
                continue
            out.append(Placed(record, at, placed, event.occurred_at))
        return out

    def _currency(self, campaign_id: str) -> str:
        return self.directory.latest(campaign_id).terms.currency

    def _period(self, campaign_id: str, at_ms: int) -> str:
        try:
            versions = self.directory.versions(campaign_id)
        except UnknownCampaign:
            raise Rejected(f"campaign {campaign_id!r} has no terms") from None
        return period_of(at_ms, version_at(versions, at_ms).terms.plan.period)

    def _place(self, event: object, batch: Batch) -> None:
        if isinstance(event, ConversionAttributed):
            period = self._period(event.campaign_id, event.occurred_at)
            limit = version_by_number(
                self.directory.versions(event.campaign_id), event.terms_version
            ).terms.max_order_minor
            if event.amount_minor > limit:
                raise Rejected(
                    f"amount_minor {event.amount_minor} above the campaign's "
                    f"max_order_minor {limit}"
                )
            if event.currency != self._currency(event.campaign_id):
                raise Rejected(
                    f"conversion in {event.currency} for campaign {event.campaign_id!r} "
                    f"paid in {self._currency(event.campaign_id)}"
                )
            fact = ledger_facts.conversion_fact(event)
            batch.facts.append(
                (
                    event.campaign_id,
                    period,
                    ledger_facts.CONVERSION + event.conversion_id,
                    ledger_facts.dump(fact),
                )
            )
            batch.orders.append((event.campaign_id, event.order_id, period))
        elif isinstance(event, ConversionReversed):
            period = self._period(event.campaign_id, event.order_occurred_at)
            fact_r = ledger_facts.refund_fact(event)
            batch.facts.append(
                (
                    event.campaign_id,
                    period,
                    ledger_facts.REFUND + event.reversal_id,
                    ledger_facts.dump(fact_r),
                )
            )
        elif isinstance(event, LeadConfirmed):
            self._period(event.campaign_id, event.occurred_at)  # rejects unknown campaigns
            raw = ledger_facts.dump({"order_id": event.order_id, "event_id": event.event_id})
            batch.confirmations.append((event.campaign_id, event.order_id, raw))
        elif isinstance(event, ClickRecorded):
            if event.campaign_id not in self.directory:
                raise Rejected(f"campaign {event.campaign_id!r} has no terms")
            period = self._period(event.campaign_id, event.occurred_at)
            batch.clicks.append(ClickItem.of(event, period))
        else:
            raise Rejected(f"unexpected event type {type(event).__name__}")

    async def _dead_letter(
        self,
        record: ConsumerRecord[bytes, bytes],
        reason: str,
        error_class: str = "Rejected",
        item: int | None = None,
    ) -> None:
        self.metrics.dead_letter(record.topic, reason)
        letter = dead_letter(
            consumer=CONSUMER,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            reason=_at(item) + reason,
            error_class=error_class,
            item=item,
        )
        while True:
            try:
                await send_dead_letter(self.producer, letter)
                return
            except Exception as exc:  # the broker is away: the batch waits, nothing is skipped
                log.warning("dead letter not sent yet (%s); retrying", exc)
                await asyncio.sleep(1)


def _at(index: int | None) -> str:
    return "" if index is None else f"item {index}: "


def _where(record: ConsumerRecord[bytes, bytes]) -> tuple[str, int, int]:
    return record.topic, record.partition, record.offset
