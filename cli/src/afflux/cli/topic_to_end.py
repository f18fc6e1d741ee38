"""Read a topic to its end, where the end is the high watermark a Fetch answers.

Never ListOffsets: the embedded broker answers it wrongly when batches hold
several records (FAUST_NOTES), which would hide the last batch's records.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition

from afflux.shared.events import AnyEvent
from afflux.shared.io.kafka import topic_partitions
from afflux.shared.wire import UndecodableRecord, decode_record


class TopicUnreadable(RuntimeError):
    """The topic's end was not reached in time."""


async def read_to_end(bootstrap: str, topic: str, *, timeout_s: float = 60.0) -> list[AnyEvent]:
    """Every decodable event on ``topic`` (a record stored twice gives its events twice),
    read until every partition's position reaches the high watermark a Fetch answered."""
    consumer = _reader(bootstrap)
    await consumer.start()
    events: list[AnyEvent] = []
    try:
        deadline = time.monotonic() + timeout_s
        # From a fresh metadata request: on Apache Kafka the consumer's own metadata
        # lists no topic before it is assigned one.
        tps = await topic_partitions(consumer, topic, timeout_s)
        if not tps:
            raise TopicUnreadable(f"{topic}: no such topic")
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while True:
            batches = await consumer.getmany(*tps, timeout_ms=250, max_records=10_000)
            for records in batches.values():
                for record in records:
                    try:
                        events += decode_record(record.value)
                    except UndecodableRecord:
                        continue
            if all([await at_end(consumer, tp) for tp in tps]):
                return events
            if time.monotonic() >= deadline:
                raise TopicUnreadable(f"{topic}: the high watermark was not reached in time")
    finally:
        await consumer.stop()


def _reader(bootstrap: str) -> AIOKafkaConsumer:
    """A consumer outside any group, reading from the start, up to 8 MB per partition."""
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )


async def at_end(consumer: AIOKafkaConsumer, tp: TopicPartition) -> bool:
    high = consumer.highwater(tp)  # from the last Fetch answer; None before the first
    return high is not None and await consumer.position(tp) >= high


async def high_watermarks(
    bootstrap: str, topics: Sequence[str], *, timeout_s: float = 60.0
) -> dict[TopicPartition, int]:
    """Each partition's end, as a Fetch answers it, of every ``topics`` that exists (the
    partitions are read through once: a Fetch from the start is the one sure way)."""
    consumer = _reader(bootstrap)
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout_s
        tps = [tp for topic in topics for tp in await topic_partitions(consumer, topic, 5.0)]
        if not tps:
            return {}
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while not all([await at_end(consumer, tp) for tp in tps]):
            if time.monotonic() >= deadline:
                raise TopicUnreadable(f"{sorted(topics)}: the high watermarks were not reached")
            await consumer.getmany(*tps, timeout_ms=250, max_records=10_000)
        return {tp: consumer.highwater(tp) or 0 for tp in tps}
    finally:
        await consumer.stop()
