"""``afflux bench orders [--json]``: signed orders/s accepted and produced, beside a bare
FastAPI POST endpoint measured in the same run.

Both servers are ``python -m`` children under the same uvicorn set-up
(afflux.shared.io.serving); the load comes from a separate process on loopback
(afflux.bench.orders_load) with the same connections and duration. The orders
figure counts 202 answers, each of which the broker acknowledged, and is
checked against the records that reached the ``orders`` topic (read up to
the fetch high watermarks). Starts its own broker and Redis on free ports.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from afflux.bench.side_by_side import (
    Result,
    Tally,
    bench_main,
    compared,
    events_on,
    run_load,
    start_backbone,
    start_beside_bare,
)
from afflux.shared.core.terms import CampaignTerms
from afflux.shared.topics import ORDERS

if TYPE_CHECKING:
    from afflux.cli.brokers import BrokerKind
    from afflux.cli.storage import BrokerStorage

MERCHANT, SECRET, CAMPAIGN = "merchant-bench", "bench-secret", "bench-shop"


def _load(url: str, seconds: float, connections: int) -> Result:
    args = (url, str(seconds), str(connections), MERCHANT, SECRET, CAMPAIGN)
    return run_load("afflux.bench.orders_load", seconds, *args)


def run(
    seconds: float,
    connections: int,
    work: Path,
    rounds: int = 2,
    storage: BrokerStorage = "durable",
    broker: BrokerKind = "tansu",
) -> dict[str, Any]:
    children: list[Any] = []
    try:
        terms = CampaignTerms(campaign_id=CAMPAIGN, merchant_id=MERCHANT, currency="EUR")
        backbone = start_backbone(work, storage, terms, children, broker)
        env = {
            "AFFLUX_KAFKA_BOOTSTRAP": backbone.bootstrap,
            "AFFLUX_REDIS_URL": f"redis://127.0.0.1:{backbone.redis_port}/2",
            "AFFLUX_MERCHANT_SECRETS": json.dumps({MERCHANT: [SECRET]}),
            "AFFLUX_LOG_LEVEL": "WARNING",
        }
        orders_url, bare_url = start_beside_bare("orders", env, work, children)
        _load(f"{bare_url}/v1/orders", 1.5, connections)  # warm-up
        _load(f"{orders_url}/v1/orders", 1.5, connections)  # warm-up
        before = asyncio.run(events_on(backbone.bootstrap, ORDERS.name))
        # Alternate the two sides so that a noisy neighbour hits both alike.
        baseline, measured = Tally(), Tally()
        for _ in range(rounds):
            baseline.add(_load(f"{bare_url}/v1/orders", seconds / rounds, connections))
            measured.add(_load(f"{orders_url}/v1/orders", seconds / rounds, connections))
        produced = asyncio.run(events_on(backbone.bootstrap, ORDERS.name)) - before
    finally:
        for child in reversed(children):
            child.stop()
    value, base = measured.rate("202"), baseline.rate("202")
    facts = {
        "accepted": measured.status.get("202", 0),
        "produced": produced,
        "non_202": {k: v for k, v in measured.status.items() if k != "202"},
    }
    ran = (seconds, rounds, connections, storage, broker)
    return compared("orders", "orders/s", (value, base), "bare FastAPI POST endpoint", facts, ran)


def main(argv: Sequence[str]) -> int:
    return bench_main(argv, "orders", __doc__, (16.0, 64), run, _summary, _passed)


def _summary(result: Result) -> str:
    return (
        f"orders: {result['value']:.0f} signed orders/s accepted and produced "
        f"({result['produced']} events on the orders topic for {result['accepted']} accepted); "
        f"bare FastAPI POST: {result['baseline']:.0f} req/s; ratio {result['ratio']:.2f} "
        f"(target >= 0.80)"
    )


def _passed(result: Result) -> bool:
    return bool(result["produced"] >= result["accepted"])
