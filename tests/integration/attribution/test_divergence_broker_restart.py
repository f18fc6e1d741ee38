"""A broker on memory storage restarted under a running worker: its log is gone, the
worker's state is not. At the next assignment the worker stops those partitions instead
of mixing the old state with the new log."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from afflux.attribution.changelog import ensure_changelogs
from afflux.attribution.gaps import read_range
from afflux.attribution.metrics import AttributionMetrics
from afflux.attribution.runtime import Runtime
from afflux.attribution.stage import Transport
from afflux.bench.feed import partition_of
from afflux.cli.brokers import BrokerKind, start_chosen_broker
from afflux.cli.processes import free_port
from afflux.shared.events import ClickRecorded
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.kafka import create_topics, new_producer
from afflux.shared.topics import CLICKS, ORDERS
from afflux.shared.wire import encode

pytestmark = pytest.mark.integration

PARTITIONS = 4
VISITOR = "v-restart"


def click(n: int) -> ClickRecorded:
    return ClickRecorded(
        event_id=f"click-restart-{n}",
        occurred_at=1_700_000_000_000 + n,
        click_id=f"restart-{n}",
        link_code="code",
        affiliate_id="creator",
        campaign_id="camp",
        visitor_id=VISITOR,
    )


async def fill(bootstrap: str, clicks: list[ClickRecorded], p: int) -> None:
    await create_topics(bootstrap, PARTITIONS)
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        for c in clicks:
            await producer.send_and_wait(CLICKS.name, encode(c), key=VISITOR.encode(), partition=p)
    finally:
        await producer.stop()


async def consume(runtime: Runtime, bootstrap: str, p: int, count: int) -> None:
    for r in await read_range(bootstrap, CLICKS.name, p, 0, count):
        assert await runtime.join.handle(r)


async def scenario(bootstrap: str, p: int, restart: Callable[[], None]) -> tuple[bool, Runtime]:
    """(the first record of the new log was held, the runtime)."""
    tps = {(CLICKS.name, p), (ORDERS.name, p)}
    await fill(bootstrap, [click(n) for n in range(3)], p)
    producer = new_producer(bootstrap)
    await producer.start()

    async def send(topic: str, key: bytes | None, value: bytes | None, q: int | None) -> Any:
        return await producer.send(topic, value, key=key, partition=q)

    runtime = Runtime(
        transport=Transport(send),
        bootstrap=bootstrap,
        group="restart-test",
        directory=CampaignDirectory(),
        metrics=AttributionMetrics(),
        refund_wait_ms=0,
        order_retention_ms=1,
    )
    try:
        await ensure_changelogs(bootstrap, runtime.changelogs, PARTITIONS)
        runtime.assigned(tps)
        await consume(runtime, bootstrap, p, 3)
        await producer.flush()
        assert runtime.diverged() == []
        restart()  # the log, the changelogs and the group's offsets are gone
        await fill(bootstrap, [click(n) for n in range(10, 15)], p)  # another log
        runtime.assigned(tps)  # the group's next assignment
        assert await runtime.join.partition(p) is None
        [r] = await read_range(bootstrap, CLICKS.name, p, 0, 1)
        held = not await runtime.join.handle(r)
    finally:
        await producer.stop()
    return held, runtime


def test_a_memory_broker_restart_under_a_running_worker_stops_its_partitions(
    tmp_path: Path, broker_kind: BrokerKind
) -> None:
    if broker_kind == "kafka":
        pytest.skip("Apache Kafka keeps its log across a restart: memory storage is Tansu's")
    port = free_port()
    p = partition_of(VISITOR, PARTITIONS)
    brokers = [start_chosen_broker(broker_kind, port, tmp_path)]

    def restart() -> None:
        brokers[-1].stop()
        brokers.append(start_chosen_broker(broker_kind, port, tmp_path))

    try:
        held, runtime = asyncio.run(scenario(f"127.0.0.1:{port}", p, restart))
    finally:
        brokers[-1].stop()
    assert held  # the record of the new log is neither processed nor acknowledged
    [line] = runtime.diverged()
    assert f"clicks[{p}]" in line
    assert "record at offset 2 is not the one" in line
    assert not runtime.ready()
