"""Records the consumer skips on a partition the worker keeps are read back, in order,
before the record that revealed the jump (see afflux.attribution.gaps)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from afflux.attribution.changelog import ensure_changelogs
from afflux.attribution.gaps import read_range
from afflux.attribution.metrics import AttributionMetrics
from afflux.attribution.runtime import Runtime
from afflux.attribution.stage import CATCH_UP_AFTER_MS, POSITION_KEY, Transport
from afflux.bench.feed import partition_of
from afflux.shared.events import ClickRecorded
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.kafka import new_producer
from afflux.shared.topics import CLICKS
from afflux.shared.wire import encode

pytestmark = [pytest.mark.integration, pytest.mark.kafka_conformance]

VISITOR = "v-skipped"
PARTITIONS = 4


def click(n: int, visitor: str = VISITOR) -> ClickRecorded:
    return ClickRecorded(
        event_id=f"click-{visitor}-{n}",
        occurred_at=1_700_000_000_000 + n,
        click_id=f"skip-{n}",
        link_code="skipcode",
        affiliate_id="creator-skip",
        campaign_id="skip-campaign",
        visitor_id=visitor,
    )


async def produce_six_clicks(producer: Any, visitor: str, partition: int) -> None:
    for n in range(6):
        await producer.send_and_wait(
            CLICKS.name, encode(click(n, visitor)), key=visitor.encode(), partition=partition
        )


def join_runtime(
    bootstrap: str, visitor: str, transport: Transport, clock: Callable[[], int] | None = None
) -> Runtime:
    return Runtime(
        transport=transport,
        bootstrap=bootstrap,
        group=f"skip-test-{visitor}",
        directory=CampaignDirectory(),
        metrics=AttributionMetrics(),
        refund_wait_ms=0,
        order_retention_ms=1,
        **({"clock": clock} if clock is not None else {}),
    )


async def scenario(
    bootstrap: str,
    delivered: tuple[int, ...] = (0, 5),
    visitor: str = VISITOR,
    read_back_bytes: int | None = None,
    changelog: list[tuple[bytes | None, bytes | None]] | None = None,
) -> tuple[Runtime, set[str]]:
    """Six clicks of ``visitor``, the only records of its partition; the worker is handed
    those at the positions ``delivered``, reading back a fetch of ``read_back_bytes`` at
    a time; what it writes to the join's changelog goes to ``changelog``."""
    partition = partition_of(visitor, PARTITIONS)
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        await produce_six_clicks(producer, visitor, partition)

        async def send(topic: str, key: bytes | None, value: bytes | None, p: int | None) -> Any:
            if changelog is not None and topic == runtime.join.changelog:
                changelog.append((key, value))
            return await producer.send(topic, value, key=key, partition=p)

        runtime = join_runtime(bootstrap, visitor, Transport(send))
        if read_back_bytes is not None:
            runtime.join.read_back_bytes = read_back_bytes
        await ensure_changelogs(bootstrap, runtime.changelogs, PARTITIONS)
        runtime.assigned({(CLICKS.name, partition)})
        records = await read_range(bootstrap, CLICKS.name, partition, 0, 6)
        ours = [r for r in records if r.key == visitor.encode()]
        for n in delivered:  # the others were skipped
            await runtime.join.handle(ours[n])
        owned = runtime.join.owned[partition]
        return runtime, set(owned.state.keys[visitor].clicks)
    finally:
        await producer.stop()


def test_records_skipped_between_two_delivered_ones_are_read_back(
    private_broker: tuple[str, Path],
) -> None:
    bootstrap, _ = private_broker
    runtime, clicks = asyncio.run(scenario(bootstrap))
    assert clicks == {f"skip-{n}" for n in range(6)}
    assert runtime.metrics.refetched._value.get() == 4


def test_records_skipped_before_the_first_one_delivered_are_read_back(
    private_broker: tuple[str, Path],
) -> None:
    """A partition that has processed nothing of a topic yet (kept through a rebalance
    that came before its first record) reads back what the consumer dropped before the
    first record it hands out."""
    bootstrap, _ = private_broker
    # Its own partition: v-skipped's is 2, this one's 0.
    runtime, clicks = asyncio.run(scenario(bootstrap, delivered=(5,), visitor="v-skipped-first"))
    assert clicks == {f"skip-{n}" for n in range(6)}
    assert runtime.metrics.refetched._value.get() == 5


