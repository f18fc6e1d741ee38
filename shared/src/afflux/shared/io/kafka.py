"""Thin Kafka adapters shared by the services: topic set-up, producing (packed records
too: ``wire.chunk_by_partition`` then ``send_chunks``), dead letters."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, KafkaTimeoutError, TopicAlreadyExistsError
from aiokafka.structs import ConsumerRecord, RecordMetadata

from afflux.shared.core.ids import derived_id
from afflux.shared.core.partitioner import murmur2 as murmur2
from afflux.shared.core.partitioner import partition_for as partition_for
from afflux.shared.events import DeadLetter, Envelope
from afflux.shared.io.clock_source import system_clock
from afflux.shared.topics import (
    ALL_TOPICS,
    CLICKS,
    CONVERSIONS,
    DLQ,
    INFINITE_RETENTION_MS,
    ORDERS,
    REFUNDS,
    REVERSALS,
    UNMATCHED,
    topic_configs,
)
from afflux.shared.wire import Chunk, encode

log = logging.getLogger(__name__)

T = TypeVar("T")


class BrokerUnreachable(RuntimeError):
    """The Kafka bootstrap servers did not answer."""


async def check_broker(bootstrap: str, timeout_s: float = 10.0) -> None:
    """Raise BrokerUnreachable naming the address when no broker answers in time."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000)
    )
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
    except (KafkaError, OSError, TimeoutError) as exc:
        raise BrokerUnreachable(f"cannot reach the Kafka broker at {bootstrap}: {exc!r}") from exc
    finally:
        await admin.close()


async def retrying(call: Callable[[], Awaitable[T]], timeout_s: float = 30.0) -> T:
    """``call()``, again while it raises a retriable Kafka error, for up to ``timeout_s``.

    A group's coordinator may not be there yet: Apache Kafka answers
    COORDINATOR_NOT_AVAILABLE until its offsets topic exists (the first group
    request on a new cluster creates it) and while a coordinator moves.
    """
    deadline = time.monotonic() + timeout_s
    delay = 0.1
    while True:
        try:
            return await call()
        except KafkaError as exc:
            if not exc.retriable or time.monotonic() + delay > deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)


async def stop_consumer(consumer: AIOKafkaConsumer, timeout_s: float = 10.0) -> bool:
    """Stop ``consumer`` within about ``timeout_s`` per try; False when it would not stop.

    aiokafka's stop cancels its fetch routine and waits for it, but a cancellation
    that lands inside one of the routine's inner awaits can be swallowed there, and
    the routine then waits for the next fetch for ever (seen when the loop stood still
    for minutes before the stop, as a test session's loop does while synchronous
    tests run). Cancelling the routine again reaches its outer handler, which ends
    it. A stop that re-raises the cancellation of a fetch's retry pause has stopped.
    """
    stopping = asyncio.ensure_future(consumer.stop())
    for _ in range(3):
        done, _ = await asyncio.wait({stopping}, timeout=timeout_s)
        if done:
            with contextlib.suppress(asyncio.CancelledError):
                stopping.result()
            return True
        fetch_task = getattr(getattr(consumer, "_fetcher", None), "_fetch_task", None)
        if fetch_task is not None:
            fetch_task.cancel()
    log.warning("a Kafka consumer did not stop within %.0f s", 3 * timeout_s)
    stopping.cancel()
    return False


async def topic_partitions(
    consumer: AIOKafkaConsumer, topic: str, timeout_s: float = 5.0
) -> list[TopicPartition]:
    """The partitions of ``topic`` from a fresh metadata request; empty when the topic
    is still unknown after ``timeout_s`` (a topic just created may take a moment).

    ``consumer.partitions_for_topic`` knows only what the consumer's own metadata
    holds: on Apache Kafka that is nothing until it subscribes to or is assigned the
    topic (its answer to the bootstrap request lists no topics; the embedded broker's
    lists all), and ``consumer.topics()`` does not fill it in.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        cluster = await consumer._client.fetch_all_metadata()
        numbers = cluster.partitions_for_topic(topic)
        if numbers:
            return [TopicPartition(topic, n) for n in sorted(numbers)]
        if time.monotonic() >= deadline:
            return []
        await asyncio.sleep(0.1)


async def topics_end_offsets(
    bootstrap: str, topics: Sequence[str], timeout_s: float = 10.0
) -> dict[str, int]:
    """``"topic|partition"`` -> end offset, for every partition of ``topics`` that holds a
    record to read (its log start below its end: one whose records all left by retention
    is never read, so a consumer stores no position there to compare): the high watermark
    of a fetch at the offset ListOffsets answers. ListOffsets alone is exact on Kafka but
    may answer too low on the embedded broker (a batch's first offset: 23 of 40); a fetch
    answer's high watermark is the end on both."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=50,
        max_partition_fetch_bytes=1024,
    )
    await consumer.start()
    try:
        tps = [tp for topic in topics for tp in await topic_partitions(consumer, topic)]
        listed = await asyncio.wait_for(consumer.end_offsets(tps), timeout_s)
        starts = await asyncio.wait_for(consumer.beginning_offsets(tps), timeout_s)
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, int(listed[tp]))
        deadline = time.monotonic() + timeout_s
        while any(consumer.highwater(tp) is None for tp in tps):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no fetch answer for every partition of {list(topics)}")
            await consumer.getmany(*tps, timeout_ms=100, max_records=1)
        ends = {tp: max(int(listed[tp]), consumer.highwater(tp) or 0) for tp in tps}
        return {
            f"{tp.topic}|{tp.partition}": end
            for tp, end in ends.items()
            if int(starts.get(tp, 0)) < end
        }
    finally:
        with contextlib.suppress(Exception):
            await stop_consumer(consumer)


