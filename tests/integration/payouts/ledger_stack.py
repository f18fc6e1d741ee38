"""A broker, a Redis and the payouts service as a process, all of this test's own.

The ledger consumes whole topics, so the tests that run the service own their
broker: they can restart it (a memory broker restarted is a new, empty log) and
fill it without touching the session broker's topics.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from bounded_reads import bounded

from afflux.cli.embedded import start_broker, start_redis
from afflux.cli.processes import Child, free_port
from afflux.shared.core.terms import CampaignTerms
from afflux.shared.events import ConversionAttributed
from afflux.shared.io.campaign_publish import publish_terms
from afflux.shared.io.http import tls as oneshot
from afflux.shared.io.kafka import create_topics, new_producer
from afflux.shared.wire import encode

NOV_15 = 1_794_700_800_000  # 2026-11-15T00:00:00Z
GROUP = "afflux-payouts"
PARTITIONS = 4


def campaign_terms(campaign: str) -> CampaignTerms:
    return CampaignTerms.model_validate(
        {
            "campaign_id": campaign,
            "merchant_id": "m",
            "currency": "EUR",
            "plan": {"sale": {"rate": {"percent": "10"}}},
        }
    )


def conversion(campaign: str, order: str, affiliate: str, at: int = NOV_15) -> ConversionAttributed:
    return ConversionAttributed(
        event_id=f"ev-{order}",
        occurred_at=at,
        conversion_id=f"conv-{order}",
        order_id=order,
        campaign_id=campaign,
        affiliate_id=affiliate,
        reason="cookie",
        model="last_click",
        window_ms=1,
        terms_version=1,
        amount_minor=10_000,
        currency="EUR",
        order_event_id=f"oev-{order}",
    )


def renewal_of(
    first: ConversionAttributed, order: str, at: int, number: int = 1
) -> ConversionAttributed:
    """Renewal ``number`` of ``first``'s subscription, as the attribution worker sends it."""
    return first.model_copy(
        update={
            "event_id": f"ev-{order}",
            "occurred_at": at,
            "conversion_id": f"conv-{order}",
            "order_id": order,
            "order_event_id": f"oev-{order}",
            "kind": "renewal",
            "renewal_number": number,
            "first_order_id": first.order_id,
        }
    )


class LedgerStack:
    def __init__(self, work: Path, campaign: str, env: dict[str, str] | None = None) -> None:
        self.work = work
        self.campaign = campaign
        self.env = env or {}
        self.broker_port, self.redis_port, self.port = free_port(), free_port(), free_port()
        self.bootstrap = f"127.0.0.1:{self.broker_port}"
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.url = f"http://127.0.0.1:{self.port}"
        self.broker: Child | None = None
        self.redis: Child | None = None
        self.payouts: Child | None = None

    @property
    def log_dir(self) -> Path:
        return self.work / "logs"

    def start_broker(self) -> None:
        """A memory broker on this stack's port, topics created and the campaign's terms on."""
        self.broker = start_broker(self.broker_port, self.log_dir)
        asyncio.run(create_topics(self.bootstrap, PARTITIONS))
        asyncio.run(publish_terms(self.bootstrap, [(campaign_terms(self.campaign), 0)]))

    def restart_broker(self) -> None:
        """kill -9 the broker and start it again on memory storage: the same address, a new log."""
        assert self.broker is not None
        self.broker.kill()
        self.start_broker()

    def start(self) -> LedgerStack:
        self.redis = start_redis(self.redis_port, self.work / "redis", self.log_dir)
        self.start_broker()
        return self

    def start_payouts(self, timeout_s: float = 60) -> None:
        env = {
            "AFFLUX_KAFKA_BOOTSTRAP": self.bootstrap,
            "AFFLUX_REDIS_URL": self.redis_url,
            "AFFLUX_TOPIC_PARTITIONS": str(PARTITIONS),
            "AFFLUX_DATA_DIR": str(self.work / "data"),
            "AFFLUX_PAYOUTS_PORT": str(self.port),
            "AFFLUX_PAYOUTS_GROUP_ID": GROUP,
            **self.env,
        }
        argv = [sys.executable, "-m", "afflux.payouts"]
        self.payouts = Child("payouts", argv, self.log_dir / "payouts.log", env=env).start()
        self.payouts.wait_until(self.healthy, timeout_s=timeout_s)

    def healthy(self) -> bool:
        try:
            return oneshot.get(f"{self.url}/healthz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def log_text(self) -> str:
        return (self.log_dir / "payouts.log").read_text(errors="replace")

    def stop(self) -> None:
        for child in (self.payouts, self.broker, self.redis):
            if child is not None:
                child.stop()


@contextmanager
def running_payouts(
    work: Path, campaign: str, env: dict[str, str] | None = None
) -> Iterator[LedgerStack]:
    """A stack of its own with the payouts service started, all stopped on exit."""
    stack = LedgerStack(work, campaign, env).start()
    try:
        stack.start_payouts()
        yield stack
    finally:
        stack.stop()


async def produce(bootstrap: str, campaign: str, orders: Sequence[tuple[str, int]]) -> None:
    """One conversion per (order id, partition), each to the partition given, in order."""
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        sent = [
            await producer.send(
                "conversions",
                encode(conversion(campaign, order, f"creator-{n % 7}")),
                key=order.encode(),
                partition=partition,
            )
            for n, (order, partition) in enumerate(orders)
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[str, int]:
    """The group's committed offsets on ``topic`` as "topic|partition" -> offset."""
    return await bounded(
        lambda: _committed_offsets_once(bootstrap, group, topic), "the group's offsets"
    )


async def _committed_offsets_once(bootstrap: str, group: str, topic: str) -> dict[str, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        found = {}
        for partition in range(PARTITIONS):
            offset = await consumer.committed(TopicPartition(topic, partition))
            if offset is not None:
                found[f"{topic}|{partition}"] = offset
        return found
    finally:
        await consumer.stop()


def metric(text: str, name: str) -> float | None:
    """The sum of a metric's samples in Prometheus text (None: no sample)."""
    values = [
        float(m.group(1))
        for m in re.finditer(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", text, re.MULTILINE)
    ]
    return sum(values) if values else None


def until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout_s:.0f}s: {what}"
        time.sleep(0.2)


def stored_offsets(redis_url: str) -> dict[str, int]:
    """The next offset per "topic|partition" that the ledger stored."""
    import redis

    with redis.Redis.from_url(redis_url) as client:
        raw = client.hgetall("afx:pay:{ledger}:positions")
    return {k.decode()[2:]: int(v) for k, v in raw.items() if k.startswith(b"o:")}


def applied_orders(redis_url: str, campaign: str) -> set[str]:
    """The orders of ``campaign`` whose postings are in the journal."""
    import redis

    orders: set[str] = set()
    with redis.Redis.from_url(redis_url) as client:
        for key in client.scan_iter(match=f"afx:pay:{{p:{campaign}|*}}:journal:*"):
            for raw in client.zrange(key, 0, -1):
                order = json.loads(raw)["order_id"]
                if order:
                    orders.add(order)
    return orders
