"""Each service's clock against Redis's TIME, on a real Redis: a host clock off by two
seconds reads two seconds off (AffluxHostClocksDisagree compares them across services)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from redis.asyncio import Redis

from afflux.shared.io.clock_offset import ClockOffsetCollector

pytestmark = pytest.mark.integration


@pytest.fixture
async def redis(infra: Any) -> AsyncIterator[Redis[bytes]]:
    client: Redis[bytes] = Redis.from_url(infra.redis_url)
    try:
        yield client
    finally:
        await client.aclose()  # type: ignore[attr-defined]


@pytest.mark.parametrize("off_ms", [-2_000, 0, 2_000], ids=["behind", "right", "ahead"])
async def test_a_clock_off_by_two_seconds_reads_two_seconds_off_redis(
    redis: Redis[bytes], off_ms: int
) -> None:
    registry = CollectorRegistry()
    collector = ClockOffsetCollector(registry, lambda: time.time() * 1000 + off_ms)
    assert b"afflux_clock_offset_seconds" not in generate_latest(registry)  # nothing yet

    offset = await collector.update(redis)

    # Redis runs on this host: the same clock, give or take the round trip.
    assert abs(offset.offset_ms - off_ms) <= 50 + offset.uncertainty_ms
    text = generate_latest(registry).decode()
    [line] = [s for s in text.splitlines() if s.startswith("afflux_clock_offset_seconds ")]
    assert abs(float(line.split()[1]) - off_ms / 1000) <= 0.05 + offset.uncertainty_ms / 1000
    assert "afflux_clock_offset_uncertainty_seconds " in text


async def test_a_failed_reading_keeps_the_last_one(redis: Redis[bytes]) -> None:
    registry = CollectorRegistry()
    collector = ClockOffsetCollector(registry, lambda: time.time() * 1000)
    first = await collector.update(redis)
    gone: Redis[bytes] = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    try:
        with pytest.raises(Exception):  # noqa: B017, PT011 - any connection error
            await collector.update(gone)
    finally:
        await gone.aclose()  # type: ignore[attr-defined]
    assert collector.last == first
