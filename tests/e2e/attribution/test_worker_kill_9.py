"""kill -9 of the worker mid-stream: its outputs still equal the oracle's, event for
event, with either state store."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import harness as h
import pytest
from worker_faults import STATE_STORES, chunks, output_count, wait_for_outputs, worker_env

from afflux.oracle import attribute, generate

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # on Kafka too: STATE_STORES


@pytest.mark.parametrize("store", STATE_STORES)
def test_kill_9_mid_stream_and_restart(broker: str, tmp_path: Path, store: str) -> None:
    scenario = generate(4242, visitors=2500, grace_seconds=2, prefix="k")
    asyncio.run(h.publish_campaigns(broker, scenario.campaigns))
    worker, _ = h.start_worker(broker, tmp_path, instance="k1", extra=worker_env(store))
    parts = chunks(scenario, 4)
    asyncio.run(h.produce(broker, parts[0], 4, orders_from=scenario.events))  # type: ignore[arg-type]
    first = wait_for_outputs(broker, 1)
    asyncio.run(h.produce(broker, parts[1], 4, orders_from=scenario.events))  # type: ignore[arg-type]
    wait_for_outputs(broker, first + 1)  # killed while the second slice is under way
    worker.kill()
    asyncio.run(h.produce(broker, parts[2], 4, orders_from=scenario.events))  # type: ignore[arg-type]
    before = output_count(broker)
    restarted_at = time.monotonic()
    worker, _ = h.start_worker(broker, tmp_path, instance="k1", extra=worker_env(store))
    try:
        resumed = None
        while time.monotonic() - restarted_at < 60:
            if output_count(broker) > before:
                resumed = time.monotonic() - restarted_at
                break
            time.sleep(0.2)
        asyncio.run(h.produce(broker, parts[3], 4, orders_from=scenario.events))  # type: ignore[arg-type]
        expected = h.expected_sets(attribute(scenario.events, scenario.campaigns))
        got = asyncio.run(h.wait_for(broker, expected, timeout_s=120))
        print(h.describe(expected, got))
        h.assert_same(expected, got, tmp_path)
        # Liveness, not speed: the restarted worker picks up where the killed one left.
        assert resumed is not None, "no new output within 60 s of the restart"
        print(f"new output {resumed:.1f}s after the restart")
    finally:
        worker.stop()
