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
from collections.abc import Callable

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import ConsumerRecord
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from afflux.payouts.webhooks.metrics import WebhookMetrics
from afflux.payouts.webhooks.policy import TOPICS
from afflux.payouts.webhooks.redis_store import WebhookStore
from afflux.payouts.webhooks.routing import jobs_for
from afflux.shared.events import Envelope
from afflux.shared.io.background import stop_if_cancelled
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.kafka import new_group_consumer, stop_consumer
from afflux.shared.io.redis_client import PASSING_REPLIES
from afflux.shared.wire import UndecodableRecord, decode_record

log = logging.getLogger(__name__)
REDIS_RETRY_MAX_S = 2.0
# ... or refusing writes for now (out of memory, read-only during a failover): the same
# batch is applied once it is back, never dead-lettered item by item.
REDIS_DOWN: tuple[type[Exception], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
    *PASSING_REPLIES,
)

Records = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


def decoded_events(batches: Records) -> list[Envelope]:
    """Every event of the batch; a record that does not decode is skipped here (the
    ledger consumer dead-letters it with the reason)."""
    events: list[Envelope] = []
    for records in batches.values():
        for record in records:
            try:
                events.extend(decode_record(record.value))
            except UndecodableRecord as exc:
                log.warning("webhooks: skipping %s@%s: %s", record.topic, record.offset, exc)
    return events


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
    ) -> None:
        self.store = store
        self.directory = directory
        self.metrics = metrics
        self.clock = clock
        self.wake = wake
        self.max_records = max_records
        # A new group starts at the beginning: an event published before the group first
        # joined is still delivered to the endpoints registered by then.
        self.consumer = new_group_consumer(bootstrap, group_id, *TOPICS)

    async def run(self) -> None:
        await self.directory.ready.wait()
        try:
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

    async def _schedule(self, batches: Records) -> None:
        events = decoded_events(batches)
        delay = 0.05
        while True:  # Redis away: wait for it, never commit past what is not scheduled
            try:
                now = self.clock()
                jobs, matched = await jobs_for(self.store, self.directory, events, now=now)
                counts = await self.store.enqueue([(job, now) for job in jobs], now=now)
                break
            except REDIS_DOWN as exc:
                stop_if_cancelled()
                log.warning("webhooks: Redis unavailable (%s); retrying in %.2fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(REDIS_RETRY_MAX_S, delay * 2)
        for event_type, count in matched.items():
            self.metrics.events.labels(event_type).inc(count)
        if counts["queue_full"]:
            self.metrics.deliveries.labels("queue_full").inc(counts["queue_full"])
        if counts["scheduled"]:
            self.wake.set()

    async def _commit(self, batches: Records) -> None:
        offsets = {tp: records[-1].offset + 1 for tp, records in batches.items()}
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # The partitions moved to another sender: it reads them again from the last
            # commit and schedules the same webhook ids, which are scheduled once.
            log.warning("webhooks: commit failed (%s); the batch will be read again", exc)
