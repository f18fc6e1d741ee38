"""What a Kafka transaction costs the attribution worker's shape of work, measured.

The same relay as ``afflux.bench.attribution.relay`` (every input record copied to a
scratch topic), but exactly once the way Kafka offers it: a transactional producer puts
the copies and the consumer group's input offsets into one transaction (outputs and
input position committed together, or neither), read back with ``read_committed``.
Two granularities:

- ``poll``: one transaction per consumer poll (up to 5,000 records), the cheapest
  a worker can do, as Faust's ``exactly_once`` commits once per commit interval;
- ``record``: one transaction per input record, the unit in which a stage writes its
  outputs, changelog and input position today (docs/attribution.md).

Apache Kafka only: the embedded broker has no transactions (``InitProducerId`` is
not supported).
"""

from __future__ import annotations

import asyncio
import time
from typing import Literal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

Granularity = Literal["poll", "record"]
GRANULARITIES: tuple[Granularity, ...] = ("poll", "record")


async def transactional_relay(
    bootstrap: str, inputs: tuple[str, ...], partitions: int, records: int, per: Granularity
) -> float:
    """Seconds to copy every input record with one transaction per ``per``."""
    topic, group = f"bench.relay.tx-{per}", f"bench-relay-tx-{per}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, partitions, 1)])
    await admin.close()
    consumer = AIOKafkaConsumer(
        *inputs,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        transactional_id=f"{group}-producer",
        enable_idempotence=True,
        acks="all",
        linger_ms=2,
        max_batch_size=1024 * 1024,
    )
    await consumer.start()
    await producer.start()
    try:
        # Before the clock: a first transaction to every partition of the new topic, so that
        # the transaction coordinator and the partitions' leaders are ready (a fresh topic's
        # partitions answer NOT_ENOUGH_REPLICAS to transactional writes for a moment).
        async with producer.transaction():
            for p in range(partitions):
                await producer.send(topic, b"", partition=p)
        started = time.perf_counter()
        copied = 0
        while copied < records:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            if per == "poll" and batches:
                async with producer.transaction():
                    for tp, batch in batches.items():
                        for r in batch:
                            await producer.send(topic, r.value, key=r.key, partition=tp.partition)
                    ends = {tp: batch[-1].offset + 1 for tp, batch in batches.items()}
                    await producer.send_offsets_to_transaction(ends, group)
            elif per == "record":
                for tp, batch in batches.items():
                    for r in batch:
                        async with producer.transaction():
                            await producer.send(topic, r.value, key=r.key, partition=tp.partition)
                            offsets = {TopicPartition(tp.topic, tp.partition): r.offset + 1}
                            await producer.send_offsets_to_transaction(offsets, group)
            copied += sum(len(batch) for batch in batches.values())
        return time.perf_counter() - started
    finally:
        await consumer.stop()
        await producer.stop()


def run_all(
    bootstrap: str, inputs: tuple[str, ...], partitions: int, records: int
) -> dict[Granularity, float]:
    """Seconds of each granularity, one after the other."""
    return {
        per: asyncio.run(transactional_relay(bootstrap, inputs, partitions, records, per))
        for per in GRANULARITIES
    }
