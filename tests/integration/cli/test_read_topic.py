"""``read_topic`` (what ``afflux verify`` and the tests read topics with) returns every
record already on the topic, however soon it would call the topic idle."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from afflux.cli.scenario_checks import read_topic
from afflux.shared.events import DeadLetter
from afflux.shared.io.kafka import new_producer
from afflux.shared.wire import encode

pytestmark = pytest.mark.integration

RECORDS = 3_000
PARTITIONS = 4


def letter(n: int) -> DeadLetter:
    return DeadLetter(
        event_id=f"dl-{n}",
        occurred_at=1_700_000_000_000,
        source_topic="orders",
        source_partition=n % PARTITIONS,
        source_offset=n,
        consumer="test",
        reason="x" * 200,
        error_class="Rejected",
        key=f"k-{n}",
        value="{}",
    )


async def test_every_record_on_the_topic_is_read_though_idle_is_zero(infra: Any) -> None:
    topic = f"read-topic-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        await admin.close()
    producer = new_producer(infra.kafka_bootstrap)
    await producer.start()
    try:
        sent = [
            await producer.send(topic, encode(letter(n)), partition=n % PARTITIONS)
            for n in range(RECORDS)
        ]
        for delivery in sent:
            await delivery
    finally:
        await producer.stop()

    # Idle 0: before, the read ended after its first poll, whatever it had read.
    events = await read_topic(infra.kafka_bootstrap, topic, idle_s=0.0)

    assert sorted(e.event_id for e in events) == sorted(f"dl-{n}" for n in range(RECORDS))


async def test_a_topic_that_does_not_exist_reads_as_empty_at_once(infra: Any) -> None:
    assert await read_topic(infra.kafka_bootstrap, f"none-{uuid.uuid4().hex}", idle_s=0.5) == []
