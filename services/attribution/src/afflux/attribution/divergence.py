"""Telling, at assignment, whether a stage's state still belongs to its input logs.

A stage's state (its changelog, or what it holds in memory) was built from the
input records it consumed; the consumer group's committed offsets say where to
go on. Both assume the input log is the same log. When it is not (a topic
deleted and created again, a broker that lost its log, offsets restored from
elsewhere), going on would mix an old state with new records, or skip records,
without a sign: the stage stops the partition instead and says why.

Two checks per input partition:
- the committed offset is beyond the log end (the fetch high watermark, never
  ListOffsets: the embedded broker answers "latest" wrongly, see changelog.py);
- the position the stage recorded (the offset of the last record it consumed and
  that record's fingerprint) is past the log end, or the log holds another
  record there.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable, Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from afflux.shared.io.kafka import retrying, stop_consumer

Position = tuple[int, str]  # offset of the last consumed record, its fingerprint
IDLE_POLLS = 150  # ~15 s without an answer: give up loudly


def fingerprint(key: bytes | None, value: bytes | None, timestamp: int) -> str:
    """What identifies a consumed record beyond its offset."""
    h = hashlib.blake2b(digest_size=8)
    for part in (key or b"", value or b"", str(timestamp).encode()):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


class Diverged(Exception):
    """A partition whose state no longer matches its input log."""


async def committed_offsets(
    bootstrap: str, group: str, tps: Iterable[TopicPartition]
) -> dict[TopicPartition, int]:
    """The group's committed offsets of ``tps`` (absent: none committed)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        wanted = list(tps)
        found = await retrying(lambda: admin.list_consumer_group_offsets(group, partitions=wanted))
    finally:
        await admin.close()
    return {tp: meta.offset for tp, meta in found.items() if meta.offset >= 0}


async def check_inputs(
    bootstrap: str,
    committed: Mapping[TopicPartition, int],
    recorded: Mapping[TopicPartition, Position],
    tps: Iterable[TopicPartition],
) -> dict[TopicPartition, str]:
    """Per input partition that diverged, one line naming topic, partition and offsets."""
    tps = list(tps)
    if not tps:
        return {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        # An offset no longer in the log (retention, or a shorter recreated log) reads on
        # from the log's start: where it starts tells retention from a recreated topic.
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, recorded[tp][0] if tp in recorded else 0)
        found = await _highs_and_records(consumer, tps, recorded)
    finally:
        await stop_consumer(consumer)
    problems: dict[TopicPartition, str] = {}
    for tp in tps:
        high, record, start = found[tp]
        problem = judge(high, committed.get(tp), recorded.get(tp), record, start)
        if problem:
            problems[tp] = f"{tp.topic}[{tp.partition}]: {problem}"
    return problems


def judge(
    high: int,
    committed: int | None,
    recorded: Position | None,
    record: str | None,
    start: int | None = None,
) -> str:
    """Why an input partition no longer matches the state ('' when it does): ``high`` is
    the log end, ``record`` the fingerprint of the record at the recorded offset (None:
    not in the log), ``start`` where the log was read from when that record was not
    there (None: not known)."""
    if committed is not None and committed > high:
        return (
            f"the committed offset {committed} is beyond the log end {high}"
            " (the topic was recreated or lost records)"
        )
    if recorded is None:
        return ""
    offset, expected = recorded
    if offset >= high:
        return (
            f"the state was built up to offset {offset}, beyond the log end {high}"
            " (the topic was recreated or lost records)"
        )
    if record is None and start is not None and start > offset:
        # Retention (or DeleteRecords) took the record: the log starts after it. Only what
        # was never read matters; the state holds what the consumed records made of it.
        # The stage records its position before the group's commit catches up (a second
        # later): what it recorded was read, whatever the commit says.
        unread = max(committed if committed is not None else 0, offset + 1)
        if start > unread:
            return (
                f"the log now starts at offset {start}, after the next offset to read"
                f" {unread}: records never read were deleted (retention or DeleteRecords);"
                " their events are lost to this state"
            )
        return ""
    if record != expected:
        return (
            f"the record at offset {offset} is not the one the state was built from"
            f" (the topic was recreated; log end {high})"
        )
    return ""


async def _highs_and_records(
    consumer: AIOKafkaConsumer,
    tps: list[TopicPartition],
    recorded: Mapping[TopicPartition, Position],
) -> dict[TopicPartition, tuple[int, str | None, int | None]]:
    """Each partition's fetch high watermark, the fingerprint of the record at its
    recorded offset (None: not there) and, when it was not there, the offset the log was
    read from (its start, past the recorded offset when retention took it)."""
    prints: dict[TopicPartition, str | None] = {}
    first: dict[TopicPartition, int] = {}  # the first offset read of each partition
    starts: dict[TopicPartition, int] = {}
    idle = 0
    while True:
        batch = await consumer.getmany(*tps, timeout_ms=100, max_records=1)
        for tp, records in batch.items():
            for r in records:
                first.setdefault(tp, r.offset)
                if tp in recorded and tp not in prints and r.offset == recorded[tp][0]:
                    prints[tp] = fingerprint(r.key, r.value, r.timestamp)
        highs = {tp: consumer.highwater(tp) for tp in tps}
        if all(high is not None for high in highs.values()):
            waiting = [
                tp
                for tp in tps
                if tp in recorded and tp not in prints and recorded[tp][0] < (highs[tp] or 0)
            ]
            for tp in waiting:
                position = await consumer.position(tp)
                if position > recorded[tp][0]:
                    prints[tp] = None  # read past it without meeting it: not in the log
                    starts[tp] = first.get(tp, position)
            if all(tp in prints for tp in waiting):
                return {tp: (highs[tp] or 0, prints.get(tp), starts.get(tp)) for tp in tps}
        idle = 0 if batch else idle + 1
        if idle > IDLE_POLLS:
            raise TimeoutError(f"input partitions {tps} did not answer")
        if not batch:
            await asyncio.sleep(0)
