"""``afflux bench ledger --redis cluster``: the ledger's workload applied by several
consumers at once on a Redis Cluster.

The topic partitions are dealt out among ``consumers`` processes (partition n of the
sorted list to consumer n mod ``consumers``), as a consumer group would assign them;
each process polls only its partitions' records, in their order, at most
``poll_records`` a poll, through its own ``LedgerConsumer`` and ``LedgerStore`` on
the cluster. All of them start together (a barrier after connecting); the figure is
every event over the time from the first start to the last finish.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Sequence
from multiprocessing.synchronize import Barrier
from typing import Any

from afflux.bench import ledger
from afflux.payouts.store import LedgerStore
from afflux.shared.io.redis_client import connect_ready

Record = tuple[str, int, bytes, bytes]  # topic, partition, key, value
_START_TIMEOUT_S = 60.0


def owned_records(records: Sequence[Record], consumers: int) -> list[list[Record]]:
    """Each consumer's records, in order: the sorted partitions dealt out in turn."""
    partitions = sorted({(topic, partition) for topic, partition, _, _ in records})
    owner = {tp: n % consumers for n, tp in enumerate(partitions)}
    out: list[list[Record]] = [[] for _ in range(consumers)]
    for record in records:
        out[owner[(record[0], record[1])]].append(record)
    return out


def run_consumers(
    url: str, records: Sequence[Record], poll_records: int, consumers: int
) -> dict[str, Any]:
    """Events/s of ``consumers`` processes applying disjoint partitions concurrently."""
    context = multiprocessing.get_context("fork")  # the children inherit the workload
    barrier = context.Barrier(consumers)
    results: Any = context.Queue()
    children = [
        context.Process(
            target=_consume,
            args=(url, ledger.to_polls(mine, poll_records), barrier, results),
            name=f"bench-ledger-consumer-{n}",
        )
        for n, mine in enumerate(owned_records(records, consumers))
    ]
    for child in children:
        child.start()
    try:
        timings = [results.get(timeout=_START_TIMEOUT_S + 3_600) for _ in children]
    finally:
        for child in children:
            child.join(timeout=10)
            if child.is_alive():
                child.kill()
                child.join()
    failed = [t for t in timings if isinstance(t, str)]
    if failed:
        raise RuntimeError(f"a ledger consumer failed: {failed[0]}")
    started = min(t["started"] for t in timings)
    ended = max(t["ended"] for t in timings)
    events = sum(t["events"] for t in timings)
    return {
        "seconds": ended - started,
        "events": events,
        "value": events / (ended - started),
        "per_consumer": [
            {"events": t["events"], "seconds": t["ended"] - t["started"], "polls": t["polls"]}
            for t in timings
        ],
    }


def _consume(url: str, polls: list[ledger.Poll], barrier: Barrier, results: Any) -> None:
    try:
        results.put(asyncio.run(_consume_async(url, polls, barrier)))
    except BaseException as exc:  # the parent reports it, rather than wait for ever
        results.put(f"{type(exc).__name__}: {exc}")
        raise


async def _consume_async(url: str, polls: list[ledger.Poll], barrier: Barrier) -> dict[str, Any]:
    redis = await connect_ready(url)
    consumer = ledger.new_consumer(LedgerStore(redis))  # type: ignore[arg-type]
    try:
        barrier.wait(timeout=_START_TIMEOUT_S)
        timing = await ledger.apply_polls(consumer, polls)
    finally:
        await consumer.consumer.stop()
        await consumer.producer.stop()
        await redis.aclose()  # type: ignore[union-attr]
    return {
        "started": timing.started,
        "ended": timing.ended,
        "events": timing.events,
        "polls": len(polls),
    }
