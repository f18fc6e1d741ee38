"""Records the consumer skips on a partition the worker keeps are read back, in order,
before the record that revealed the jump (see afflux.attribution.gaps)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from afflux.attribution.changelog import ensure_changelogs
from afflux.attribution.gaps import read_range
from afflux.attribution.metrics import AttributionMetrics
from afflux.attribution.runtime import Runtime
from afflux.attribution.stage import Transport
from afflux.bench.feed import partition_of
from afflux.shared.events import ClickRecorded
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.kafka import new_producer
from afflux.shared.topics import CLICKS
from afflux.shared.wire import encode

pytestmark = [pytest.mark.integration, pytest.mark.kafka_conformance]

VISITOR = "v-skipped"
PARTITIONS = 4


def click(n: int) -> ClickRecorded:
    return ClickRecorded(
        event_id=f"click-skip-{n}",
        occurred_at=1_700_000_000_000 + n,
        click_id=f"skip-{n}",
        link_code="skipcode",
        affiliate_id="creator-skip",
        campaign_id="skip-campaign",
        visitor_id=VISITOR,
    )


async def scenario(bootstrap: str) -> tuple[Runtime, set[str]]:
    partition = partition_of(VISITOR, PARTITIONS)
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        for n in range(6):
            await producer.send_and_wait(
                CLICKS.name, encode(click(n)), key=VISITOR.encode(), partition=partition
            )

        async def send(topic: str, key: bytes | None, value: bytes | None, p: int | None) -> Any:
            return await producer.send(topic, value, key=key, partition=p)

        runtime = Runtime(
            transport=Transport(send),
            bootstrap=bootstrap,
            group="skip-test",
            directory=CampaignDirectory(),
            metrics=AttributionMetrics(),
            refund_wait_ms=0,
            order_retention_ms=1,
        )
        await ensure_changelogs(bootstrap, runtime.changelogs, PARTITIONS)
        runtime.assigned({(CLICKS.name, partition)})
        records = await read_range(bootstrap, CLICKS.name, partition, 0, 6)
        ours = [r for r in records if r.key == VISITOR.encode()]
        first, last = ours[0], ours[-1]
        # Delivered: the first record, then the last one; the four between were skipped.
        for record in (first, last):
            await runtime.join.handle(record)
        owned = runtime.join.owned[partition]
        return runtime, set(owned.state.keys[VISITOR].clicks)
    finally:
        await producer.stop()


def test_records_skipped_between_two_delivered_ones_are_read_back(
    private_broker: tuple[str, Path],
) -> None:
    bootstrap, _ = private_broker
    runtime, clicks = asyncio.run(scenario(bootstrap))
    assert clicks == {f"skip-{n}" for n in range(6)}
    assert runtime.metrics.refetched._value.get() == 4
