"""An acknowledged click is never lost and tracking links survive a Redis loss.

The clicks service runs as a process against a broker and a Redis this module
starts. Faults are timed by progress (after N more 302s), never by sleeps:

- kill -9 of the clicks service under load, and again while the broker is
  stalled (SIGSTOP): every click id answered with a 302 is on the ``clicks``
  topic exactly once after the restarts;
- Redis flushed (while the broker stalls, so the rebuild is visible) and Redis
  killed and restarted empty: /healthz is 503 while links are being restored,
  then every link resolves again and a deactivated one stays 404.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from redis.asyncio import Redis

from afflux.cli.brokers import BrokerKind, start_chosen_broker
from afflux.cli.embedded import start_redis
from afflux.cli.processes import Child, free_port, stall
from afflux.shared.core.terms import CampaignTerms
from afflux.shared.io.campaign_publish import publish_terms
from afflux.shared.io.http import tls as oneshot
from afflux.shared.io.kafka import create_topics, topic_partitions
from afflux.shared.topics import CLICKS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ADMIN = {"Authorization": "Bearer durability-admin-token"}
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0"
CAMPAIGN = "durability-shop"
PROGRESS = 300  # acknowledged clicks between two faults


@dataclass
class ClickStack:
    work: Path
    broker: Child
    redis: Child
    redis_port: int
    bootstrap: str
    port: int = field(default_factory=free_port)
    clicks: Child | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/1"

    def start_clicks(self) -> None:
        env = {
            "AFFLUX_KAFKA_BOOTSTRAP": self.bootstrap,
            "AFFLUX_REDIS_URL": self.redis_url,
            "AFFLUX_CLICKS_PORT": str(self.port),
            "AFFLUX_ADMIN_TOKEN": ADMIN["Authorization"].split()[1],
            "AFFLUX_CLICKS_IP_HASH_SECRET": "durability-secret",
            "AFFLUX_CLICKS_SEND_TIMEOUT_MS": "1000",
            "AFFLUX_CLICKS_RETRY_MS": "200",
            "AFFLUX_CLICKS_IP_RATE_PER_MINUTE": "0",
            "AFFLUX_DATA_DIR": str(self.work / "data"),
            "AFFLUX_LOG_LEVEL": "INFO",
        }
        argv = [sys.executable, "-m", "afflux.clicks"]
        self.clicks = Child("clicks", argv, self.work / "logs/clicks.log", env=env).start()
        self.clicks.wait_until(lambda: self.health() == 200, timeout_s=60)

    def health(self) -> int:
        try:
            return oneshot.get(f"{self.url}/healthz", timeout=1).status_code
        except httpx.HTTPError:
            return 0

    def kill_clicks(self) -> None:
        assert self.clicks is not None
        self.clicks.kill()

    def restart_redis_empty(self) -> None:
        self.redis.kill()
        self.redis = start_redis(self.redis_port, self.work / "redis-2", self.work / "logs")


@pytest.fixture
async def stack(tmp_path: Path, broker_kind: BrokerKind) -> AsyncIterator[ClickStack]:
    broker_port, redis_port = free_port(), free_port()
    broker = start_chosen_broker(broker_kind, broker_port, tmp_path)
    redis = start_redis(redis_port, tmp_path / "redis", tmp_path / "logs")
    bootstrap = f"127.0.0.1:{broker_port}"
    built = ClickStack(tmp_path, broker, redis, redis_port, bootstrap)
    try:
        await create_topics(bootstrap, 4)
        terms = CampaignTerms(
            campaign_id=CAMPAIGN,
            merchant_id="merchant-durability",
            currency="EUR",
            allowed_domains=("shop.example.com",),
        )
        await publish_terms(bootstrap, [(terms, 0)])
        await asyncio.to_thread(built.start_clicks)
        yield built
    finally:
        if built.clicks is not None:
            built.clicks.stop()
        os.kill(broker.pid, signal.SIGCONT)  # never leave a stopped broker behind
        built.redis.stop()
        broker.stop()


async def create_link(http: httpx.AsyncClient, stack: ClickStack, code: str) -> None:
    body = {
        "affiliate_id": "creator-durability",
        "campaign_id": CAMPAIGN,
        "destination_url": f"https://shop.example.com/{code}",
        "code": code,
    }
    response = await http.post(f"{stack.url}/v1/links", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text


def click_id_of(location: str) -> str:
    return location.split("afx_click=", 1)[1].split("&", 1)[0].split("#", 1)[0]


async def until(condition: Callable[[], bool], what: str, timeout_s: float = 120) -> None:
    """Poll ``condition`` (progress, not time, decides when a fault happens)."""
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.01)
    assert condition(), what


class Load:
    """Visitors clicking one link; every 302's click id is an acknowledged click."""

    def __init__(self, url: str, connections: int = 16) -> None:
        self.url = url
        self.connections = connections
        self.acknowledged: list[str] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._visitor()) for _ in range(self.connections)]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def more(self, count: int) -> None:
        """Return once ``count`` more clicks were acknowledged."""
        target = len(self.acknowledged) + count
        await until(lambda: len(self.acknowledged) >= target, f"{count} more 302s")

    async def _visitor(self) -> None:
        async with httpx.AsyncClient(timeout=10, headers={"User-Agent": BROWSER}) as http:
            while not self._stop.is_set():
                try:
                    answer = await http.get(self.url)
                except httpx.HTTPError:
                    await asyncio.sleep(0.01)  # the service is down: try again
                    continue
                if answer.status_code == 302:
                    self.acknowledged.append(click_id_of(answer.headers["location"]))


