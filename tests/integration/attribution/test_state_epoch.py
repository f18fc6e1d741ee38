"""``afflux attribution rebuild`` renews the group's state epoch, which a worker reads
before it opens its local stores: a store of an earlier epoch is emptied
(``store.StateEpoch``), never read on under the recreated changelog."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from afflux.attribution.rebuild import GroupStillActive, clear_state, read_epoch
from afflux.shared.topics import CLICKS

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


async def test_a_rebuild_is_refused_while_the_group_has_a_member(infra: Any) -> None:
    """The embedded broker deletes a group that has members (DeleteGroups answers 0, not
    NON_EMPTY_GROUP): the rebuild then wiped a running worker's changelogs, and clicks
    were missing after its next restart. The members are asked for first."""
    group = f"epoch-live-{uuid.uuid4().hex[:8]}"
    member = AIOKafkaConsumer(CLICKS.name, bootstrap_servers=infra.kafka_bootstrap, group_id=group)
    await member.start()
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while not member.assignment():  # joined and assigned
            assert asyncio.get_running_loop().time() < deadline, "never joined its group"
            await member.getmany(timeout_ms=200)

        with pytest.raises(GroupStillActive, match="still has members"):
            await clear_state(infra.kafka_bootstrap, group)

        assert await read_epoch(infra.kafka_bootstrap, group) == ""  # nothing was cleared
    finally:
        await member.stop()
