"""The worker's state changelogs: compacted topics, one per stage, co-partitioned
with the stage's input, written one record per changed key per batch.

Recovery reads a partition from the beginning up to the high watermark that
fetch responses carry. It never asks ListOffsets for the end: some brokers
(the embedded one) answer the base offset of the newest batch + 1 there, which
would drop the last batch of every partition.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import OffsetOutOfRangeError, TopicAlreadyExistsError

from afflux.shared.io.kafka import stop_consumer

TAIL_FETCH_WAIT_MS = 50


async def ensure_changelogs(bootstrap: str, names: Iterable[str], partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(name, partitions, 1, topic_configs={"cleanup.policy": "compact"})
            for name in names
            if name not in existing
        ]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(wanted)
    finally:
        await admin.close()


async def read_partitions(
    bootstrap: str, topic: str, partitions: Iterable[int], *, idle_rounds: int = 3
) -> dict[int, dict[str, bytes | None]]:
    """The latest value of every key in each partition (None: deleted)."""
    tails = await read_tails(bootstrap, topic, dict.fromkeys(partitions), idle_rounds=idle_rounds)
    return {p: table for p, (table, _) in tails.items()}


async def read_tails(
    bootstrap: str, topic: str, starts: dict[int, int | None], *, idle_rounds: int = 3
) -> dict[int, tuple[dict[str, bytes | None], int]]:
    """Per partition, the latest value of every key written from its start offset (None:
    from the beginning) to the fetch high watermark, and that watermark. A start offset
    the partition no longer holds raises ``OffsetOutOfRangeError``."""
    tps = [TopicPartition(topic, p) for p in starts]
    result: dict[int, dict[str, bytes | None]] = {tp.partition: {} for tp in tps}
    if not tps:
        return {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="none",
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
        # A partition read to its end is known to be only once a fetch answers, and a
        # fetch finding nothing new waits this long first (aiokafka's default: 500 ms,
        # which every recovery of a partition with an empty tail waited).
        fetch_max_wait_ms=TAIL_FETCH_WAIT_MS,
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        read: dict[TopicPartition, int] = {}
        for tp in tps:
            start = starts[tp.partition]
            if start is None:
                await consumer.seek_to_beginning(tp)
                read[tp] = 0
            else:
                consumer.seek(tp, start)
                read[tp] = start
        quiet = 0
        while True:
            batches = await consumer.getmany(timeout_ms=100, max_records=50_000)
            for tp, records in batches.items():
                table = result[tp.partition]
                for record in records:
                    if record.key is not None:
                        table[record.key.decode()] = record.value
                    read[tp] = record.offset + 1
            if _done(consumer, tps, read):
                break
            quiet = 0 if batches else quiet + 1
            if quiet > idle_rounds * 50:  # no answer at all for ~15 s: give up loudly
                raise TimeoutError(f"changelog {topic} did not answer")
            if not batches:
                await asyncio.sleep(0)
        # Some brokers (the embedded one) answer a fetch past the end with no records
        # instead of an error: the start is then beyond the high watermark.
        beyond = {tp: read[tp] for tp in tps if read[tp] > (consumer.highwater(tp) or 0)}
        if beyond:
            raise OffsetOutOfRangeError(beyond)
    finally:
        await stop_consumer(consumer)
    return {tp.partition: (result[tp.partition], read[tp]) for tp in tps}


def _done(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition], read: dict[TopicPartition, int]
) -> bool:
    for tp in tps:
        high = consumer.highwater(tp)
        if high is None or read[tp] < high:
            return False
    return True
