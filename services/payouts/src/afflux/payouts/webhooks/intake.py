"""The sender's consumer: conversions, reversals and payouts into scheduled deliveries.

Its own consumer group (``webhooks_group_id``), so the ledger never waits on an
endpoint. A polled batch is committed only after every delivery it gives rise to is
scheduled in Redis (``WebhookStore.enqueue``): a sender killed before that reads the
batch again, and scheduling is idempotent per webhook id, so nothing is lost and
nothing is scheduled twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import ConsumerRecord

from afflux.payouts.webhooks.metrics import WebhookMetrics
from afflux.payouts.webhooks.policy import DEFAULT_MAX_BODY_BYTES, TOPICS
from afflux.payouts.webhooks.redis_store import WebhookStore
from afflux.payouts.webhooks.routing import Routed, jobs_for
from afflux.shared.events import Envelope
from afflux.shared.io.background import stop_if_cancelled
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.kafka import (
    dead_letter_of,
    deliver_dead_letter,
    new_group_consumer,
    new_producer,
    stop_consumer,
)
from afflux.shared.io.redis_client import redis_away
from afflux.shared.wire import UndecodableRecord, event_from_dict, parse_value

log = logging.getLogger(__name__)
REDIS_RETRY_MAX_S = 2.0

Records = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


@dataclass(frozen=True)
class Item:
    record: ConsumerRecord[bytes, bytes]
    index: int | None  # the item's place in a packed record; None: the record is one event
    event: Envelope


@dataclass(frozen=True)
class Refused:
    record: ConsumerRecord[bytes, bytes]
    index: int | None
    reason: str
    error_class: str | None


def decoded_items(batches: Records) -> tuple[list[Item], list[Refused]]:
    """Every event of the batch, item by item: a packed record's good items are used and
    each bad one refused on its own (it dropped the whole record, good items and all)."""
    items: list[Item] = []
    refused: list[Refused] = []
    for records in batches.values():
        for record in records:
            try:
                parsed = parse_value(record.value)
            except UndecodableRecord as exc:
                refused.append(Refused(record, None, str(exc), exc.error_class))
                continue
            packed = isinstance(parsed, list)
            for index, value in enumerate(parsed if packed else [parsed]):
                at = index if packed else None
                try:
                    if not isinstance(value, dict):
                        raise UndecodableRecord(
                            "record must be a JSON object or an array of objects"
                        )
                    items.append(Item(record, at, event_from_dict(value)))
                except UndecodableRecord as exc:
                    refused.append(Refused(record, at, str(exc), exc.error_class))
    return items, refused


def decoded_events(batches: Records) -> list[Envelope]:
    """The events of the batch that decode (a replay's: the intake dead-lettered the
    rest when it first read them)."""
    return [item.event for item in decoded_items(batches)[0]]


class Intake:
    def __init__(
        self,
        *,
        bootstrap: str,
        group_id: str,
        store: WebhookStore,
        directory: CampaignDirectory,
        metrics: WebhookMetrics,
        clock: Callable[[], int],
        wake: asyncio.Event,
        max_records: int = 500,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self.max_body_bytes = max_body_bytes
        self.store = store
        self.directory = directory
        self.metrics = metrics
        self.clock = clock
        self.wake = wake
        self.max_records = max_records
        # A new group starts at the beginning: an event published before the group first
        # joined is still delivered to the endpoints registered by then.
        self.consumer = new_group_consumer(bootstrap, group_id, *TOPICS)
        self.producer = new_producer(bootstrap)  # its dead letters
        self.group_id = group_id

    async def run(self) -> None:
        await self.directory.ready.wait()
        try:
            await self.producer.start()
            await self.consumer.start()
            while True:
                stop_if_cancelled()
                batches = await self.consumer.getmany(timeout_ms=500, max_records=self.max_records)
                batches = {tp: records for tp, records in batches.items() if records}
                if batches:
                    await self._schedule(batches)
                    await self._commit(batches)
        finally:
            await stop_consumer(self.consumer)
            await self.producer.stop()

    async def _schedule(self, batches: Records) -> None:
        items, refused = decoded_items(batches)
        events = [item.event for item in items]
        try:
            routed, counts = await self._route(events)
        except Exception:  # not Redis away: one item's jobs refused, so each on its own
            log.exception("webhooks: scheduling a batch failed; scheduling its items one by one")
            routed, counts = Routed([], {}), Counter[str]()
            for n, event in enumerate(events):
                try:
                    one, scheduled = await self._route([event])
                except Exception as exc:
                    one, scheduled = Routed([], {}, [(0, exc)]), Counter[str]()
                routed.failed.extend((n, exc) for _, exc in one.failed)
                for event_type, count in one.matched.items():
                    routed.matched[event_type] = routed.matched.get(event_type, 0) + count
                counts.update(scheduled)
        # Before the commit: a sender killed meanwhile reads the batch again, and the
        # letters' ids are derived from where the item is, so it sends the same ones.
        for n, error in routed.failed:
            record = items[n].record
            log.warning(
                "webhooks: no delivery made of %s@%s: %r", record.topic, record.offset, error
            )
            reason = f"failed: {error!r}"
            refused.append(Refused(record, items[n].index, reason, type(error).__name__))
        for letter in refused:
            await self._dead_letter(letter)
        for event_type, count in routed.matched.items():
            self.metrics.events.labels(event_type).inc(count)
        if counts["queue_full"]:
            self.metrics.deliveries.labels("queue_full").inc(counts["queue_full"])
        if counts["scheduled"]:
            self.wake.set()

    async def _route(self, events: list[Envelope]) -> tuple[Routed, Counter[str]]:
        """The events' jobs, scheduled; Redis away: waited for, never committed past."""
        delay = 0.05
        while True:
            try:
                now = self.clock()
                routed = await jobs_for(
                    self.store, self.directory, events, now=now, max_body_bytes=self.max_body_bytes
                )
                counts = await self.store.enqueue([(job, now) for job in routed.jobs], now=now)
                return routed, Counter(counts)
            except Exception as exc:
                # Away, slow, busy or refusing writes for now (out of memory, read-only
                # during a failover, a full disk): the same batch is scheduled once it is
                # back, never dead-lettered item by item.
                if not redis_away(exc):
                    raise
                stop_if_cancelled()
                log.warning("webhooks: Redis unavailable (%s); retrying in %.2fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(REDIS_RETRY_MAX_S, delay * 2)

    async def _dead_letter(self, refused: Refused) -> None:
        letter = dead_letter_of(
            refused.record,
            consumer=self.group_id,
            reason=refused.reason,
            error_class=refused.error_class,
            item=refused.index,
        )
        unsent = await deliver_dead_letter(self.producer, letter)
        sent = "true" if unsent is None else "false"
        self.metrics.dead_letters.labels(refused.record.topic, sent).inc()

    async def _commit(self, batches: Records) -> None:
        offsets = {tp: records[-1].offset + 1 for tp, records in batches.items()}
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # The partitions moved to another sender: it reads them again from the last
            # commit and schedules the same webhook ids, which are scheduled once.
            log.warning("webhooks: commit failed (%s); the batch will be read again", exc)
