"""``afflux bench clicks [--json]``: redirects/s of ``GET /c/{code}`` beside a bare FastAPI
endpoint returning the same 302, measured in the same run.

Both servers are ``python -m`` children under the same uvicorn set-up
(afflux.clicks.server: one worker, uvloop, httptools); the load comes from a
separate process on loopback (afflux.bench.clicks_load). The clicks service
really produces every click event to its own embedded broker: the run checks
that the ``clicks`` topic holds one event per 302 answered. Phases:

1. peak: closed-loop load, the two sides alternated in rounds;
2. latency: open-loop load at 70 % of the clicks service's peak, p99 of both;
3. outage: the broker is stopped and the clicks service keeps answering; every
   answer that is not a 302 is counted (the target is zero).
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
from afflux.shared.topics import CLICKS

if TYPE_CHECKING:
    from afflux.cli.storage import BrokerStorage

CAMPAIGN, TOKEN = "bench-shop", "bench-admin-token"
FSYNC = "afflux_clicks_wal_fsync_seconds"


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


def _load(url: str, seconds: float, connections: int, rate: float | None = None) -> dict[str, Any]:
    argv = [sys.executable, "-m", "afflux.bench.clicks_load", url, str(seconds), str(connections)]
    if rate:
        argv.append(f"{rate:.1f}")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def _events_on(bootstrap: str, topic: str) -> int:
    """Events on ``topic`` (packed records count each event), read to the fetch high watermarks."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=50
    )
    await consumer.start()
    try:
        parts = await topic_partitions(consumer, topic)
        consumer.assign(parts)
        for tp in parts:
            consumer.seek(tp, 0)
        counted = 0
        next_offset: dict[TopicPartition, int] = {}
        quiet = 0
        while quiet < 3:
            batches = await consumer.getmany(timeout_ms=200, max_records=50_000)
            for tp, records in batches.items():
                counted += sum(
                    len(json.loads(r.value)) if (r.value or b"")[:1] == b"[" else 1 for r in records
                )
                next_offset[tp] = records[-1].offset + 1
            caught_up = all(
                consumer.highwater(tp) is not None
                and next_offset.get(tp, 0) >= (consumer.highwater(tp) or 0)
                for tp in parts
            )
            quiet = quiet + 1 if caught_up and not batches else 0
        return counted
    finally:
        await consumer.stop()


class _Tally:
    def __init__(self) -> None:
        self.seconds = 0.0
        self.status: dict[str, int] = {}
        self.p50: list[float] = []
        self.p99: list[float] = []

    def add(self, result: dict[str, Any]) -> None:
        self.seconds += float(result["seconds"])
        for code, count in result["status"].items():
            self.status[code] = self.status.get(code, 0) + int(count)
        self.p50.append(float(result["p50_ms"]))
        self.p99.append(float(result["p99_ms"]))

    def rate(self) -> float:
        return self.status.get("302", 0) / self.seconds if self.seconds else 0.0


