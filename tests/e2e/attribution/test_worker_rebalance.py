"""A second worker joining and leaving mid-stream: the outputs still equal the
oracle's, event for event, with either state store."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import harness as h
import pytest
from worker_faults import STATE_STORES, chunks, events_processed, worker_env

from afflux.oracle import attribute, generate

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # on Kafka too: STATE_STORES


@pytest.mark.parametrize("store", STATE_STORES)
def test_a_second_worker_joins_and_leaves_mid_stream(
    broker: str, tmp_path: Path, store: str
) -> None:
    scenario = generate(777, visitors=2500, grace_seconds=2, prefix="r")
    asyncio.run(h.publish_campaigns(broker, scenario.campaigns))
    parts = chunks(scenario, 3)
    first, _ = h.start_worker(broker, tmp_path, instance="a", extra=worker_env(store))
    second = None
    try:
        asyncio.run(h.produce(broker, parts[0], 4, orders_from=scenario.events))  # type: ignore[arg-type]
        second, port = h.start_worker(broker, tmp_path, instance="b", extra=worker_env(store))
        asyncio.run(h.produce(broker, parts[1], 4, orders_from=scenario.events))  # type: ignore[arg-type]
        # Leaves once it has taken partitions and processed events of its own.
        deadline = time.monotonic() + 60
        while events_processed(port) == 0:
            assert time.monotonic() < deadline, "the second worker processed nothing in 60 s"
            time.sleep(0.2)
        second.stop()
        asyncio.run(h.produce(broker, parts[2], 4, orders_from=scenario.events))  # type: ignore[arg-type]
        expected = h.expected_sets(attribute(scenario.events, scenario.campaigns))
        got = asyncio.run(h.wait_for(broker, expected, timeout_s=120))
        h.assert_same(expected, got, tmp_path)
    finally:
        if second is not None:
            second.stop()
        first.stop()