async def click_ids_on_topic(
    bootstrap: str, wanted: set[str], timeout_s: float = 120
) -> Counter[str]:
    """How often each click id is on the topic, read to the fetch high watermark until every
    wanted id arrived (or ``timeout_s``) and nothing more comes."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=20
    )
    await consumer.start()
    seen: Counter[str] = Counter()
    try:
        partitions = await topic_partitions(consumer, CLICKS.name)
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, 0)
        consumed: dict[TopicPartition, int] = {}
        quiet = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while quiet < 5:
            batches = await consumer.getmany(timeout_ms=100, max_records=10_000)
            for tp, records in batches.items():
                for record in records:
                    consumed[tp] = record.offset + 1
                    parsed = json.loads(record.value or b"null")
                    for event in parsed if isinstance(parsed, list) else [parsed]:
                        seen[event["click_id"]] += 1
            caught_up = all(
                (high := consumer.highwater(tp)) is not None and consumed.get(tp, 0) >= high
                for tp in partitions
            )
            complete = wanted <= seen.keys() or loop.time() > deadline
            quiet = quiet + 1 if caught_up and complete and not batches else 0
        return seen
    finally:
        await consumer.stop()


async def test_every_acknowledged_click_survives_kill_9_under_load_and_in_a_broker_stall(
    stack: ClickStack,
) -> None:
    async with httpx.AsyncClient() as http:
        await create_link(http, stack, "durable-1")
    load = Load(f"{stack.url}/c/durable-1")
    load.start()
    try:
        await load.more(PROGRESS)
        stack.kill_clicks()  # under load, the broker taking everything
        await asyncio.to_thread(stack.start_clicks)
        await load.more(PROGRESS)

        stall(stack.broker.pid)
        try:
            await load.more(PROGRESS)  # answered while the broker takes nothing
            stack.kill_clicks()
        finally:
            os.kill(stack.broker.pid, signal.SIGCONT)
        await asyncio.to_thread(stack.start_clicks)
        await load.more(PROGRESS)
    finally:
        await load.stop()

    acknowledged = set(load.acknowledged)
    assert len(acknowledged) == len(load.acknowledged)  # click ids are unique
    on_topic = await click_ids_on_topic(stack.bootstrap, acknowledged)
    assert sorted(acknowledged - on_topic.keys()) == []  # none lost
    assert {c: n for c, n in on_topic.items() if n > 1} == {}  # none twice


async def test_links_are_restored_after_redis_is_flushed_or_restarted_empty(
    stack: ClickStack,
) -> None:
    codes = [f"keep-{n}" for n in range(5)]
    async with httpx.AsyncClient(timeout=10, headers={"User-Agent": BROWSER}) as http:
        for code in [*codes, "gone"]:
            await create_link(http, stack, code)
        deleted = await http.delete(f"{stack.url}/v1/links/gone", headers=ADMIN)
        assert deleted.status_code == 200

        async def resolved() -> dict[str, int]:
            answers = {}
            for code in [*codes, "gone"]:
                answers[code] = (await http.get(f"{stack.url}/c/{code}")).status_code
            return answers

        expected = {**dict.fromkeys(codes, 302), "gone": 404}
        assert await resolved() == expected

        # Flushed: with the broker stalled the restore cannot finish, so it can be watched.
        redis: Redis[bytes] = Redis.from_url(stack.redis_url)
        try:
            stall(stack.broker.pid)
            try:
                await redis.flushall()
                await until(lambda: stack.health() == 503, "/healthz 503 while restoring")
            finally:
                os.kill(stack.broker.pid, signal.SIGCONT)
            await until(lambda: stack.health() == 200, "/healthz 200 once restored")
            stored = await redis.get("afx:clicks:link:keep-0")
            assert stored is not None
            assert json.loads(stored)["active"] is True
        finally:
            await redis.aclose()  # type: ignore[attr-defined]
        assert await resolved() == expected

        # Killed and restarted without persistence, then a fresh clicks process as well.
        stack.restart_redis_empty()
        await until(lambda: stack.health() == 200, "/healthz 200 after Redis came back")
        assert await resolved() == expected
        stack.kill_clicks()
        stack.restart_redis_empty()
        await asyncio.to_thread(stack.start_clicks)
        assert await resolved() == expected
