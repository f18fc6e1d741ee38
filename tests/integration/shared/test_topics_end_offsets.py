"""``topics_end_offsets`` names the partitions a replay must read to their end: only those
holding a record. One whose records all left by retention (log start = end > 0) is never
read, so a consumer stores no position there, and a rebuild waiting for it waited for good
(no payout run, no compaction)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.records_to_delete import RecordsToDelete

from afflux.shared.io.kafka import new_producer, topics_end_offsets

pytestmark = [pytest.mark.integration, pytest.mark.kafka_conformance]


def test_only_partitions_holding_a_record_are_named(infra: Any, broker_kind: str) -> None:
    topic = f"ends-{uuid.uuid4().hex[:8]}"

    async def scenario() -> dict[str, int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
        await admin.start()
        producer = new_producer(infra.kafka_bootstrap)
        await producer.start()
        try:
            await admin.create_topics([NewTopic(topic, 3, 1)])
            for _ in range(3):
                await producer.send_and_wait(topic, b"kept", partition=0)
            last = await producer.send_and_wait(topic, b"gone", partition=1)
            # Retention, as DeleteRecords does it (the embedded broker deletes no records:
            # there, partition 2, never written, is the one with nothing to read).
            if broker_kind == "kafka":
                await admin.delete_records(
                    {TopicPartition(topic, 1): RecordsToDelete(last.offset + 1)}
                )
            return await topics_end_offsets(infra.kafka_bootstrap, [topic])
        finally:
            await producer.stop()
            await admin.close()

    ends = asyncio.run(scenario())

    expected = {f"{topic}|0": 3}
    if broker_kind != "kafka":
        expected[f"{topic}|1"] = 1  # still holds its record
    assert ends == expected  # partition 2 was never written
