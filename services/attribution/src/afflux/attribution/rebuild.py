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
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import for_code
from aiokafka.protocol.admin import DeleteGroupsRequest

from afflux.attribution.faust_bridge import send_admin_request
from afflux.shared.io.kafka import new_producer, retrying
from afflux.shared.io.whatif_source import read_to_end

GROUP_ID_NOT_FOUND = 69
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


async def clear_state(bootstrap: str, group: str) -> Rebuilt:
    """Delete the group (first: refused while a worker runs) and the changelogs."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        coordinator = await retrying(lambda: admin.find_coordinator(group))
        # Asked first: the embedded broker deletes a group that has members (DeleteGroups
        # answers 0, not NON_EMPTY_GROUP), and a running worker then lost its changelogs.
        members = await _members(admin, group, coordinator)
        if members:
            raise GroupStillActive(
                f"consumer group {group} still has members ({members}): stop every worker"
            )
        response = await send_admin_request(admin, DeleteGroupsRequest([group]), coordinator)
        [(_, code)] = [(name, code) for name, code in response.results if name == group]
        if code == NON_EMPTY_GROUP:
            raise GroupStillActive(f"consumer group {group} still has members: stop every worker")
        if code not in (0, GROUP_ID_NOT_FOUND):
            raise for_code(code)(f"deleting consumer group {group}")
        existing = set(await admin.list_topics())
        doomed = [t for t in changelogs_of(group) if t in existing]
        if doomed:
            await admin.delete_topics(doomed)
        if epoch_topic(group) not in existing:
            config = {"cleanup.policy": "compact"}
            await admin.create_topics([NewTopic(epoch_topic(group), 1, 1, topic_configs=config)])
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


async def _members(admin: AIOKafkaAdminClient, group: str, coordinator: int) -> int:
    """How many members the group has now (0 for no such group)."""
    described = await admin.describe_consumer_groups([group], group_coordinator_id=coordinator)
    count = 0
    for response in described:
        for found in response.groups:
            error_code, group_id, members = found[0], found[1], found[5]
            if group_id == group and error_code == 0:
                count += len(members)
    return count


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
