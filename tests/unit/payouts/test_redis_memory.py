"""Redis memory from INFO: one Redis as it answers, a cluster's fullest node, and the
metrics that come out of a reading (nothing before the first one)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from afflux.payouts.redis_memory import RedisMemory, RedisMemoryCollector, memory_from_info

pytestmark = pytest.mark.unit


@dataclass(frozen=True)
class Case:
    info: dict[str, Any]
    expect: RedisMemory


def node(used: int, limit: int, evicted: int) -> dict[str, int]:
    return {"used_memory": used, "maxmemory": limit, "evicted_keys": evicted}


@pytest.mark.parametrize(
    "case",
    [
        # a single Redis: its own fields
        Case(node(900, 1000, 3), RedisMemory(900, 1000, 3)),
        # maxmemory 0: no limit, still reported as 0
        Case(node(900, 0, 0), RedisMemory(900, 0, 0)),
        # an older Redis without the stats fields merged in: no evictions known
        Case({"used_memory": 5}, RedisMemory(5, 0, 0)),
        # a cluster: the node nearest its limit, not the one using most bytes
        Case(
            {"a:7000": node(900, 10_000, 1), "b:7001": node(600, 1000, 2)},
            RedisMemory(600, 1000, 3),
        ),
        # a cluster without limits: the node using most bytes
        Case(
            {"a:7000": node(900, 0, 0), "b:7001": node(600, 0, 0)},
            RedisMemory(900, 0, 0),
        ),
    ],
)
def test_memory_from_info(case: Case) -> None:
    assert memory_from_info(case.info) == case.expect


def test_info_without_used_memory_is_an_error() -> None:
    with pytest.raises(ValueError, match="used_memory"):
        memory_from_info({"redis_version": "7.2.0"})


def test_metrics_appear_only_after_the_first_reading() -> None:
    registry = CollectorRegistry()
    collector = RedisMemoryCollector(registry)
    assert b"afflux_redis" not in generate_latest(registry)
    collector.last = RedisMemory(used_bytes=900, max_bytes=1000, evicted_keys=4)
    text = generate_latest(registry).decode()
    assert "afflux_redis_used_memory_bytes 900.0" in text
    assert "afflux_redis_maxmemory_bytes 1000.0" in text
    assert "afflux_redis_evicted_keys_total 4.0" in text