# The attribution worker's inputs and outputs: joined partition by partition.
CO_PARTITIONED = (CLICKS, ORDERS, REFUNDS, CONVERSIONS, REVERSALS, UNMATCHED)


class PartitionsMismatch(Exception):
    """Topics that exist with another partition count than afflux is configured for."""


async def partition_mismatches(bootstrap: str, partitions: int) -> list[str]:
    """One line per existing afflux topic whose partition count is not ``partitions``
    (1 for a single-partition topic). Keys are co-partitioned across topics (a visitor's
    clicks and orders, an order's conversion and refunds go to the same partition number),
    and the attribution worker's changelogs have ``partitions`` partitions: topics made by
    hand with other counts killed the worker's stages ("changelog did not answer") or
    left refunds unapplied while the ledger went on paying."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        names = [topic for topic in CO_PARTITIONED if topic.name in existing]
        described = await admin.describe_topics([topic.name for topic in names]) if names else []
    finally:
        await admin.close()
    counts = {str(d["topic"]): len(d.get("partitions") or ()) for d in described}
    out = []
    for topic in names:
        want = 1 if topic.single_partition else partitions
        have = counts.get(topic.name)
        if have is not None and have != want:
            out.append(f"topic {topic.name} has {have} partitions, afflux expects {want}")
    return out


async def create_topics(
    bootstrap: str,
    partitions: int,
    input_retention_ms: int = INFINITE_RETENTION_MS,
    *,
    check_partitions: bool = True,
) -> list[str]:
    """Create every afflux topic that is missing; return the names created.

    Input topics get ``retention.ms=input_retention_ms`` (afflux.shared.topics); a topic
    that exists already keeps its configuration. PartitionsMismatch when an existing
    topic has another partition count than ``partitions`` (``partition_mismatches``).
    """
    mismatched = await partition_mismatches(bootstrap, partitions) if check_partitions else []
    if mismatched:
        raise PartitionsMismatch(
            "; ".join(mismatched)
            + f" (AFFLUX_TOPIC_PARTITIONS={partitions}; see docs/deploy.md, Scaling)"
        )
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                topic.name,
                1 if topic.single_partition else partitions,
                1,
                topic_configs=topic_configs(topic, input_retention_ms),
            )
            for topic in ALL_TOPICS
            if topic.name not in existing
        ]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(wanted)
        return [t.name for t in wanted]
    finally:
        await admin.close()


def new_group_consumer(
    bootstrap: str, group_id: str, *topics: str, **overrides: Any
) -> AIOKafkaConsumer:
    """A consumer in ``group_id`` as afflux's own consumers run: offsets committed (or
    stored) by the caller after its writes, a new group starting from the beginning (an
    event published before the group first joined still counts), and a dead member
    noticed within ten seconds."""
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": 10_000,
        "heartbeat_interval_ms": 1_000,
    }
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **options)


def dead_letter_of(
    record: ConsumerRecord[bytes, bytes],
    *,
    consumer: str,
    reason: str,
    error_class: str | None = None,
    item: int | None = None,
) -> DeadLetter:
    """``dead_letter`` for a consumed record (``item``: one item of a packed record)."""
    return dead_letter(
        consumer=consumer,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        reason=reason,
        error_class=error_class,
        item=item,
    )


def new_producer(bootstrap: str, **overrides: Any) -> AIOKafkaProducer:
    """A producer with afflux's defaults: acks=all, small linger for batching."""
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "acks": "all",
        "linger_ms": 5,
        "enable_idempotence": False,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


