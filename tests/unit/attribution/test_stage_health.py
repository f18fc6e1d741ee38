"""/healthz answers 503, naming why, when a stage no longer turns: its agent died, a batch
of its raised (a send refused for good: its partitions stop and nothing of them is
written after), or input waits while no batch was written for ``STALL_S``. The monotonic
clock is injected: nothing here sleeps."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from faust.exceptions import ProducerSendError
from recording_runtime import Sent, recording_runtime, ten_percent_sale
from test_decision_isolation import click

from afflux.attribution.app import _watched
from afflux.attribution.runtime import RESTART, RETRYING, STALL_S, Runtime
from afflux.attribution.stage import RETRY_FIRST_S, RETRY_MAX_S, Owned, Record
from afflux.attribution.store import DiskStores
from afflux.shared.topics import CLICKS, DLQ, ORDERS
from afflux.shared.wire import encode

pytestmark = pytest.mark.unit

TOO_LARGE = "MessageSizeTooLargeError('The message is 445 bytes when serialized')"


class Monotonic:
    now = 5_000.0

    def __call__(self) -> float:
        return self.now


def ready_runtime(
    sent: Sent,
    clock: Monotonic,
    highs: dict[tuple[str, int], int],
    refuse: str = "",
    paused: set[tuple[str, int]] | None = None,
) -> Runtime:
    """A worker whose join owns partition 0 and is otherwise ready; ``highs``: the input
    partitions' fetch high watermarks; a send to ``refuse`` raises as Faust's producer
    does when aiokafka refuses a record; ``paused``: the partitions paused."""
    runtime = recording_runtime(sent, ten_percent_sale(), "health", monotonic=clock)
    stage = runtime.join
    recording = stage.transport.send

    async def send(topic: str, key: bytes | None, value: bytes | None, p: int | None) -> Any:
        if topic == refuse:
            raise ProducerSendError(f"Error while sending: {TOO_LARGE}")
        return await recording(topic, key, value, p)

    stage.transport = replace(
        stage.transport,
        send=send,
        highwater=lambda t, p: (highs[(t, p)], 0) if (t, p) in highs else None,
        pause=(paused if paused is not None else set()).update,
    )
    runtime.directory.ready.set()
    runtime.assigned_once = True
    stage.owned[0] = Owned(stage.new_state(None))
    return runtime


def click_record(offset: int) -> Record:
    value = encode(click("camp", 1_000 + offset, visitor=f"v{offset}"))
    return Record(CLICKS.name, 0, offset, f"v{offset}".encode(), value, 1_000 + offset)


def garbage_record(offset: int) -> Record:
    return Record(CLICKS.name, 0, offset, b"x", b"not json", 1_000 + offset)


def test_a_ready_worker_is_healthy() -> None:
    ok, body = ready_runtime([], Monotonic(), {(CLICKS.name, 0): 0}).health()
    assert ok
    assert body["status"] == "ok"
    assert body["problems"] == []


@pytest.mark.parametrize("progress", ["a batch of records", "a tick"])
def test_input_waiting_with_no_batch_for_longer_than_the_bound_is_a_stall(progress: str) -> None:
    clock = Monotonic()
    runtime = ready_runtime([], clock, {(CLICKS.name, 0): 3})

    clock.now += STALL_S
    assert runtime.health()[0]  # at the bound: not yet

    clock.now += 1
    ok, body = runtime.health()
    assert not ok
    assert body["status"] == "stalled"
    assert body["problems"] == [
        f"stalled: join stage has not finished a batch for {STALL_S + 1:.0f} s"
        " (3 input records waiting)"
    ]

    if progress == "a tick":
        asyncio.run(runtime.join.tick())
    else:
        asyncio.run(runtime.join.handle_many([click_record(0)]))
    ok, body = runtime.health()
    assert ok
    assert body["status"] == "ok"


def test_a_stage_with_nothing_waiting_is_never_stalled() -> None:
    clock = Monotonic()
    runtime = ready_runtime([], clock, {(CLICKS.name, 0): 0, (ORDERS.name, 0): 0})
    clock.now += 10 * STALL_S
    assert runtime.health()[0]


def test_a_failed_batch_stops_its_partition_says_so_and_writes_nothing_of_it_after() -> None:
    sent: Sent = []
    clock = Monotonic()
    paused: set[tuple[str, int]] = set()
    runtime = ready_runtime(sent, clock, {(CLICKS.name, 0): 2}, refuse=DLQ.name, paused=paused)
    stage = runtime.join

    async def scenario() -> tuple[list[bool], list[bool]]:
        # The click changes the state; the garbage's dead letter cannot be sent. The batch
        # is held, not raised: the agent goes on with the stage's other partitions.
        failed = await stage.handle_many([click_record(0), garbage_record(1)])
        await runtime.tick()
        return failed, await stage.handle_many([click_record(2)])

    failed, later = asyncio.run(scenario())

    # Neither the batch's state nor its position went to the changelog, then or at the
    # tick: written, they would claim a dead letter that never went out.
    assert [topic for topic, _ in sent if topic == stage.changelog] == []
    assert failed == [False, False]  # held unacknowledged until the retry reads them again
    assert later == [False]
    assert paused == {(CLICKS.name, 0), (ORDERS.name, 0)}
    assert 0 not in stage.owned
    ok, body = runtime.health()
    assert not ok
    assert body["status"] == "failed"
    assert body["problems"] == [
        f'join[0] stopped: a batch failed: ProducerSendError("Error while sending: {TOO_LARGE}")'
        f"; retried in {RETRY_FIRST_S:.0f} s (failure 1 in a row)"
    ]
    assert body["recovery"] == RETRYING
    assert body["join_partitions"] == []
    assert stage.retry_at[0] == clock.now + RETRY_FIRST_S
    assert runtime.dead == {}

    runtime.assigned({(CLICKS.name, 0), (ORDERS.name, 0)})  # a rebalance keeps it
    assert 0 not in stage.loading  # recovered only by its retry, once the back-off passed
    assert 0 not in stage.owned
    assert 0 in stage.failed
    runtime.assigned(set())  # given away: its new owner's
    assert stage.failed == {}
    assert stage.retry_at == {}


def test_failures_in_a_row_back_off_doubling_up_to_the_cap() -> None:
    clock = Monotonic()
    runtime = ready_runtime([], clock, {(CLICKS.name, 0): 1}, refuse=DLQ.name)
    stage = runtime.join
    stage.assignment = {0}
    waits = []
    for _ in range(8):
        stage._retry_later(0, "a batch failed")
        waits.append(stage.retry_at[0] - clock.now)
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, RETRY_MAX_S, RETRY_MAX_S, RETRY_MAX_S]
    assert stage.failed[0] == f"a batch failed; retried in {RETRY_MAX_S:.0f} s (failure 8 in a row)"

    async def written() -> None:  # a batch of the partition written: the count starts over
        stage.owned[0] = Owned(stage.new_state(None))
        await stage.handle_many([click_record(0)])

    asyncio.run(written())
    assert 0 not in stage.attempts


def test_an_agent_that_raised_stays_dead_and_is_reported_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runtime = ready_runtime([], Monotonic(), {})
    app: Any = SimpleNamespace(should_stop=False)

    async def work() -> None:
        raise ProducerSendError(f"Error while sending: {TOO_LARGE}")

    caplog.set_level(logging.ERROR)
    asyncio.run(_watched(app, runtime, "join", work()))  # not raised on: Faust restarts those

    ok, body = runtime.health()
    assert not ok
    assert body["status"] == "failed"
    assert body["problems"] == [
        f'join agent died: ProducerSendError("Error while sending: {TOO_LARGE}")'
    ]
    assert body["recovery"] == RESTART
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "the join agent died" in record.getMessage()
    assert record.exc_info is not None
    assert record.exc_info[0] is ProducerSendError


def test_an_agent_whose_stream_ends_while_the_worker_runs_is_reported() -> None:
    runtime = ready_runtime([], Monotonic(), {})

    async def work() -> None:
        return None

    asyncio.run(_watched(SimpleNamespace(should_stop=False), runtime, "refunds", work()))  # type: ignore[arg-type]
    assert runtime.health()[1]["problems"] == ["refunds agent died: its stream ended"]


@pytest.mark.parametrize("how", ["cancelled", "stopping"])
def test_an_agent_ended_by_the_worker_stopping_is_not_reported(how: str) -> None:
    runtime = ready_runtime([], Monotonic(), {})

    async def work() -> None:
        if how == "cancelled":
            raise asyncio.CancelledError

    app: Any = SimpleNamespace(should_stop=how == "stopping")
    if how == "cancelled":
        with pytest.raises(asyncio.CancelledError):
            asyncio.run(_watched(app, runtime, "join", work()))
    else:
        asyncio.run(_watched(app, runtime, "join", work()))
    assert runtime.health()[0]


def test_a_tick_that_fails_stops_its_partition_and_the_timer_goes_on() -> None:
    sent: Sent = []
    clock = Monotonic()
    runtime = ready_runtime(sent, clock, {(CLICKS.name, 0): 1})
    stage = runtime.join
    stage.assignment = {0}

    async def scenario() -> None:
        await stage.handle_many([click_record(0)])
        changelog = stage.changelog
        recording = stage.transport.send

        async def refused(topic: str, key: bytes | None, value: bytes | None, p: int | None) -> Any:
            if topic == changelog:
                raise ProducerSendError(f"Error while sending: {TOO_LARGE}")
            return await recording(topic, key, value, p)

        stage.transport = replace(stage.transport, send=refused)
        stage.owned[0].state.dirty.add("v-never-written")  # the tick has a key to write
        await runtime.tick()  # not raised: the timer would end with it

    asyncio.run(scenario())
    assert 0 not in stage.owned
    assert stage.failed[0].startswith("a batch failed: ProducerSendError")
    assert runtime.health()[1]["status"] == "failed"


def test_a_checkpoint_whose_changelog_write_failed_stops_its_partition_and_the_timer_goes_on(
    tmp_path: Path,
) -> None:
    """On the disk store a changelog record's acknowledgement is awaited at the next
    checkpoint, which a tick takes once changes stopped: a write the broker refused raised
    there, out of the timer (Faust then ends the worker), rather than stopping the
    partition for a retry from its changelog as a failed batch does."""
    sent: Sent = []
    clock = Monotonic()
    runtime = ready_runtime(sent, clock, {(CLICKS.name, 0): 0})
    stage = runtime.join
    stage.assignment = {0}
    local = DiskStores(tmp_path, 100).open(0)
    stage.owned[0] = Owned(stage.new_state(local), local=local)

    async def scenario() -> None:
        refused: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        refused.set_exception(ProducerSendError(f"Error while sending: {TOO_LARGE}"))
        local.acks.append(refused)
        assert local.keys is not None
        local.keys.written([("v-written-before", b"{}")])
        local.checkpointed_at = -1e9  # a checkpoint is due
        await runtime.tick()  # not raised: the timer would end with it

    asyncio.run(scenario())
    assert 0 not in stage.owned
    assert stage.failed[0].startswith("a batch failed: ProducerSendError")
    assert runtime.health()[1]["status"] == "failed"


def test_a_prune_that_raises_is_logged_and_the_timer_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Pruning runs in the timer: one partition's failure (a store that cannot be read)
    must not end the timer, and with it the worker, nor keep the other partitions'
    pruning from running."""
    sent: Sent = []
    runtime = ready_runtime(sent, Monotonic(), {(CLICKS.name, 0): 0})
    stage = runtime.join
    stage.owned[1] = Owned(stage.new_state(None))
    pruned: list[int] = []

    def prune(state: Any, safe_ms: int) -> None:
        if state is stage.owned[0].state:
            raise OSError("IO error: the store's file cannot be read")
        pruned.append(1)

    stage.handler.prune = prune  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR):
        asyncio.run(runtime.prune())  # not raised
    assert pruned == [1]
    assert "pruning failed" in caplog.text
