"""The embedded broker on its durable default: what it acknowledged outlives a kill -9.

The broker (Tansu) keeps its log in a local S3 store (SeaweedFS) under the data
directory. These tests start both, produce and wait for every acknowledgement,
kill -9 the broker they started (by its PID), start it again on the same store
and read every partition back to the high watermark of a Fetch response (never
to a ListOffsets end offset, which this broker answers wrongly when a batch
holds several records).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from afflux.cli.embedded import start_broker
from afflux.cli.object_store import ObjectStore, start_object_store
from afflux.cli.processes import Child, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOPIC = "durability-probe"
PARTITIONS = 4
RECORDS = 6_000


@dataclass
class DurableBroker:
    store: ObjectStore
    store_dir: Path
    port: int
    log_dir: Path
    broker: Child

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def crash_and_restart(self) -> int:
        """kill -9 the broker this test started, start it on the same port and store;
        return the killed PID."""
        killed = self.broker.pid
        self.broker.kill()
        self.broker = start_broker(self.port, self.log_dir, store=self.store)
        return killed

    def crash_everything_and_restart(self) -> None:
        """kill -9 the broker and the object store, start the store again on the same
        directory (new ports, as a new ``afflux up`` would) and the broker on it."""
        self.broker.kill()
        self.store.child.kill()
        self.store = start_object_store(self.store_dir, self.log_dir)
        self.broker = start_broker(self.port, self.log_dir, store=self.store)


@pytest.fixture
def durable(tmp_path: Path) -> Iterator[DurableBroker]:
    logs, store_dir = tmp_path / "logs", tmp_path / "seaweedfs"
    store = start_object_store(store_dir, logs)
    port = free_port()
    running = DurableBroker(store, store_dir, port, logs, start_broker(port, logs, store=store))
    try:
        yield running
    finally:
        running.broker.stop()
        running.store.stop()


async def _create_topic(bootstrap: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)])
    finally:
        await admin.close()


async def _produce(bootstrap: str, first: int, count: int) -> dict[int, dict[int, bytes]]:
    """Send ``count`` keyed records and return, per partition, offset -> value of every
    record the broker acknowledged."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    acknowledged: dict[int, dict[int, bytes]] = defaultdict(dict)
    try:
        sent = []
        for n in range(first, first + count):
            value = f"record-{n:06d}".encode()
            future = await producer.send(TOPIC, value, key=f"key-{n % 97}".encode())
            sent.append((value, future))
        for value, future in sent:
            metadata = await future
            acknowledged[metadata.partition][metadata.offset] = value
    finally:
        await producer.stop()
    return acknowledged


async def _read_to_high_watermark(
    bootstrap: str,
) -> tuple[dict[int, dict[int, bytes]], dict[int, int]]:
    """Every record of every partition up to the high watermark the Fetch responses give."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    partitions = [TopicPartition(TOPIC, p) for p in range(PARTITIONS)]
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    read: dict[int, dict[int, bytes]] = defaultdict(dict)
    watermarks: dict[int, int] = {}
    try:
        async with asyncio.timeout(60):
            while len(watermarks) < PARTITIONS:
                batches = await consumer.getmany(timeout_ms=500, max_records=5000)
                for tp, records in batches.items():
                    for record in records:
                        assert record.value is not None
                        read[tp.partition][record.offset] = record.value
                for tp in partitions:
                    high = consumer.highwater(tp)
                    if high is not None and await consumer.position(tp) >= high:
                        watermarks[tp.partition] = high
    finally:
        await consumer.stop()
    return read, watermarks


def test_every_acknowledged_record_survives_a_broker_kill_9_and_restart(
    durable: DurableBroker,
) -> None:
    asyncio.run(_create_topic(durable.bootstrap))
    acknowledged = asyncio.run(_produce(durable.bootstrap, 0, RECORDS))
    assert sum(len(offsets) for offsets in acknowledged.values()) == RECORDS

    killed = durable.crash_and_restart()
    assert durable.broker.pid != killed

    read, watermarks = asyncio.run(_read_to_high_watermark(durable.bootstrap))
    for partition, offsets in acknowledged.items():
        assert read[partition] == offsets, f"partition {partition} lost acknowledged records"
        assert watermarks[partition] == max(offsets) + 1


def test_the_restarted_broker_appends_after_what_it_had_and_survives_a_second_crash(
    durable: DurableBroker,
) -> None:
    asyncio.run(_create_topic(durable.bootstrap))
    before = asyncio.run(_produce(durable.bootstrap, 0, RECORDS // 2))
    durable.crash_and_restart()
    after = asyncio.run(_produce(durable.bootstrap, RECORDS // 2, RECORDS // 2))
    durable.crash_and_restart()

    read, _ = asyncio.run(_read_to_high_watermark(durable.bootstrap))
    for partition in range(PARTITIONS):
        expected = {**before.get(partition, {}), **after.get(partition, {})}
        # No offset handed out twice: the second run's records follow the first run's.
        assert len(expected) == len(before.get(partition, {})) + len(after.get(partition, {}))
        assert read[partition] == expected


def test_every_acknowledged_record_survives_a_kill_9_of_the_object_store_and_the_broker(
    durable: DurableBroker,
) -> None:
    asyncio.run(_create_topic(durable.bootstrap))
    acknowledged = asyncio.run(_produce(durable.bootstrap, 0, RECORDS))

    durable.crash_everything_and_restart()

    read, _ = asyncio.run(_read_to_high_watermark(durable.bootstrap))
    for partition, offsets in acknowledged.items():
        assert read[partition] == offsets, f"partition {partition} lost acknowledged records"
