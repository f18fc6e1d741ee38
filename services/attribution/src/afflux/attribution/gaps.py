"""Reading back input records that the delivery layer skipped.

Faust's consumer books offsets it did not see as a gap (as for compacted logs)
and drops records below its read offset as already seen. If records of a fetch
made before a rebalance are handed out after the seek back to the committed
offset, the first of them lands past the seek point and the re-fetched records
before it would be dropped, never processed, and their offsets committed.

Input offsets of afflux topics are dense (no compaction, no transactions), so
the stages treat any forward jump as missing records and read them here,
before the record that revealed the jump. Dense but for holes: the embedded
broker killed mid-write can leave offsets that hold no record; reading such a
range returns nothing (the reader's position passes the end) and the stage goes
on, as the ledger does (docs/payouts.md, "Exactly once"). A partition's first record of a topic
is checked too, against the partition's recorded input position (or the log's
start when its state holds nothing of the topic): a partition kept through a
rebalance before it had processed any record of a topic (the join's first
outcomes reaching the refund stage just then) has no earlier record to compare
with, and the records dropped before it were lost without a word.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from afflux.shared.io.kafka import stop_consumer

IDLE_POLLS = 150  # ~15 s without an answer: give up loudly


# What one read-back fetch takes of a partition at most: a skipped range is read and
# applied a fetch at a time, never held whole (stage.py, ``Stage._skipped``).
READ_BACK_FETCH_BYTES = 8 * 1024 * 1024


async def log_end(bootstrap: str, topic: str, partition: int, timeout_s: float = 3.0) -> int:
    """The offset after the last record of ``topic[partition]``, asked of the broker;
    TimeoutError after ``timeout_s`` (a stalled broker), its client stopped either way."""
    tp = TopicPartition(topic, partition)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        request_timeout_ms=int(timeout_s * 1000) + 1000,
    )
    try:
        async with asyncio.timeout(timeout_s):
            await consumer.start()
            ends: dict[TopicPartition, int] = await consumer.end_offsets([tp])
        return ends[tp]
    finally:
        await stop_consumer(consumer)


async def read_range(
    bootstrap: str, topic: str, partition: int, start: int, end: int
) -> list[ConsumerRecord[bytes, bytes]]:
    """The records of ``topic[partition]`` with ``start <= offset < end``."""
    records: list[ConsumerRecord[bytes, bytes]] = []
    async for chunk in read_chunks(bootstrap, topic, partition, start, end):
        records.extend(chunk)
    return records


async def read_chunks(
    bootstrap: str,
    topic: str,
    partition: int,
    start: int,
    end: int,
    fetch_bytes: int = READ_BACK_FETCH_BYTES,
) -> AsyncGenerator[list[ConsumerRecord[bytes, bytes]], None]:
    """The records of ``topic[partition]`` with ``start <= offset < end``, a fetch at a
    time (each of at most about ``fetch_bytes``, and never empty)."""
    tp = TopicPartition(topic, partition)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=fetch_bytes,
        fetch_max_bytes=fetch_bytes,
    )
    await consumer.start()
    try:
        consumer.assign([tp])
        consumer.seek(tp, start)
        idle = 0
        while True:
            if await consumer.position(tp) >= end:
                return
            batch = await consumer.getmany(tp, timeout_ms=100, max_records=10_000)
            got = batch.get(tp, [])
            chunk = [r for r in got if start <= r.offset < end]
            if chunk:
                yield chunk
            idle = 0 if got else idle + 1
            if idle > IDLE_POLLS:
                raise TimeoutError(f"{topic}[{partition}] did not return offsets {start}..{end}")
    finally:
        await stop_consumer(consumer)