def test_a_long_read_back_is_applied_and_written_a_fetch_at_a_time(
    private_broker: tuple[str, Path],
) -> None:
    """A state with no position on a long log reads the whole log back: never held
    whole, each fetch is applied and what came before it written (its position with
    it, after its outputs) before the next is read. Here every fetch holds one record."""
    bootstrap, _ = private_broker
    changelog: list[tuple[bytes | None, bytes | None]] = []
    runtime, clicks = asyncio.run(
        scenario(
            bootstrap,
            delivered=(5,),
            visitor="v-long-read-back",
            read_back_bytes=1,
            changelog=changelog,
        )
    )
    assert clicks == {f"skip-{n}" for n in range(6)}
    assert runtime.metrics.refetched._value.get() == 5
    positions = [
        json.loads(value)[CLICKS.name][0]
        for key, value in changelog
        if key == POSITION_KEY.encode() and value is not None
    ]
    # Written after each fetch but the last, then with the delivered record.
    assert positions == [0, 1, 2, 3, 5]


class Clock:
    now = 1_800_000_000_000

    def __call__(self) -> int:
        return self.now


async def never_handed_out(bootstrap: str, visitor: str) -> dict[str, Any]:
    """Six clicks of ``visitor``; the consumer hands out the first two only, and no later
    record comes to reveal the jump. What the join holds before and after its partition
    stood still behind its high watermark for ``CATCH_UP_AFTER_MS``, and after the
    consumer handed out the rest after all."""
    partition = partition_of(visitor, PARTITIONS)
    clock = Clock()
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        await produce_six_clicks(producer, visitor, partition)

        async def send(topic: str, key: bytes | None, value: bytes | None, p: int | None) -> Any:
            return await producer.send(topic, value, key=key, partition=p)

        def highwater(topic: str, p: int) -> tuple[int, int]:
            return (6 if (topic, p) == (CLICKS.name, partition) else 0, clock.now)

        runtime = join_runtime(bootstrap, visitor, Transport(send, highwater=highwater), clock)
        await ensure_changelogs(bootstrap, runtime.changelogs, PARTITIONS)
        runtime.assigned({(CLICKS.name, partition)})
        records = await read_range(bootstrap, CLICKS.name, partition, 0, 6)
        ours = [r for r in records if r.key == visitor.encode()]
        for record in ours[:2]:
            await runtime.join.handle(record)
        owned = runtime.join.owned[partition]

        def clicks() -> set[str]:
            return set(owned.state.keys[visitor].clicks)

        found: dict[str, Any] = {}
        await runtime.tick()
        clock.now += CATCH_UP_AFTER_MS - 1
        await runtime.tick()
        found["just_before"] = (clicks(), owned.safe_ms)
        clock.now += 1
        await runtime.tick()  # reads back, then treats the offsets as processed
        await runtime.tick()  # the next note finds the partition caught up
        found["after"] = (clicks(), owned.safe_ms, runtime.metrics.refetched._value.get())
        for record in ours[2:]:  # handed out late after all: already processed
            await runtime.join.handle(record)
        found["handed_late"] = (clicks(), runtime.metrics.refetched._value.get())
        found["consumed"] = owned.consumed[CLICKS.name]
        found["now"] = clock.now
        return found
    finally:
        await producer.stop()


def test_records_never_handed_out_and_never_followed_are_read_back_after_a_pause(
    private_broker: tuple[str, Path],
) -> None:
    """The consumer may drop a partition's last records at a rebalance with none after
    them to reveal the jump; the stage reads them back itself once the partition has
    stood behind its high watermark without progress for ``CATCH_UP_AFTER_MS``, and
    its safe time moves again."""
    bootstrap, _ = private_broker
    found = asyncio.run(never_handed_out(bootstrap, "v-never-handed-out"))
    first_two = {"skip-0", "skip-1"}
    all_six = {f"skip-{n}" for n in range(6)}
    clicks, safe = found["just_before"]
    assert clicks == first_two
    assert safe == 0  # held: offsets 2..5 are below the high watermark
    clicks, safe, refetched = found["after"]
    assert clicks == all_six
    assert refetched == 4
    assert safe > 0
    assert found["handed_late"] == (all_six, 4)
    assert found["consumed"] == 6
