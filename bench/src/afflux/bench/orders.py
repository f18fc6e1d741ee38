"""``afflux bench orders [--json]``: signed orders/s accepted and produced, beside a bare
FastAPI POST endpoint measured in the same run.

Both servers are ``python -m`` children under the same uvicorn set-up
(afflux.shared.serving); the load comes from a separate process on loopback
(afflux.bench.orders_load) with the same connections and duration. The orders
figure counts 202 answers, each of which the broker acknowledged, and is
checked against the records that reached the ``orders`` topic (read up to
the fetch high watermarks). Starts its own broker and Redis on free ports.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from afflux.shared.campaign_publish import publish_terms
from afflux.shared.core.terms import CampaignTerms
from afflux.shared.kafka import create_topics, topic_partitions
from afflux.shared.topics import ORDERS

if TYPE_CHECKING:
    from afflux.cli.storage import BrokerStorage

MERCHANT, SECRET, CAMPAIGN = "merchant-bench", "bench-secret", "bench-shop"


def _wait_healthy(url: str, child: Any, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not child.alive():
            raise RuntimeError(f"{child.name} exited:\n{child.log_tail()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{child.name} not healthy within {timeout_s} s")


def _load(url: str, seconds: float, connections: int) -> dict[str, Any]:
    argv = [sys.executable, "-m", "afflux.bench.orders_load", url, str(seconds),
            str(connections), MERCHANT, SECRET, CAMPAIGN]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def _records_on(bootstrap: str, topic: str) -> int:
    """Records on ``topic``, read to the fetch high watermarks (not ListOffsets)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=50
    )
    await consumer.start()
    try:
        parts = await topic_partitions(consumer, topic)
        consumer.assign(parts)
        for tp in parts:
            consumer.seek(tp, 0)
        counted: dict[TopicPartition, int] = {}
        next_offset: dict[TopicPartition, int] = {}
        quiet = 0
        while quiet < 3:
            batches = await consumer.getmany(timeout_ms=200, max_records=50_000)
            for tp, records in batches.items():
                counted[tp] = counted.get(tp, 0) + sum(
                    len(json.loads(r.value)) if (r.value or b"")[:1] == b"[" else 1 for r in records
                )
                next_offset[tp] = records[-1].offset + 1
            caught_up = all(
                consumer.highwater(tp) is not None
                and next_offset.get(tp, 0) >= (consumer.highwater(tp) or 0)
                for tp in parts
            )
            quiet = quiet + 1 if caught_up and not batches else 0
        return sum(counted.values())
    finally:
        await consumer.stop()


class _Tally:
    def __init__(self) -> None:
        self.seconds = 0.0
        self.status: dict[str, int] = {}

    def add(self, result: dict[str, Any]) -> None:
        self.seconds += float(result["seconds"])
        for code, count in result["status"].items():
            self.status[code] = self.status.get(code, 0) + int(count)

    def rate(self, status: str) -> float:
        return self.status.get(status, 0) / self.seconds if self.seconds else 0.0


def run(
    seconds: float,
    connections: int,
    work: Path,
    rounds: int = 2,
    storage: BrokerStorage = "durable",
) -> dict[str, Any]:
    from afflux.cli.embedded import start_embedded_broker, start_redis
    from afflux.cli.processes import Child, free_port

    children: list[Any] = []
    try:
        broker_port, redis_port, orders_port, bare_port = (free_port() for _ in range(4))
        durable = storage == "durable"
        children += start_embedded_broker(broker_port, work, storage)
        children.append(start_redis(redis_port, work / "redis", work / "logs", aof=durable))
        bootstrap = f"127.0.0.1:{broker_port}"
        asyncio.run(create_topics(bootstrap, 4))
        terms = CampaignTerms(campaign_id=CAMPAIGN, merchant_id=MERCHANT, currency="EUR")
        asyncio.run(publish_terms(bootstrap, [(terms, 0)]))
        env = {
            "AFFLUX_KAFKA_BOOTSTRAP": bootstrap,
            "AFFLUX_REDIS_URL": f"redis://127.0.0.1:{redis_port}/2",
            "AFFLUX_ORDERS_PORT": str(orders_port),
            "AFFLUX_MERCHANT_SECRETS": json.dumps({MERCHANT: [SECRET]}),
            "AFFLUX_LOG_LEVEL": "WARNING",
        }
        orders = Child("orders", [sys.executable, "-m", "afflux.orders"], work / "logs/orders.log",
                       env=env).start()  # fmt: skip
        children.append(orders)
        bare = Child("bare", [sys.executable, "-m", "afflux.bench.orders_bare", str(bare_port)],
                     work / "logs/bare.log").start()  # fmt: skip
        children.append(bare)
        orders_url, bare_url = f"http://127.0.0.1:{orders_port}", f"http://127.0.0.1:{bare_port}"
        _wait_healthy(orders_url, orders)
        _wait_healthy(bare_url, bare)
        _load(f"{bare_url}/v1/orders", 1.5, connections)  # warm-up
        _load(f"{orders_url}/v1/orders", 1.5, connections)  # warm-up
        before = asyncio.run(_records_on(bootstrap, ORDERS.name))
        # Alternate the two sides so that a noisy neighbour hits both alike.
        baseline, measured = _Tally(), _Tally()
        for _ in range(rounds):
            baseline.add(_load(f"{bare_url}/v1/orders", seconds / rounds, connections))
            measured.add(_load(f"{orders_url}/v1/orders", seconds / rounds, connections))
        produced = asyncio.run(_records_on(bootstrap, ORDERS.name)) - before
    finally:
        for child in reversed(children):
            child.stop()
    value, base = measured.rate("202"), baseline.rate("202")
    return {
        "bench": "orders",
        "value": round(value, 1),
        "unit": "orders/s",
        "baseline": round(base, 1),
        "ratio": round(value / base, 3) if base else 0.0,
        "baseline_name": "bare FastAPI POST endpoint",
        "accepted": measured.status.get("202", 0),
        "produced": produced,
        "non_202": {k: v for k, v in measured.status.items() if k != "202"},
        "seconds": seconds,
        "rounds": rounds,
        "connections": connections,
        "storage": storage,
    }


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="afflux bench orders", description=__doc__)
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    parser.add_argument("--seconds", type=float, default=16.0, help="measured seconds per side")
    parser.add_argument("--connections", type=int, default=64)
    from afflux.cli.storage import add_storage_option, storage_of

    add_storage_option(parser)
    args = parser.parse_args(list(argv))
    with tempfile.TemporaryDirectory(prefix="afflux-bench-orders-") as tmp:
        result = run(args.seconds, args.connections, Path(tmp), storage=storage_of(args))
    print(f"broker storage: {args.storage}")
    print(
        f"orders: {result['value']:.0f} signed orders/s accepted and produced "
        f"({result['produced']} events on the orders topic for {result['accepted']} accepted); "
        f"bare FastAPI POST: {result['baseline']:.0f} req/s; ratio {result['ratio']:.2f} "
        f"(target >= 0.70)"
    )
    if args.json:
        print(json.dumps(result))
    return 0 if result["produced"] >= result["accepted"] else 1
