"""The orders app in-process against the session's real broker and Redis (DB 2)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import FastAPI

from afflux.orders.app import create_app
from afflux.orders.settings import OrdersSettings
from afflux.orders.signing import MERCHANT_HEADER, SIGNATURE_HEADER, sign_call
from afflux.shared.core.terms import CampaignTerms
from afflux.shared.io.campaign_publish import publish_terms
from afflux.shared.io.kafka import stop_consumer, topic_partitions
from afflux.shared.topics import ALL_TOPICS, DLQ

ADMIN_TOKEN = "orders-admin-token"
SECRETS = {
    "merchant-a": ["a-secret-old", "a-secret-new"],
    "merchant-b": ["b-secret"],
}


@dataclass(frozen=True)
class Campaigns:
    shop: CampaignTerms  # merchant-a, EUR, sales
    leads: CampaignTerms  # merchant-a, EUR, leads need confirmation
    other: CampaignTerms  # merchant-b, USD


@pytest.fixture(scope="package")
async def campaigns(infra: Any) -> Campaigns:
    suffix = uuid.uuid4().hex[:8]

    def terms(name: str, merchant: str, currency: str, **extra: Any) -> CampaignTerms:
        return CampaignTerms.model_validate(
            {
                "campaign_id": f"{name}-{suffix}",
                "merchant_id": merchant,
                "currency": currency,
                "plan": {"sale": {"rate": {"percent": "10"}}, "lead_minor": 500},
                **extra,
            }
        )

    made = Campaigns(
        shop=terms("orders-shop", "merchant-a", "EUR"),
        leads=terms("orders-leads", "merchant-a", "EUR", lead_confirmation_required=True),
        other=terms("orders-other", "merchant-b", "USD"),
    )
    await publish_terms(
        infra.kafka_bootstrap, [(t, 0) for t in (made.shop, made.leads, made.other)]
    )
    return made


def orders_settings(infra: Any, **overrides: Any) -> OrdersSettings:
    redis_url = infra.redis_url.rsplit("/", 1)[0] + "/2"
    values: dict[str, Any] = {
        "kafka_bootstrap": infra.kafka_bootstrap,
        "redis_url": redis_url,
        "admin_token": ADMIN_TOKEN,
        "merchant_secrets": json.dumps(SECRETS),
        "orders_produce_timeout_s": 5.0,
        "orders_max_body_bytes": 4096,
        "orders_max_batch_body_bytes": 1_000_000,
    }
    values.update(overrides)
    return OrdersSettings.model_validate(values)


@pytest.fixture(scope="package")
async def orders_app(infra: Any, campaigns: Campaigns) -> AsyncIterator[FastAPI]:
    app = create_app(orders_settings(infra))
    async with app.router.lifespan_context(app):
        directory = app.state.directory
        await asyncio.wait_for(directory.ready.wait(), 30)
        for _ in range(200):
            if campaigns.other.campaign_id in directory:
                break
            await asyncio.sleep(0.05)
        yield app


@pytest.fixture
async def client(orders_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=orders_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://orders") as http:
        yield http


def signed_headers(
    body: bytes,
    merchant: str = "merchant-a",
    secret: str | None = None,
    t: int | None = None,
    path: str = "/v1/orders",
) -> dict[str, str]:
    """Headers of a merchant's POST of ``body`` to ``path``, signed as that route signs."""
    chosen = secret if secret is not None else SECRETS.get(merchant, ["x"])[-1]
    now = t if t is not None else int(time.time())
    return {
        "Content-Type": "application/json",
        MERCHANT_HEADER: merchant,
        SIGNATURE_HEADER: sign_call("POST", path, body, chosen, now),
    }


def raw(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


async def post_signed(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], **sign_args: Any
) -> httpx.Response:
    content = raw(body)
    headers = signed_headers(content, path=path, **sign_args)
    return await client.post(path, content=content, headers=headers)


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class Api:
    """What a merchant's integration does: sign and send."""

    http: httpx.AsyncClient

    async def post(self, path: str, body: dict[str, Any], **sign_args: Any) -> httpx.Response:
        return await post_signed(self.http, path, body, **sign_args)

    headers = staticmethod(signed_headers)
    raw = staticmethod(raw)
    new_id = staticmethod(new_id)


