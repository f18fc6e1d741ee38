"""How far the embedded broker's durable log has grown, said once as ``afflux up`` starts.

The embedded broker (Tansu, its S3 engine) answers a fetch that finds new records by
listing every batch object the partition has stored, and its log is never trimmed, so
a durable stack kept for long slows as its topics grow (docs/deploy.md, "What the
durable embedded broker costs"). Nobody would guess that from a slower stack; a line at
start names the longest partition once it passes ``LONG_LOG_RECORDS``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition

from afflux.shared.io.kafka import stop_consumer, topic_partitions
from afflux.shared.topics import ALL_TOPICS

log = logging.getLogger(__name__)

# Measured on one partition: the object store's CPU per produce-and-fetch was 5.8 ms
# at 550 records and 15.8 ms at 20,050, close to three times an empty log's.
LONG_LOG_RECORDS = 20_000
ASK_TIMEOUT_S = 10.0


def growth_note(
    ends: Mapping[TopicPartition, int],
    threshold: int = LONG_LOG_RECORDS,
    data_dir: str = "its data directory",
) -> str | None:
    """The line to print when the longest partition holds ``threshold`` records or more
    (``ends``: each partition's end offset; the embedded log starts at 0), else None."""
    if not ends:
        return None
    longest, records = max(
        ends.items(), key=lambda item: (item[1], item[0].topic, item[0].partition)
    )
    if records < threshold:
        return None
    return (
        f"the broker's log holds {records:,} records in {longest.topic} partition"
        f" {longest.partition}: the embedded durable broker lists a partition's every"
        " stored batch on each fetch and never trims its log, so this stack is slower than"
        " a fresh one and slows further as it grows (docs/deploy.md). For a long-lived stack"
        f" use --broker kafka; to start afresh, stop it and remove {data_dir}."
    )


async def partition_ends(
    bootstrap: str, topics: Sequence[str], timeout_s: float = ASK_TIMEOUT_S
) -> dict[TopicPartition, int]:
    """Each partition's end offset as a Fetch from its start answers it (one fetch per
    partition, not a read of the log: ListOffsets is not trusted on the embedded
    broker)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, fetch_max_bytes=1024
    )
    await consumer.start()
    try:
        tps = [tp for topic in topics for tp in await topic_partitions(consumer, topic, 2.0)]
        if not tps:
            return {}
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        ends: dict[TopicPartition, int] = {}
        while len(ends) < len(tps) and loop.time() < deadline:
            await consumer.getmany(*tps, timeout_ms=250, max_records=1)
            for tp in tps:
                high = consumer.highwater(tp)
                if high is not None:
                    ends[tp] = high
                    consumer.pause(tp)  # known: fetch the others only
        return ends
    finally:
        await stop_consumer(consumer)


def long_log_note(bootstrap: str, data_dir: str) -> str | None:
    """``growth_note`` for the afflux topics on ``bootstrap``; None when it cannot tell
    (a start must never fail for a note)."""
    try:
        ends = asyncio.run(partition_ends(bootstrap, [t.name for t in ALL_TOPICS]))
    except Exception as exc:  # any failure: no note
        log.debug("could not measure the broker's log: %r", exc)
        return None
    return growth_note(ends, data_dir=data_dir)
