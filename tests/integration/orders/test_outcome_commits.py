"""The order-outcome index commits its group's offsets paced: only partitions it read,
at most once an interval, and what it stored when it stops. Against the session broker
and Redis, under a group of its own."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from bounded_reads import bounded
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from afflux.orders.outcome_index import (
    TOPICS,
    OutcomeConsumer,
    OutcomeIndex,
    OutcomeMetrics,
    outcome_key,
)
from afflux.shared.io import paced_commits
from afflux.shared.io.kafka import new_producer
from afflux.shared.topics import CONVERSIONS, REFUNDS, REVERSALS
from afflux.shared.wire import encode

from .test_order_outcome import conversion, new_id, refund_of, until

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def patient_flush(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stop's last commit is given up after a few seconds in service (a broker away
    must not hold a stop); here the loaded broker is there, and the tests read what the
    stop committed."""
    monkeypatch.setattr(paced_commits, "FLUSH_TIMEOUT_S", 30.0)


@pytest.fixture
async def producer(infra: Any) -> AsyncIterator[AIOKafkaProducer]:
    started: AIOKafkaProducer = new_producer(infra.kafka_bootstrap)
    await started.start()
    yield started
    await started.stop()


@pytest.fixture
async def index(infra: Any) -> AsyncIterator[OutcomeIndex]:
    redis: Redis[bytes] = Redis.from_url(infra.redis_url)
    yield OutcomeIndex(redis, f"afx:test-commits:{uuid.uuid4().hex[:8]}", retention_days=1)
    await redis.aclose()


async def committed(infra: Any, group: str) -> dict[TopicPartition, int]:
    """The group's committed offsets (a check polled by ``until`` must answer)."""
    return await bounded(lambda: _committed_once(infra, group), "the group's offsets")


async def _committed_once(infra: Any, group: str) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    try:
        everything = [TopicPartition(t, n) for t in TOPICS for n in range(infra.partitions)]
        found = await admin.list_consumer_group_offsets(group, partitions=everything)
    finally:
        await admin.close()
    return {tp: meta.offset for tp, meta in found.items() if meta.offset >= 0}


async def a_conversion_indexed(
    producer: AIOKafkaProducer, index: OutcomeIndex
) -> tuple[TopicPartition, int]:
    """Produce a conversion, wait until the index holds it; its partition and the offset
    after it."""
    event = conversion(new_id("shop"), new_id("o"), "anna")
    sent = await producer.send_and_wait(
        CONVERSIONS.name, encode(event), key=event.order_id.encode()
    )

    async def stored() -> bool:
        return bool(await index.events([event.campaign_id], event.order_id))

    await until(stored, "the conversion in the index")
    return TopicPartition(CONVERSIONS.name, sent.partition), sent.offset + 1


def keeper(
    infra: Any,
    index: OutcomeIndex,
    producer: AIOKafkaProducer,
    commit_interval_s: float,
    group: str | None = None,
) -> OutcomeConsumer:
    return OutcomeConsumer(
        bootstrap=infra.kafka_bootstrap,
        index=index,
        producer=producer,
        metrics=OutcomeMetrics(CollectorRegistry()),
        group=group or new_id("outcome-commits"),
        commit_interval_s=commit_interval_s,
    )


@contextlib.asynccontextmanager
async def running(consumer: OutcomeConsumer) -> AsyncIterator[str]:
    """The consumer's loop while inside, stopped as the service stops it; its group."""
    task = asyncio.create_task(consumer.run())
    try:
        yield consumer.consumer._group_id
    finally:
        # Bounded, as the service's own stop is (``cancel_and_wait``): a cancellation
        # that aiokafka swallowed once left this wait without end.
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=45)
        assert done, "the index's loop did not stop within 45 s of its cancellation"
        assert task.cancelled()


async def test_stored_records_are_committed_when_the_index_stops_not_after_each_poll(
    infra: Any, index: OutcomeIndex, producer: AIOKafkaProducer
) -> None:
    async with running(keeper(infra, index, producer, commit_interval_s=3_600)) as group:
        tp, after = await a_conversion_indexed(producer, index)
        await asyncio.sleep(1.0)  # polls go on: none may commit within the interval
        assert await committed(infra, group) == {}
    offsets = await committed(infra, group)
    assert offsets[tp] >= after
    # Only partitions it read from: an empty partition is never committed at 0.
    assert all(offset > 0 for offset in offsets.values()), offsets


async def test_a_running_index_commits_its_last_stored_record_with_no_record_after_it(
    infra: Any, index: OutcomeIndex, producer: AIOKafkaProducer
) -> None:
    async with running(keeper(infra, index, producer, commit_interval_s=0.2)) as group:
        tp, after = await a_conversion_indexed(producer, index)

        async def caught_up() -> bool:
            return (await committed(infra, group)).get(tp, -1) >= after

        await until(caught_up, "the conversion committed while running")


async def test_records_read_again_after_a_crash_before_the_commit_store_nothing_twice(
    infra: Any, index: OutcomeIndex, producer: AIOKafkaProducer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pacing leaves up to an interval of stored records uncommitted: a crash there
    makes the next member read them again, which must change nothing, the per-class
    counters that bound an order's refunds included."""
    event = conversion(new_id("shop"), new_id("o"), "anna")
    refund, reversal = refund_of(event, 1_000)
    sent = [
        await producer.send_and_wait(topic, encode(e), key=event.order_id.encode())
        for topic, e in (
            (CONVERSIONS.name, event),
            (REFUNDS.name, refund),
            (REVERSALS.name, reversal),
        )
    ]
    key = outcome_key(index.prefix, event.campaign_id, event.order_id)

    async def all_three() -> dict[bytes, bytes] | None:
        stored: dict[bytes, bytes] = await index.redis.hgetall(key)
        return stored if sum(not f.startswith(b"!") for f in stored) == 3 else None

    async def died() -> None:
        """The process dies before its paced commit: its stop commits nothing."""

    first = keeper(infra, index, producer, commit_interval_s=3_600)
    # Not a clear of what is pending: the member goes on polling the session's topics
    # until it is stopped, and what it stores meanwhile would be committed at the stop.
    monkeypatch.setattr(first.commits, "flush", died)
    async with running(first) as group:
        before = await until(all_three, "the order's three events in the index")
    assert await committed(infra, group) == {}

    wanted = {TopicPartition(m.topic, m.partition): m.offset + 1 for m in sent}

    async def read_again() -> bool:
        offsets = await committed(infra, group)
        return all(offsets.get(tp, -1) >= after for tp, after in wanted.items())

    async with running(keeper(infra, index, producer, commit_interval_s=0.1, group=group)):
        await until(read_again, "the next member past the three records")
    assert await index.redis.hgetall(key) == before
