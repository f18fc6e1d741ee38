"""A partition revoked while its batch or tick waits for the outputs' acknowledgements
writes none of that state to the changelog: the changelog is the new owner's by then,
and keys written after its recovery read would come back at the next one over what
it wrote. The outputs themselves still go out (the new owner makes the same again)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from recording_runtime import ten_percent_sale
from test_decision_isolation import GRACE_MS, order

from afflux.attribution.join import JoinPartition
from afflux.attribution.metrics import AttributionMetrics
from afflux.attribution.runtime import Runtime
from afflux.attribution.stage import Owned, Transport
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.topics import UNMATCHED

pytestmark = pytest.mark.unit

DAY = 86_400_000


def run_tick(revoke: bool) -> list[str]:
    """The topics a tick sent to, deciding one order, the partition revoked (or not)
    while the order's outcome waits for its acknowledgement."""
    sent: list[str] = []

    async def run() -> None:
        acked: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def send(topic: str, key: bytes | None, value: bytes | None, p: int | None) -> Any:
            sent.append(topic)
            if topic == UNMATCHED.name:
                return acked  # the broker has not answered yet
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done

        runtime = Runtime(
            transport=Transport(send),
            bootstrap="127.0.0.1:1",
            group="revoked",
            directory=CampaignDirectory(),
            metrics=AttributionMetrics(),
            refund_wait_ms=0,
            order_retention_ms=DAY,
        )
        runtime.campaigns.terms = lambda campaign, at: ten_percent_sale(campaign)  # type: ignore[method-assign]
        state = JoinPartition()
        state.order("v0", order("shop", 0, visitor="v0"), arrived=0)
        runtime.join.owned[0] = owned = Owned(state)
        owned.safe_ms = GRACE_MS
        tick = asyncio.ensure_future(runtime.join.tick())
        while UNMATCHED.name not in sent:
            await asyncio.sleep(0)
        if revoke:
            runtime.join.assigned(set())  # the group took partition 0 away meanwhile
        acked.set_result(None)
        await tick

    asyncio.run(run())
    return sent


def test_a_tick_writes_its_partitions_state_once_its_outputs_are_acknowledged() -> None:
    sent = run_tick(revoke=False)
    assert sent[0] == UNMATCHED.name
    assert "revoked-join-state" in sent[1:]  # the join's changelog in group "revoked"


def test_a_partition_revoked_while_its_outputs_wait_writes_no_changelog() -> None:
    assert run_tick(revoke=True) == [UNMATCHED.name]
