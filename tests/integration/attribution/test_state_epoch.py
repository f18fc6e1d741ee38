"""``afflux attribution rebuild`` renews the group's state epoch, which a worker reads
before it opens its local stores: a store of an earlier epoch is emptied
(``store.StateEpoch``), never read on under the recreated changelog."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from afflux.attribution.rebuild import GroupStillActive, clear_state, read_epoch
from afflux.shared.io.kafka import new_producer

pytestmark = pytest.mark.integration


async def test_each_rebuild_writes_a_new_epoch_and_a_group_never_rebuilt_has_none(
    infra: Any,
) -> None:
    group = f"epoch-{uuid.uuid4().hex[:8]}"
    assert await read_epoch(infra.kafka_bootstrap, group) == ""

    first = await clear_state(infra.kafka_bootstrap, group)
    read_first = await read_epoch(infra.kafka_bootstrap, group)
    second = await clear_state(infra.kafka_bootstrap, group)

    assert first.epoch
    assert read_first == first.epoch
    assert second.epoch not in ("", first.epoch)
    assert await read_epoch(infra.kafka_bootstrap, group) == second.epoch
    assert await read_epoch(infra.kafka_bootstrap, f"{group}-other") == ""


async def test_a_rebuild_is_refused_while_a_member_keeps_committing(infra: Any) -> None:
    """The embedded broker deletes a group that has members (DeleteGroups answers 0, not
    NON_EMPTY_GROUP): a rebuild beside a running worker went through, the worker committed
    on, and its next restart found those offsets and no changelog (clicks went missing).
    A member that commits after the deletion is caught and named."""
    group = f"epoch-live-{uuid.uuid4().hex[:8]}"
    topic = f"epoch-input-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()
    producer = new_producer(infra.kafka_bootstrap)
    await producer.start()
    member = AIOKafkaConsumer(
        topic,
        bootstrap_servers=infra.kafka_bootstrap,
        group_id=group,
        enable_auto_commit=True,
        auto_commit_interval_ms=200,
        auto_offset_reset="earliest",
    )
    await member.start()
    stop = asyncio.Event()

    async def work() -> None:  # a worker: reads and commits as records come
        n = 0
        while not stop.is_set():
            await producer.send_and_wait(topic, b"%d" % n)
            n += 1
            await member.getmany(timeout_ms=100)

    working = asyncio.create_task(work())
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while not await _committed(infra.kafka_bootstrap, group, topic):
            assert asyncio.get_running_loop().time() < deadline, "the member never committed"
            await asyncio.sleep(0.2)

        with pytest.raises(GroupStillActive, match="still"):
            await clear_state(infra.kafka_bootstrap, group, inputs=[topic])

        assert await read_epoch(infra.kafka_bootstrap, group) == ""  # no new epoch begun
    finally:
        stop.set()
        await working
        await member.stop()
        await producer.stop()


async def _committed(bootstrap: str, group: str, topic: str) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        tp = TopicPartition(topic, 0)
        found = await admin.list_consumer_group_offsets(group, partitions=[tp])
    finally:
        await admin.close()
    return any(meta.offset >= 0 for meta in found.values())
