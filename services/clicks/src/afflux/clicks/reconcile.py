"""Which of a batch's events the broker already holds, so that a re-send does not repeat them.

The shipper sends one batch at a time and records, with each acknowledged
batch, the offset after it on every partition. A batch whose answer never
came (the broker stalled, or the process was killed with the batch in flight)
may or may not be on the topic: before sending it again, the shipper reads
the batch's partitions from the recorded offsets to the high watermark that
fetches report (never ListOffsets, which the embedded broker answers wrongly)
and leaves out the events it finds there, by event id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from aiokafka import AIOKafkaConsumer, TopicPartition

from afflux.shared.io.kafka import stop_consumer


async def already_on_topic(
    bootstrap: str,
    topic: str,
    starts: dict[int, int],
    wanted: set[str],
    timeout_s: float,
) -> set[str]:
    """The ``wanted`` event ids found on ``topic`` from ``starts`` (partition -> offset) on."""
    if not starts or not wanted:
        return set()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=50,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(starts)]
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, starts[tp.partition])
        found: set[str] = set()
        position = {tp: starts[tp.partition] for tp in partitions}
        async with asyncio.timeout(timeout_s):
            while True:
                batches = await consumer.getmany(timeout_ms=100, max_records=10_000)
                for tp, records in batches.items():
                    for record in records:
                        position[tp] = record.offset + 1
                        found |= _event_ids(record.value or b"") & wanted
                if not batches and all(
                    (high := consumer.highwater(tp)) is not None and position[tp] >= high
                    for tp in partitions
                ):
                    return found
    finally:
        with contextlib.suppress(Exception):
            await stop_consumer(consumer)


def _event_ids(value: bytes) -> set[str]:
    try:
        parsed = json.loads(value)
    except ValueError:
        return set()
    events = parsed if isinstance(parsed, list) else [parsed]
    return {e["event_id"] for e in events if isinstance(e, dict) and "event_id" in e}


async def end_offsets(
    bootstrap: str, topic: str, partitions: int, timeout_s: float
) -> dict[int, int]:
    """Each partition's end offset from ListOffsets: exact on Kafka, a lower bound on the
    embedded broker (which answers too low), so reading from it finds anything newer."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        ends = await asyncio.wait_for(consumer.end_offsets(tps), timeout_s)
        return {tp.partition: int(offset) for tp, offset in ends.items()}
    finally:
        with contextlib.suppress(Exception):
            await stop_consumer(consumer)