async def send_event(producer: AIOKafkaProducer, topic: str, key: str, event: Envelope) -> None:
    """Produce one event and wait for the broker's acknowledgement."""
    await producer.send_and_wait(topic, encode(event), key=key.encode())


async def send_chunks(
    producer: AIOKafkaProducer,
    topic: str,
    chunks: Sequence[Chunk[Any]],
    *,
    timeout_s: float | None = None,
    headers: Sequence[tuple[str, bytes]] = (),
) -> list[RecordMetadata | Exception]:
    """Send each chunk as one record (every record carrying ``headers``), then wait for
    the broker; per chunk, in order, its record's metadata or the exception that the
    send or the wait raised.

    Every record is handed to the producer before any acknowledgement is awaited,
    so they share requests as far as the producer's batching allows. With
    ``timeout_s``, handing a record over (which waits while the producer's buffer
    is full) may take that long and its acknowledgement twice that; a wait that
    times out leaves the record's send running (the broker may still store it).
    """
    handed: list[asyncio.Future[RecordMetadata] | Exception] = []
    record_headers = list(headers) or None
    for chunk in chunks:
        send = producer.send(
            topic,
            chunk.record_value(),
            key=chunk.key,
            partition=chunk.partition,
            headers=record_headers,
        )
        try:
            handed.append(await asyncio.wait_for(send, timeout_s))
        except Exception as exc:
            handed.append(mark_not_sent(exc))
    outcomes: list[RecordMetadata | Exception] = []
    for sent in handed:
        if isinstance(sent, Exception):
            outcomes.append(sent)
            continue
        try:
            if timeout_s is None:
                outcomes.append(await sent)
            else:
                outcomes.append(await asyncio.wait_for(asyncio.shield(sent), timeout_s * 2))
        except Exception as exc:
            outcomes.append(exc)
    return outcomes


def dead_letter(
    *,
    consumer: str,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    reason: str,
    error_class: str | None = None,
    item: int | None = None,
) -> DeadLetter:
    """The dead-letter event for a record (``item``: for one item of a packed record); its
    id is derived so a redelivery is recognisable."""
    where = (str(partition), str(offset)) + (() if item is None else (str(item),))
    return DeadLetter(
        event_id=derived_id("dlq", consumer, topic, *where),
        occurred_at=system_clock(),
        source_topic=topic,
        source_partition=partition,
        source_offset=offset,
        consumer=consumer,
        reason=reason[:2000],
        error_class=error_class,
        key=key.decode("utf-8", "replace") if key is not None else None,
        value=(value or b"").decode("utf-8", "replace"),
    )


async def send_dead_letter(producer: AIOKafkaProducer, letter: DeadLetter) -> None:
    await producer.send_and_wait(DLQ.name, encode(letter), key=(letter.key or "").encode() or None)


NOT_SENT = "afflux: the record never left the producer"


def mark_not_sent(exc: Exception) -> Exception:
    """``exc``, noted as raised before its record was handed to the producer (no metadata,
    the buffer full): the broker cannot have stored it, unlike a send that timed out."""
    exc.add_note(NOT_SENT)
    return exc


def not_sent(exc: BaseException) -> bool:
    return NOT_SENT in getattr(exc, "__notes__", ())


def broker_away(exc: BaseException) -> bool:
    """True for a failure that says the broker cannot be reached or answered too late
    (worth sending again); False for one that refuses the record itself."""
    if isinstance(exc, KafkaError):
        return bool(exc.retriable) or isinstance(exc, KafkaTimeoutError)
    return isinstance(exc, OSError | asyncio.TimeoutError)


async def deliver_dead_letter(
    producer: AIOKafkaProducer, letter: DeadLetter, *, retry_s: float = 1.0
) -> BaseException | None:
    """Send ``letter`` and wait for the broker, sending again while the broker is away, so
    a consumer that waits here skips nothing. None once sent; the exception when the letter
    itself is refused (a closed producer, a record the broker will not take), which no
    retry would cure: the caller logs and counts it and moves on, never stopping on it."""
    while True:
        try:
            await send_dead_letter(producer, letter)
            return None
        except Exception as exc:
            if not broker_away(exc):
                log.error(
                    "dead letter %s (%s[%d]@%d) refused, not sent: %r",
                    letter.event_id,
                    letter.source_topic,
                    letter.source_partition,
                    letter.source_offset,
                    exc,
                )
                return exc
            log.warning("dead letter not sent yet (%r); retrying", exc)
            await asyncio.sleep(retry_s)
