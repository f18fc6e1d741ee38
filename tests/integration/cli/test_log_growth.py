"""The ends ``afflux up`` reads for its long-log note, from the session broker: one fetch
per partition from its start, not a read of the log."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from afflux.cli.log_growth import growth_note, partition_ends

pytestmark = pytest.mark.integration


async def test_each_partitions_end_is_read_and_the_longest_is_named(infra: Any) -> None:
    topic = f"log-growth-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 3, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap)
    await producer.start()
    try:
        for partition, count in ((0, 3), (1, 0), (2, 12)):
            for n in range(count):
                await producer.send_and_wait(topic, b"%d" % n, partition=partition)
    finally:
        await producer.stop()

    ends = await partition_ends(infra.kafka_bootstrap, [topic, f"{topic}-missing"])

    assert ends == {
        TopicPartition(topic, 0): 3,
        TopicPartition(topic, 1): 0,
        TopicPartition(topic, 2): 12,
    }
    note = growth_note(ends, threshold=12)
    assert note is not None
    assert f"12 records in {topic} partition 2" in note
    assert growth_note(ends, threshold=13) is None