@pytest.fixture
def api(client: httpx.AsyncClient) -> Api:
    return Api(client)


@dataclass
class TopicWatch:
    """Every record on every topic, read incrementally up to the fetch high watermarks."""

    consumer: AIOKafkaConsumer
    records: dict[str, list[tuple[bytes | None, bytes | None]]] = field(default_factory=dict)
    # Each record's headers, beside ``records``.
    headers: dict[str, list[tuple[tuple[str, bytes], ...]]] = field(default_factory=dict)
    consumed: dict[TopicPartition, int] = field(default_factory=dict)

    async def settle(self, quiet_rounds: int = 3) -> dict[str, int]:
        """Read until caught up with every partition; return the record count per topic."""
        quiet = 0
        while quiet < quiet_rounds:
            batches = await self.consumer.getmany(timeout_ms=100, max_records=5000)
            for tp, records in batches.items():
                for record in records:
                    self.records.setdefault(tp.topic, []).append((record.key, record.value))
                    self.headers.setdefault(tp.topic, []).append(tuple(record.headers))
                    self.consumed[tp] = record.offset + 1
            assigned = self.consumer.assignment()
            caught_up = all(
                (self.consumer.highwater(tp) is not None)
                and self.consumed.get(tp, 0) >= (self.consumer.highwater(tp) or 0)
                for tp in assigned
            )
            quiet = quiet + 1 if caught_up and not batches else 0
        return {topic: len(values) for topic, values in self.records.items()}

    async def written_since(self, counts: dict[str, int]) -> dict[str, int]:
        """How many records each topic but the dead-letter topic gained after ``counts``,
        read until caught up: ``{}`` when a request wrote nothing. Dead letters are left
        out: no request handler writes one, while the service's background consumers (the
        order-outcome index, under a group other tests' apps join and leave, so it reads
        again what it had not committed) dead-letter other tests' poison records at any
        time on the session's shared broker."""
        after = await self.settle()
        return {
            topic: n - counts.get(topic, 0)
            for topic, n in after.items()
            if topic != DLQ.name and n != counts.get(topic, 0)
        }

    def headers_since(
        self, counts: dict[str, int], topic: str
    ) -> list[tuple[tuple[str, bytes], ...]]:
        """The headers of each record that arrived on ``topic`` after ``counts``."""
        return self.headers.get(topic, [])[counts.get(topic, 0) :]

    def mentioning(self, counts: dict[str, int], text: str) -> list[tuple[str, bytes]]:
        """Every record, on any topic, that arrived after ``counts`` and holds ``text``:
        what a refused request published, unlike another test's records arriving late."""
        needle = text.encode()
        return [
            (topic, value)
            for topic, values in self.records.items()
            for _, value in values[counts.get(topic, 0) :]
            if value is not None and needle in value
        ]

    def since(self, counts: dict[str, int], topic: str) -> list[dict[str, Any]]:
        """Events (decoded JSON objects) that arrived on ``topic`` after ``counts``."""
        events: list[dict[str, Any]] = []
        for _, value in self.records.get(topic, [])[counts.get(topic, 0) :]:
            parsed = json.loads(value or b"null")
            events += parsed if isinstance(parsed, list) else [parsed]
        return events


@pytest.fixture(scope="package")
async def topics(infra: Any) -> AsyncIterator[TopicWatch]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=infra.kafka_bootstrap,
        enable_auto_commit=False,
        group_id=None,
        fetch_max_wait_ms=10,  # short polls: high watermarks stay fresh
    )
    await consumer.start()
    partitions = [tp for topic in ALL_TOPICS for tp in await topic_partitions(consumer, topic.name)]
    if not partitions:
        await stop_consumer(consumer)
        pytest.fail("no topic metadata on the session broker")
    consumer.assign(partitions)
    for tp in partitions:
        consumer.seek(tp, 0)
    try:
        yield TopicWatch(consumer)
    finally:
        await stop_consumer(consumer)
