"""Reading a whole topic into a process-local view: every partition from the beginning,
without a consumer group (every process needs every record of it), until cancelled.

Readiness is judged from the high watermark that fetch responses carry, not from
ListOffsets: the embedded broker answers ListOffsets "latest" wrongly when batches hold
several records.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from afflux.shared.io.kafka import stop_consumer

# One record of the topic, handled in isolation: whatever it raises is the handler's to
# catch, so the handlers given here never raise.
OnRecord = Callable[[ConsumerRecord[bytes, bytes]], Awaitable[None]]
# Told the wall-clock time (ms) as of which every record of the topic has been handed over.
OnSynced = Callable[[int], None]
# Told, after each fetch answer was handed over whole, partition -> the offset after it.
OnFetched = Callable[[dict[int, int]], None]


async def follow_whole_topic(
    topic: str,
    bootstrap: str,
    on_record: OnRecord,
    ready: asyncio.Event,
    on_synced: OnSynced | None = None,
    fetch_max_wait_ms: int = 500,
    on_fetched: OnFetched | None = None,
) -> None:
    """Hand every record of ``topic`` to ``on_record``; set ``ready`` once every partition
    has been read up to the high watermark its first fetches reported. Whenever every
    partition is read up to its latest high watermark, ``on_synced`` hears the oldest of
    the times those watermarks were fetched: every record the broker held then is read."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        group_id=None,
        fetch_max_wait_ms=fetch_max_wait_ms,
    )
    await consumer.start()
    consumed: dict[TopicPartition, int] = {}
    try:
        while True:
            batches = await consumer.getmany(
                timeout_ms=min(200, fetch_max_wait_ms), max_records=1000
            )
            for tp, records in batches.items():
                for record in records:
                    consumed[tp] = record.offset + 1
                    await on_record(record)
            if on_fetched is not None and batches:
                on_fetched({tp.partition: consumed[tp] for tp in batches if tp in consumed})
            if (on_synced is not None or not ready.is_set()) and caught_up(consumer, consumed):
                ready.set()
                if on_synced is not None:
                    on_synced(synced_at(consumer))
    finally:
        with contextlib.suppress(Exception):
            await stop_consumer(consumer)


def caught_up(consumer: AIOKafkaConsumer, consumed: dict[TopicPartition, int]) -> bool:
    assigned = consumer.assignment()
    if not assigned:
        return False
    for tp in assigned:
        high = consumer.highwater(tp)
        if high is None or consumed.get(tp, 0) < high:
            return False
    return True


def synced_at(consumer: AIOKafkaConsumer) -> int:
    """The oldest time (ms) a fetch answer for an assigned partition came back: the high
    watermarks ``caught_up`` compared with are at least as new as this."""
    return min((consumer.last_poll_timestamp(tp) or 0) for tp in consumer.assignment())
