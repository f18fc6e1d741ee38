"""Rebuilding the attribution worker's state from its input topics.

For a worker that stopped partitions because their state no longer matches the
input log (see divergence.py). With every worker of the group stopped, this
deletes the stages' changelog topics and the consumer group (its committed
offsets). The workers, started again, find no state and no offsets and read
every input topic from its start, deciding everything again.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import for_code
from aiokafka.protocol.admin import DeleteGroupsRequest

from afflux.attribution.faust_bridge import send_admin_request
from afflux.shared.io.kafka import retrying

GROUP_ID_NOT_FOUND = 69
NON_EMPTY_GROUP = 68


class GroupStillActive(Exception):
    """The group has members: a worker is still running."""


@dataclass(frozen=True)
class Rebuilt:
    topics_deleted: list[str]
    group_deleted: bool


def changelogs_of(group: str) -> list[str]:
    """The stages' changelog topics (the names Runtime gives them)."""
    return [f"{group}-join-state", f"{group}-refund-state"]


async def clear_state(bootstrap: str, group: str) -> Rebuilt:
    """Delete the group (first: refused while a worker runs) and the changelogs."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        coordinator = await retrying(lambda: admin.find_coordinator(group))
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
        return Rebuilt(doomed, code == 0)
    finally:
        await admin.close()
