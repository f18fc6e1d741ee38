"""kill -9 mid-stream, and a second worker joining and leaving mid-stream: the
outputs still equal the oracle's, event for event, with either state store."""

from __future__ import annotations

import asyncio
import itertools
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import harness as h
import pytest

from afflux.cli.brokers import BrokerKind, start_chosen_broker
from afflux.cli.processes import free_port
from afflux.oracle import Scenario, attribute, generate
from afflux.shared.io.kafka import create_topics

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.kafka_conformance]

# Refunds wait long enough for their order's outcome even across a restart.
SLOW_REFUNDS = {"AFFLUX_REFUND_WAIT_SECONDS": "20"}
STATE_STORES = ("memory", "disk")


def worker_env(store: str) -> dict[str, str]:
    return {**SLOW_REFUNDS, "AFFLUX_STATE_STORE": store}


@pytest.fixture
def broker(tmp_path: Path, broker_kind: BrokerKind) -> Iterator[str]:
    port = free_port()
    child = start_chosen_broker(broker_kind, port, tmp_path)
    try:
        bootstrap = f"127.0.0.1:{port}"
        asyncio.run(create_topics(bootstrap, 4))
        yield bootstrap
    finally:
        child.stop()


def chunks(scenario: Scenario, n: int) -> list[list[object]]:
    """``n`` slices in order, never cutting through one visitor's block of events.

    The oracle counts every click of a visitor; the worker rightly ignores clicks
    that reach the broker after an order's grace, so a pause between slices must
    not fall between an order and its own clicks.
    """
    events = scenario.events
    size = -(-len(events) // n)
    cuts = [0]
    for nominal in range(size, len(events), size):
        cut = max(nominal, cuts[-1])
        while (
            cut < len(events)
            and _visitor(events[cut]) is not None
            and _visitor(events[cut]) == _visitor(events[cut - 1])
        ):
            cut += 1
        cuts.append(cut)
    cuts.append(len(events))
    return [list(events[a:b]) for a, b in itertools.pairwise(cuts) if b > a]


def _visitor(event: object) -> str | None:
    return getattr(event, "visitor_id", None)


def output_count(bootstrap: str) -> int:
    topics = asyncio.run(h.read_topics(bootstrap, h.OUTPUTS))
    return sum(len(v) for v in topics.values())


def wait_for_outputs(bootstrap: str, at_least: int, timeout_s: float = 60) -> int:
    """Until the worker has written ``at_least`` outputs: a fault lands mid-stream by
    progress, not after a guessed sleep."""
    deadline = time.monotonic() + timeout_s
    while (count := output_count(bootstrap)) < at_least:
        assert time.monotonic() < deadline, f"{count} outputs within {timeout_s:.0f}s"
        time.sleep(0.2)
    return count


def events_processed(port: int) -> float:
    """The worker's ``afflux_attribution_events_total``, summed over its labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
        text = resp.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("afflux_attribution_events_total")
    )


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
        assert got == expected, h.describe(expected, got)
        # Liveness, not speed: the restarted worker picks up where the killed one left.
        assert resumed is not None, "no new output within 60 s of the restart"
        print(f"new output {resumed:.1f}s after the restart")
    finally:
        worker.stop()


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
        assert got == expected, h.describe(expected, got)
    finally:
        if second is not None:
            second.stop()
        first.stop()
