"""A hole in a partition's log, made on purpose: offsets that hold no record, as the
embedded broker killed mid-write can leave. One record batch whose only record sits
``hole`` offsets after the batch's base, produced as it is (the broker keeps the
deltas), so the offsets before it stay empty."""

from __future__ import annotations

import time

from aiokafka import TopicPartition
from aiokafka.protocol.produce import ProduceRequest
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from afflux.shared.io.kafka import new_producer


async def write_after_hole(
    bootstrap: str, topic: str, partition: int, key: bytes, value: bytes, hole: int
) -> None:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    builder.append(hole, int(time.time() * 1000), key, value, [])
    request = ProduceRequest(
        transactional_id=None,
        required_acks=-1,
        timeout=5000,
        topics=[(topic, [(partition, bytes(builder.build()))])],
    )
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        node = producer.client.cluster.leader_for_partition(TopicPartition(topic, partition))
        answer = await producer.client.send(node, request)
        assert answer.topics[0][1][0][1] == 0, answer  # no error code
    finally:
        await producer.stop()