def _redirect_buckets(url: str, name: str = "afflux_redirect_seconds") -> dict[float, float]:
    """Cumulative counts of one of the service's own histograms (the redirect's by default)."""
    buckets: dict[float, float] = {}
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith(f"{name}_bucket{{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[float("inf") if le == "+Inf" else float(le)] = float(line.rsplit(" ", 1)[1])
    return buckets


def _in_service_p99_ms(before: dict[float, float], after: dict[float, float]) -> float:
    """The bucket bound under which 99 % of the redirects between two scrapes were answered."""
    total = after.get(float("inf"), 0.0) - before.get(float("inf"), 0.0)
    for bound in sorted(after):
        if total and after[bound] - before.get(bound, 0.0) >= 0.99 * total:
            return bound * 1000
    return float("inf")


def _create_link(url: str) -> str:
    response = httpx.post(
        f"{url}/v1/links",
        headers={"Authorization": f"Bearer {TOKEN}"},
        json={
            "affiliate_id": "creator-bench",
            "campaign_id": CAMPAIGN,
            "destination_url": "https://shop.example.com/landing?ref=bench",
        },
        timeout=10,
    )
    response.raise_for_status()
    return str(response.json()["code"])


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
        broker_port, redis_port, clicks_port, bare_port = (free_port() for _ in range(4))
        durable = storage == "durable"
        started = start_embedded_broker(broker_port, work, storage)
        children += started
        broker = started[-1]
        children.append(start_redis(redis_port, work / "redis", work / "logs", aof=durable))
        bootstrap = f"127.0.0.1:{broker_port}"
        asyncio.run(create_topics(bootstrap, 4))
        terms = CampaignTerms(
            campaign_id=CAMPAIGN,
            merchant_id="merchant-bench",
            currency="EUR",
            allowed_domains=("shop.example.com",),
        )
        asyncio.run(publish_terms(bootstrap, [(terms, 0)]))
        env = {
            "AFFLUX_KAFKA_BOOTSTRAP": bootstrap,
            "AFFLUX_REDIS_URL": f"redis://127.0.0.1:{redis_port}/1",
            "AFFLUX_CLICKS_PORT": str(clicks_port),
            "AFFLUX_ADMIN_TOKEN": TOKEN,
            "AFFLUX_CLICKS_IP_HASH_SECRET": "bench-secret",
            "AFFLUX_CLICKS_SEND_TIMEOUT_MS": "2000",
            "AFFLUX_DATA_DIR": str(work / "data"),
            "AFFLUX_LOG_LEVEL": "WARNING",
        }
        clicks = Child("clicks", [sys.executable, "-m", "afflux.clicks"], work / "logs/clicks.log",
                       env=env).start()  # fmt: skip
        children.append(clicks)
        bare = Child("bare", [sys.executable, "-m", "afflux.bench.clicks_bare", str(bare_port)],
                     work / "logs/bare.log").start()  # fmt: skip
        children.append(bare)
        clicks_url, bare_url = f"http://127.0.0.1:{clicks_port}", f"http://127.0.0.1:{bare_port}"
        _wait_healthy(clicks_url, clicks)
        _wait_healthy(bare_url, bare)
        code = _create_link(clicks_url)
        clicks_target, bare_target = f"{clicks_url}/c/{code}", f"{bare_url}/c/{code}"
        answered = 0
        _load(bare_target, 1.5, connections)  # warm-up
        answered += _load(clicks_target, 1.5, connections)["status"].get("302", 0)
        # Alternate the two sides so that a noisy neighbour hits both alike.
        baseline, measured = _Tally(), _Tally()
        for _ in range(rounds):
            baseline.add(_load(bare_target, seconds / rounds, connections))
            result = _load(clicks_target, seconds / rounds, connections)
            measured.add(result)
            answered += result["status"].get("302", 0)
        rate70 = 0.7 * measured.rate()
        latency_seconds = max(3.0, seconds / 3)
        scraped = _redirect_buckets(clicks_url)
        fsyncs_before = _redirect_buckets(clicks_url, FSYNC)
        at70 = _load(clicks_target, latency_seconds, connections, rate70)
        in_service_p99 = _in_service_p99_ms(scraped, _redirect_buckets(clicks_url))
        fsyncs_after = _redirect_buckets(clicks_url, FSYNC)
        fsync_p99 = _in_service_p99_ms(fsyncs_before, fsyncs_after)
        fsync_count = fsyncs_after.get(float("inf"), 0.0) - fsyncs_before.get(float("inf"), 0.0)
        answered += at70["status"].get("302", 0)
        bare70 = _load(bare_target, latency_seconds, connections, rate70)
        produced = 0
        deadline = time.monotonic() + 30
        while produced < answered and time.monotonic() < deadline:
            produced = asyncio.run(_events_on(bootstrap, CLICKS.name))
        broker.stop()
        outage = _load(clicks_target, max(3.0, seconds / 4), connections)
    finally:
        for child in reversed(children):
            child.stop()
    value, base = measured.rate(), baseline.rate()
    non_302 = {k: v for k, v in outage["status"].items() if k != "302"}
    return {
        "bench": "clicks",
        "value": round(value, 1),
        "unit": "req/s",
        "baseline": round(base, 1),
        "ratio": round(value / base, 3) if base else 0.0,
        "baseline_name": "bare FastAPI endpoint returning the same 302",
        "p50_ms": max(measured.p50),
        "p99_ms": max(measured.p99),
        "baseline_p50_ms": max(baseline.p50),
        "baseline_p99_ms": max(baseline.p99),
        "rate_at_70pct": round(rate70, 1),
        "p99_ms_at_70pct": at70["p99_ms"],
        "p50_ms_at_70pct": at70["p50_ms"],
        "baseline_p99_ms_at_70pct": bare70["p99_ms"],
        "in_service_p99_ms_at_70pct_le": in_service_p99,
        "wal_fsync_p99_ms_at_70pct_le": fsync_p99,
        "clicks_per_fsync_at_70pct": round(at70["status"].get("302", 0) / fsync_count, 1)
        if fsync_count
        else 0.0,
        "answered_302": answered,
        "events_produced": produced,
        "broker_down_requests": sum(outage["status"].values()),
        "broker_down_non_302": sum(non_302.values()),
        "broker_down_req_s": round(outage["status"].get("302", 0) / outage["seconds"], 1),
        "seconds": seconds,
        "rounds": rounds,
        "connections": connections,
        "storage": storage,
    }


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="afflux bench clicks", description=__doc__)
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    parser.add_argument("--seconds", type=float, default=12.0, help="measured seconds per side")
    parser.add_argument("--connections", type=int, default=32)
    from afflux.cli.storage import add_storage_option, storage_of

    add_storage_option(parser)
    args = parser.parse_args(list(argv))
    with tempfile.TemporaryDirectory(prefix="afflux-bench-clicks-") as tmp:
        result = run(args.seconds, args.connections, Path(tmp), storage=storage_of(args))
    print(f"broker storage: {args.storage}")
    print(
        f"clicks: {result['value']:.0f} redirects/s (p50 {result['p50_ms']:.2f} ms, "
        f"p99 {result['p99_ms']:.2f} ms), every click produced "
        f"({result['events_produced']} events for {result['answered_302']} redirects)\n"
        f"bare FastAPI 302: {result['baseline']:.0f} req/s "
        f"(p50 {result['baseline_p50_ms']:.2f} ms, p99 {result['baseline_p99_ms']:.2f} ms); "
        f"ratio {result['ratio']:.2f} (target >= 0.80)\n"
        f"at 70 % of peak ({result['rate_at_70pct']:.0f} req/s): "
        f"p99 {result['p99_ms_at_70pct']:.2f} ms "
        f"(bare {result['baseline_p99_ms_at_70pct']:.2f} ms; target <= 10 ms; inside the "
        f"service p99 <= {result['in_service_p99_ms_at_70pct_le']:g} ms, of which the "
        f"write-ahead log's group fsync p99 <= {result['wal_fsync_p99_ms_at_70pct_le']:g} ms, "
        f"{result['clicks_per_fsync_at_70pct']:g} clicks per fsync)\n"
        f"broker stopped: {result['broker_down_requests']} requests, "
        f"{result['broker_down_non_302']} not answered 302 (target 0)"
    )
    if args.json:
        print(json.dumps(result))
    ok = result["events_produced"] >= result["answered_302"] and not result["broker_down_non_302"]
    return 0 if ok else 1
