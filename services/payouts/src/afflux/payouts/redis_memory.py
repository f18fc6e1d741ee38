"""Redis memory as the payouts service sees it, read from INFO every few seconds.

``afflux_redis_used_memory_bytes`` and ``afflux_redis_maxmemory_bytes`` (0: no
limit) are gauges, ``afflux_redis_evicted_keys_total`` is Redis's own eviction
counter (it restarts at 0 with Redis). afflux keeps its ledger, idempotency keys
and links in Redis: an evicted key is lost state, so these feed the alerts
``AffluxRedisMemoryNearLimit`` and ``AffluxRedisEvictingKeys``.

On Redis Cluster INFO answers per node: the node closest to its limit is shown
(the first to evict or refuse writes), and evictions are summed over the nodes.
Nothing is exported before the first successful read, so a Redis that never
answered shows no numbers rather than zeros.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from afflux.shared.io.refresh import refresh_forever

DEFAULT_INTERVAL_S = 15.0


class InfoReader(Protocol):
    async def info(self, section: str | None = None, *args: str) -> Any: ...


@dataclass(frozen=True)
class RedisMemory:
    used_bytes: int
    max_bytes: int
    evicted_keys: int


def _node(info: Mapping[str, Any]) -> RedisMemory:
    return RedisMemory(
        used_bytes=int(info["used_memory"]),
        max_bytes=int(info.get("maxmemory", 0)),
        evicted_keys=int(info.get("evicted_keys", 0)),
    )


def _fill(node: RedisMemory) -> float:
    return node.used_bytes / node.max_bytes if node.max_bytes > 0 else 0.0


def memory_from_info(info: Mapping[str, Any]) -> RedisMemory:
    """One Redis's INFO fields, or a cluster's ``{node: fields}``: its fullest node."""
    if "used_memory" in info:
        return _node(info)
    nodes = [_node(fields) for fields in info.values() if isinstance(fields, Mapping)]
    if not nodes:
        raise ValueError("INFO answered without used_memory")
    fullest = max(nodes, key=lambda n: (_fill(n), n.used_bytes))
    return RedisMemory(
        used_bytes=fullest.used_bytes,
        max_bytes=fullest.max_bytes,
        evicted_keys=sum(n.evicted_keys for n in nodes),
    )


class RedisMemoryCollector(Collector):
    """Exports the last reading; ``run`` keeps it current."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.last: RedisMemory | None = None
        registry.register(self)

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        last = self.last
        if last is None:
            return
        yield GaugeMetricFamily(
            "afflux_redis_used_memory_bytes",
            "Memory Redis uses (INFO used_memory; the fullest node on a cluster)",
            value=last.used_bytes,
        )
        yield GaugeMetricFamily(
            "afflux_redis_maxmemory_bytes",
            "Redis's maxmemory (0: no limit) of the node in afflux_redis_used_memory_bytes",
            value=last.max_bytes,
        )
        yield CounterMetricFamily(
            "afflux_redis_evicted_keys",
            "Keys Redis evicted at maxmemory since it started (INFO evicted_keys)",
            value=last.evicted_keys,
        )

    async def update(self, redis: InfoReader) -> RedisMemory:
        # Two small sections, not the whole INFO: a few hundred bytes each.
        memory = await redis.info("memory")
        stats = await redis.info("stats")
        self.last = memory_from_info(_merged(memory, stats))
        return self.last

    async def run(self, redis: InfoReader, interval_s: float = DEFAULT_INTERVAL_S) -> None:
        """Refresh every ``interval_s`` until cancelled; a failed read keeps the last one."""
        await refresh_forever(lambda: self.update(redis), interval_s, "reading Redis INFO")


def _merged(memory: Mapping[str, Any], stats: Mapping[str, Any]) -> dict[str, Any]:
    """Both sections as one mapping, per node on a cluster."""
    if "used_memory" in memory:
        return {**memory, **stats}
    return {
        node: {**fields, **stats.get(node, {})}
        for node, fields in memory.items()
        if isinstance(fields, Mapping)
    }
