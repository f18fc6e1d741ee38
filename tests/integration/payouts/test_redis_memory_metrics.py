"""The payouts service's Redis memory metrics read a real Redis's INFO: used memory,
maxmemory, and keys evicted at the limit (plain Redis and Redis Cluster)."""

from __future__ import annotations

import pytest
import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from afflux.cli.processes import Child
from afflux.payouts.redis_memory import RedisMemoryCollector
from afflux.shared.io.redis_client import connect_ready

pytestmark = pytest.mark.integration


async def test_a_reading_reports_used_memory_and_no_limit(ledger_redis_url: str) -> None:
    client = await connect_ready(ledger_redis_url)
    registry = CollectorRegistry()
    collector = RedisMemoryCollector(registry)
    try:
        reading = await collector.update(client)
    finally:
        await client.aclose()
    assert reading.used_bytes > 100_000  # an empty redis-server uses about a megabyte
    assert reading.max_bytes == 0
    scraped = {
        sample.name: sample.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for sample in family.samples
    }
    assert scraped == {
        "afflux_redis_used_memory_bytes": reading.used_bytes,
        "afflux_redis_maxmemory_bytes": 0,
        "afflux_redis_evicted_keys_total": reading.evicted_keys,
    }


async def test_keys_evicted_at_maxmemory_are_counted(plain_redis: tuple[Child, int]) -> None:
    _, port = plain_redis
    admin = redis.Redis(host="127.0.0.1", port=port)
    policy = admin.config_get("maxmemory-policy")["maxmemory-policy"]
    client = await connect_ready(f"redis://127.0.0.1:{port}/0")
    collector = RedisMemoryCollector(CollectorRegistry())
    try:
        admin.flushall()
        before = await collector.update(client)
        limit = before.used_bytes + 1_000_000
        admin.config_set("maxmemory", limit)
        admin.config_set("maxmemory-policy", "allkeys-random")
        for i in range(300):  # 3 MB of values into 1 MB of room
            admin.set(f"eviction-test:{i}", b"x" * 10_000)
        after = await collector.update(client)
    finally:
        admin.config_set("maxmemory", 0)
        admin.config_set("maxmemory-policy", policy)
        admin.flushall()
        admin.close()
        await client.aclose()
    assert after.max_bytes == limit
    assert after.evicted_keys > before.evicted_keys
    # Redis frees room before each write, not after it: the last value written and the
    # reply buffers of the INFO that read it can leave usage a little past the limit,
    # but far from the 3 MB written.
    assert after.used_bytes < limit + 2 * 10_000
