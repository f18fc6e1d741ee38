"""A client's IP address never appears raw in a topic, a Redis key or value, or a log line."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis

from afflux.cli.demo_client import DemoClient
from afflux.cli.scenario_checks import read_topic
from afflux.cli.stack import Stack
from afflux.shared.campaign_file import load_campaign_file
from afflux.shared.core.money import Money
from afflux.shared.io.http import tls as oneshot
from afflux.shared.topics import ALL_TOPICS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CLIENT_IP = "203.0.113.77"  # TEST-NET-3: cannot be confused with anything the stack prints
CAMPAIGNS = Path(__file__).parents[3] / "examples" / "campaigns.yaml"


async def _traffic(stack: Stack, admin_token: str) -> int:
    terms = load_campaign_file(CAMPAIGNS).campaigns[0].terms
    clicks = 0
    async with DemoClient(
        stack.url("clicks"), stack.url("orders"), stack.url("payouts"), admin_token
    ) as client:
        code = await client.create_link(terms, "creator-ip")
        for n in range(20):
            response = await client.http.get(
                f"{stack.url('clicks')}/c/{code}",
                headers={"X-Forwarded-For": f"{CLIENT_IP}, 127.0.0.1"},
            )
            assert response.status_code == 302
            clicks += 1
            if n == 0:
                visitor = response.cookies["afx_vid"]
                await client.place_order(
                    terms,
                    order_id="ip-scan-1",
                    kind="sale",
                    amount=Money(5000, terms.currency),
                    visitor_id=visitor,
                )
    return clicks


async def _raw_topics(bootstrap: str) -> list[bytes]:
    values = []
    for topic in ALL_TOPICS:
        values += [
            event.model_dump_json().encode()
            for event in await read_topic(bootstrap, topic.name, idle_s=1.0)
        ]
    return values


def _redis_value(store: redis.Redis, key: bytes) -> bytes:
    """Every byte a key holds, read by type (DUMP would compress long strings)."""
    kind = store.type(key)
    parts: list[bytes] = []
    if kind == b"string":
        parts = [store.get(key) or b""]
    elif kind == b"hash":
        parts = [b for pair in store.hgetall(key).items() for b in pair]
    elif kind == b"list":
        parts = list(store.lrange(key, 0, -1))
    elif kind == b"set":
        parts = list(store.smembers(key))
    elif kind == b"zset":
        parts = [member for member, _ in store.zrange(key, 0, -1, withscores=True)]
    elif kind == b"stream":
        parts = [repr(entry).encode() for entry in store.xrange(key)]
    return b"\n".join(parts)


def test_client_ip_is_only_ever_stored_as_a_keyed_hash(stack: Stack, admin_token: str) -> None:
    assert asyncio.run(_traffic(stack, admin_token)) == 20
    asyncio.run(asyncio.sleep(3))
    needle = CLIENT_IP.encode()

    found = [v[:200] for v in asyncio.run(_raw_topics(stack.kafka_bootstrap)) if needle in v]
    assert found == [], "raw IP on a topic"

    for db in range(16):
        store = redis.Redis.from_url(stack.redis_url, db=db)
        for key in store.scan_iter(count=1000):
            assert needle not in key, f"raw IP in Redis key {key!r} (db {db})"
            assert needle not in _redis_value(store, key), f"raw IP in Redis {key!r} (db {db})"
        store.close()

    for log in stack.log_dir.glob("*.log"):
        for line in log.read_bytes().splitlines():
            assert needle not in line, f"raw IP in {log.name}: {line[:200]!r}"

    metrics = oneshot.get(f"{stack.url('clicks')}/metrics").text
    assert CLIENT_IP not in metrics
