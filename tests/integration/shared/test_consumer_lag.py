"""Consumer lag on the real broker, from Fetch high watermarks.

Records are produced in multi-record batches: on the embedded broker a
ListOffsets "latest" answer would hide most of the last batch, so these exact
figures only hold when lag comes from the Fetch high watermark.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client import CollectorRegistry

from afflux.shared.io.lag import ConsumerLag

pytestmark = [pytest.mark.integration, pytest.mark.kafka_conformance]


async def _produce(bootstrap: str, topic: str, counts: dict[int, int]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=50)
    await producer.start()
    try:
        sent = [
            await producer.send(topic, b"{}", partition=partition)
            for partition, count in counts.items()
            for _ in range(count)
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


@pytest.fixture
async def topic(infra: Any) -> str:
    name = f"lag-test-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 2, 1)])
    finally:
        await admin.close()
    return name


async def _consume(consumer: AIOKafkaConsumer, count: int) -> None:
    taken = 0
    while taken < count:
        batch = await consumer.getmany(timeout_ms=500, max_records=count - taken)
        taken += sum(len(records) for records in batch.values())


async def _wait_for_highwater(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> None:
    for _ in range(100):
        if all(consumer.highwater(tp) is not None for tp in tps):
            return
        await consumer.getmany(timeout_ms=100, max_records=1)
    raise AssertionError("no fetch response reached the consumer")


async def test_lag_is_watermark_minus_processed_summed_per_topic(infra: Any, topic: str) -> None:
    await _produce(infra.kafka_bootstrap, topic, {0: 300, 1: 200})
    registry = CollectorRegistry()
    lag = ConsumerLag("lag-test", registry)
    tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
    consumer = AIOKafkaConsumer(bootstrap_servers=infra.kafka_bootstrap, enable_auto_commit=False)
    consumer.assign(tps)
    await consumer.start()
    try:
        await consumer.seek_to_beginning(*tps)
        assert await lag.update(consumer) == {}  # nothing fetched yet: no figure invented

        await _consume(consumer, 120)
        await _wait_for_highwater(consumer, tps)
        positions = sum([await consumer.position(tp) for tp in tps])
        assert await lag.update(consumer) == {topic: 500 - positions}
        sample = registry.get_sample_value(
            "afflux_consumer_lag_messages", {"service": "lag-test", "topic": topic}
        )
        assert sample == 500 - positions

        # A consumer that applies records itself reports its own progress.
        processed = {tps[0]: 100, tps[1]: 50}
        assert await lag.update(consumer, processed) == {topic: 200 + 150}

        await _consume(consumer, 500 - positions)
        assert await lag.update(consumer) == {topic: 0}
    finally:
        await consumer.stop()
