"""The real worker on a real broker against the batch oracle, event for event.

Twenty-four seeded scenarios (window edges at +-1 ms, orders before their
clicks, coupon against cookie, explicit and unknown click ids, several
creators, redeliveries, lead confirmations, partial and over-refunds, refunds
of unknown orders, a terms change) go through one worker together; each
scenario's outputs must equal the oracle's for it. Once per state store.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import harness as h
import pytest

from afflux.oracle import Scenario, attribute, generate
from afflux.shared.topics import CLICKS, DLQ, ORDERS
from afflux.shared.wire import encode

pytestmark = [pytest.mark.integration, pytest.mark.kafka_conformance]

SEEDS = range(100, 124)


@pytest.fixture(scope="module")
def scenarios() -> dict[int, Scenario]:
    return {seed: generate(seed, grace_seconds=2, prefix="d") for seed in SEEDS}


@pytest.fixture(scope="module")
def worker_run(
    store_broker: tuple[str, Path, dict[str, str]], scenarios: dict[int, Scenario]
) -> Iterator[tuple[str, int]]:
    bootstrap, work, store = store_broker
    merged = next(iter(scenarios.values())).campaigns
    asyncio.run(h.publish_campaigns(bootstrap, merged))
    worker, port = h.start_worker(bootstrap, work, extra=store)
    try:
        events = [e for s in scenarios.values() for e in s.events]
        asyncio.run(h.produce(bootstrap, events, 4))
        expected: set[str] = set()
        for s in scenarios.values():
            expected |= h.expected_sets(attribute(s.events, s.campaigns))
        asyncio.run(h.wait_for(bootstrap, expected, timeout_s=60))
        yield bootstrap, port
    finally:
        worker.stop()


@pytest.mark.parametrize("seed", SEEDS)
def test_worker_equals_oracle(
    worker_run: tuple[str, int], scenarios: dict[int, Scenario], seed: int
) -> None:
    bootstrap, _ = worker_run
    scenario = scenarios[seed]
    expected = h.expected_sets(attribute(scenario.events, scenario.campaigns))
    got = asyncio.run(h.actual_sets(bootstrap, belongs=f"ds{seed}-"))
    assert got == expected, h.describe(expected, got)


def test_replaying_every_input_changes_nothing(
    worker_run: tuple[str, int], scenarios: dict[int, Scenario]
) -> None:
    bootstrap, _ = worker_run
    before = asyncio.run(h.actual_sets(bootstrap))
    counts_before = _output_count(bootstrap)
    asyncio.run(h.produce(bootstrap, scenarios[SEEDS[0]].events, 4))
    asyncio.run(asyncio.sleep(6))  # grace + refund wait
    assert asyncio.run(h.actual_sets(bootstrap)) == before
    assert _output_count(bootstrap) == counts_before  # not even an identical copy


def _output_count(bootstrap: str) -> int:
    topics = asyncio.run(h.read_topics(bootstrap, h.OUTPUTS))
    return sum(len(v) for v in topics.values())


def test_bad_records_go_to_the_dead_letter_topic_and_the_worker_goes_on(
    worker_run: tuple[str, int], scenarios: dict[int, Scenario]
) -> None:
    bootstrap, port = worker_run
    from afflux.shared.io.kafka import new_producer

    good = generate(999, grace_seconds=2, prefix="dlq", visitors=10)
    order = next(e for e in good.events if e.type == "OrderPlaced")
    stray = order.model_copy(update={"campaign_id": "no-such-campaign", "order_id": "dlq-stray"})

    async def send_bad() -> None:
        producer = new_producer(bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(CLICKS.name, b"{not json", key=b"v-bad")
            await producer.send_and_wait(CLICKS.name, b'[{"type": "ClickRecorded"}]', key=b"v-bad")
            await producer.send_and_wait(ORDERS.name, encode(stray), key=b"v-stray")
        finally:
            await producer.stop()

    asyncio.run(send_bad())
    asyncio.run(h.produce(bootstrap, good.events, 4))
    expected = h.expected_sets(attribute(good.events, good.campaigns))
    got = asyncio.run(h.wait_for(bootstrap, expected, belongs="dlqs999-", timeout_s=30))
    assert got == expected, h.describe(expected, got)
    letters = asyncio.run(h.read_topics(bootstrap, [DLQ.name]))[DLQ.name]
    reasons = sorted(getattr(e, "reason", "").split(":")[0] for e in letters)
    assert reasons[:3] == ["invalid event", "not JSON", "unknown campaign"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    assert 'afflux_dlq_total{reason="not_json",topic="clicks"} 1.0' in text
    assert "afflux_conversions_total{" in text
    clicks_read = float(
        next(
            line.rsplit(" ", 1)[1]
            for line in text.splitlines()
            if line.startswith('afflux_attribution_events_total{topic="clicks"}')
        )
    )
    clicks_sent = sum(
        e.type == "ClickRecorded" for sc in (*scenarios.values(), good) for e in sc.events
    )
    assert clicks_read >= clicks_sent  # events, not the packed records that carried them
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
        assert json.loads(resp.read())["status"] == "ok"
