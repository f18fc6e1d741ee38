"""From the revocation that starts a rebalance to the assignment that ends it, a worker
leaves the revoked partitions alone: no decision, no read-back, no changelog write.

The group may assign a partition to another worker, which recovers it at once, seconds
before this worker hears of the assignment (under load). A tick or a read-back here
meanwhile wrote keys after that recovery read; the next recovery took them over what the
other worker wrote since, and a click it had applied (its offset committed) was lost
with the order it won (CI, the fault test that adds and removes a worker: an order left
unattributed that the oracle gave to a creator's cookie)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from recording_runtime import Sent, recording_runtime, ten_percent_sale
from test_decision_isolation import GRACE_MS, order

import afflux.attribution.stage as stage_module
from afflux.attribution.join import JoinPartition
from afflux.attribution.runtime import Runtime
from afflux.attribution.stage import CATCH_UP_AFTER_MS, Owned, Stage
from afflux.shared.topics import UNMATCHED

pytestmark = pytest.mark.unit


class Clock:
    now = 1_000_000

    def __call__(self) -> int:
        return self.now


def runtime_with_due_order(sent: Sent) -> tuple[Runtime, Owned[JoinPartition]]:
    """A join whose partition 0 holds one order past its grace (safe time beyond it)."""
    runtime = recording_runtime(sent, ten_percent_sale("shop"), "revoked-idle")
    state = JoinPartition()
    state.order("v0", order("shop", 0, visitor="v0"), arrived=0)
    owned = runtime.join.owned[0] = Owned(state)
    owned.safe_ms = GRACE_MS
    return runtime, owned


def check_nothing(stage: Stage[JoinPartition]) -> None:
    """The check against the input logs at assignment, without a broker: all matches."""

    async def no_problems(candidates: object) -> dict[int, str]:
        return {}

    stage._diverged = no_problems  # type: ignore[method-assign]


def test_a_revoked_partition_decides_nothing_until_it_is_assigned_again() -> None:
    sent: Sent = []

    async def run() -> None:
        runtime, owned = runtime_with_due_order(sent)
        runtime.revoked({("orders", 0), ("clicks", 0), ("refunds", 0)})
        await runtime.join.tick()
        assert sent == []

        check_nothing(runtime.join)
        runtime.assigned({("orders", 0), ("clicks", 0)})
        assert await runtime.join.partition(0) is owned  # its memory kept, not recovered
        await runtime.join.tick()

    asyncio.run(run())
    topics = [topic for topic, _ in sent]
    assert topics[0] == UNMATCHED.name
    assert "revoked-idle-join-state" in topics[1:]


def test_a_revoked_partition_the_assignment_gives_elsewhere_is_dropped() -> None:
    async def run() -> None:
        runtime, _ = runtime_with_due_order([])
        runtime.join.owned[1] = Owned(JoinPartition())
        runtime.revoked({("orders", 0), ("orders", 1)})
        check_nothing(runtime.join)
        runtime.assigned({("orders", 1)})
        assert await runtime.join.partition(0) is None
        assert await runtime.join.partition(1) is not None
        assert runtime.join.parked == {}

    asyncio.run(run())


@pytest.mark.parametrize("revoked", [False, True])
def test_a_revoked_partition_left_behind_its_high_watermark_is_not_read_back(
    monkeypatch: pytest.MonkeyPatch, revoked: bool
) -> None:
    reads: list[tuple[str, int, int, int]] = []

    async def read_chunks(
        bootstrap: str, topic: str, p: int, start: int, end: int, max_bytes: int
    ) -> AsyncIterator[list[object]]:
        reads.append((topic, p, start, end))
        return
        yield []

    monkeypatch.setattr(stage_module, "read_chunks", read_chunks)
    clock = Clock()
    stage = recording_runtime([], ten_percent_sale(), "revoked-read", clock=clock).join
    stage.owned[0] = Owned(stage.new_state())
    # A rebalance stops the fetches: five records wait below the high watermark.
    stage.transport = replace(stage.transport, highwater=lambda t, p: (5, clock.now))

    async def run() -> None:
        stage.note()
        clock.now += CATCH_UP_AFTER_MS
        if revoked:
            stage.revoked({0})
        stage.note()
        await stage.catch_up()

    asyncio.run(run())
    assert reads == ([] if revoked else [(topic, 0, 0, 5) for topic in stage.inputs])


def test_a_failed_partition_is_not_retried_while_the_group_rebalances() -> None:
    monotonic = [100.0]
    loads: list[list[int]] = []

    async def run() -> None:
        runtime, _ = runtime_with_due_order([])
        stage = runtime.join
        stage.monotonic = lambda: monotonic[0]
        check_nothing(stage)
        stage.assigned({0})
        assert await stage.partition(0) is not None
        del stage.owned[0]
        stage._retry_later(0, "a batch failed")

        async def load(partitions: list[int]) -> None:
            loads.append(partitions)

        stage._load = load  # type: ignore[method-assign]
        stage.revoked({0})
        monotonic[0] += 60
        await stage.retry_failed()
        assert loads == []
        stage.assigned({0})  # given back: retried as before the rebalance
        await stage.retry_failed()
        assert loads == [[0]]

    asyncio.run(run())


def test_a_stopping_worker_lets_go_of_every_partition_before_its_consumer_leaves() -> None:
    sent: Sent = []

    async def run() -> None:
        runtime, _ = runtime_with_due_order(sent)
        runtime.release_all()
        await runtime.tick()
        assert runtime.join.owned == {}
        assert runtime.refunds.owned == {}

    asyncio.run(run())
    assert sent == []
