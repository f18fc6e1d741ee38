"""Rebuilding the attribution worker's state from its input topics.

For a worker that stopped partitions because their state no longer matches the
input log (see divergence.py). With every worker of the group stopped, this
deletes the stages' changelog topics and the consumer group (its committed
offsets), and writes a new state epoch. The workers, started again, find no state
and no offsets (a local store of an earlier epoch is emptied) and read every input
topic from its start, deciding everything again.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import for_code
from aiokafka.protocol.admin import DeleteGroupsRequest

from afflux.attribution.faust_bridge import send_admin_request
from afflux.shared.io.kafka import new_producer, retrying
from afflux.shared.io.whatif_source import read_to_end
from afflux.shared.topics import CLICKS, CONVERSIONS, ORDERS, REFUNDS, UNMATCHED

GROUP_ID_NOT_FOUND = 69
# COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR: ask again
COORDINATOR_MOVING = (14, 15, 16)
NON_EMPTY_GROUP = 68


class GroupStillActive(Exception):
    """The group has members: a worker is still running."""


@dataclass(frozen=True)
class Rebuilt:
    topics_deleted: list[str]
    group_deleted: bool
    epoch: str = ""


def epoch_topic(group: str) -> str:
    """One record per rebuild: the state epoch (``store.StateEpoch``) workers compare their
    local stores with."""
    return f"{group}-state-epoch"


def changelogs_of(group: str) -> list[str]:
    """The stages' changelog topics (the names Runtime gives them)."""
    return [f"{group}-join-state", f"{group}-refund-state"]


# What the worker's group commits offsets of (its stages' inputs).
WORKER_INPUTS = (CLICKS.name, ORDERS.name, REFUNDS.name, CONVERSIONS.name, UNMATCHED.name)


async def clear_state(
    bootstrap: str, group: str, wait_s: float = 5.0, inputs: Sequence[str] = WORKER_INPUTS
) -> Rebuilt:
    """Delete the group (refused while a worker runs) and the changelogs, and begin a
    new state epoch. ``wait_s``: how long to watch the deleted group for commits of
    ``inputs``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        for _ in range(20):  # a fresh Kafka moves or loads its coordinators at first
            coordinator = await retrying(lambda: admin.find_coordinator(group))
            request = DeleteGroupsRequest([group])
            response = await send_admin_request(admin, request, coordinator)
            [(_, code)] = [(name, code) for name, code in response.results if name == group]
            if code not in COORDINATOR_MOVING:
                break
            await asyncio.sleep(0.5)
        if code == NON_EMPTY_GROUP:
            raise GroupStillActive(
                f"consumer group {group} still has members: stop every worker; nothing was deleted"
            )
        if code not in (0, GROUP_ID_NOT_FOUND):
            raise for_code(code)(f"deleting consumer group {group}")
        existing = set(await admin.list_topics())
        doomed = [t for t in changelogs_of(group) if t in existing]
        if doomed:
            await admin.delete_topics(doomed)
        if epoch_topic(group) not in existing:
            config = {"cleanup.policy": "compact"}
            await admin.create_topics([NewTopic(epoch_topic(group), 1, 1, topic_configs=config)])
        # The embedded broker deletes a group that has members (DeleteGroups answers 0,
        # not NON_EMPTY_GROUP) and lists members long gone: a worker still running shows
        # only by committing again. Unnoticed, its next restart found those offsets and
        # no changelog, and visitors' clicks were missing (2026-12-07).
        described = await admin.describe_topics([t for t in inputs if t in existing])
        tps = [
            TopicPartition(str(d["topic"]), int(p["partition"]))
            for d in described
            for p in d.get("partitions") or ()
        ]
        deadline = asyncio.get_running_loop().time() + wait_s
        while tps and asyncio.get_running_loop().time() < deadline:
            if await _committed_any(admin, group, tps):
                raise GroupStillActive(
                    f"a worker of consumer group {group} is still running: it committed"
                    " offsets after the group was deleted. The group and the changelogs"
                    " were deleted, no new state epoch was begun: stop every worker, then"
                    " run afflux attribution rebuild again"
                )
            await asyncio.sleep(0.5)
    finally:
        await admin.close()
    epoch = uuid.uuid4().hex
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(epoch_topic(group), epoch.encode(), key=b"epoch")
    finally:
        await producer.stop()
    return Rebuilt(doomed, code == 0, epoch)


async def _committed_any(admin: AIOKafkaAdminClient, group: str, tps: list[TopicPartition]) -> bool:
    found = await admin.list_consumer_group_offsets(group, partitions=tps)
    return any(meta.offset >= 0 for meta in found.values())


async def read_epoch(bootstrap: str, group: str, timeout_s: float = 30.0) -> str:
    """The group's state epoch: the last one ``clear_state`` wrote ("" before any)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        if epoch_topic(group) not in set(await admin.list_topics()):
            return ""
    finally:
        await admin.close()
    found: list[bytes | None] = []
    deadline = asyncio.get_running_loop().time() + timeout_s
    await read_to_end(bootstrap, (epoch_topic(group),), found.append, deadline=deadline)
    last = next((value for value in reversed(found) if value), b"")
    return last.decode()
