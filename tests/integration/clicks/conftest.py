"""The clicks app in-process against the session's real broker and Redis (DB 1)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import FastAPI

from afflux.clicks.app import create_app
from afflux.clicks.settings import ClicksSettings
from afflux.shared.core.terms import CampaignTerms
from afflux.shared.io.campaign_publish import publish_terms
from afflux.shared.io.kafka import stop_consumer, topic_partitions
from afflux.shared.topics import CLICKS

ADMIN_TOKEN = "clicks-admin-token"
IP_SECRET = "clicks-ip-secret"
PUBLIC_URL = "https://go.example.test"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def shop_terms(campaign_id: str) -> CampaignTerms:
    return CampaignTerms.model_validate(
        {
            "campaign_id": campaign_id,
            "merchant_id": "merchant-clicks",
            "currency": "EUR",
            "allowed_domains": ["shop.example.com"],
        }
    )


@pytest.fixture(scope="package")
async def campaign(infra: Any) -> CampaignTerms:
    terms = shop_terms(unique("clicks-shop"))
    await publish_terms(infra.kafka_bootstrap, [(terms, 0)])
    return terms


def clicks_settings(infra: Any, data_dir: Path, **overrides: Any) -> ClicksSettings:
    values: dict[str, Any] = {
        "kafka_bootstrap": infra.kafka_bootstrap,
        "redis_url": infra.redis_url.rsplit("/", 1)[0] + "/1",
        "admin_token": ADMIN_TOKEN,
        "data_dir": str(data_dir),
        "clicks_public_url": PUBLIC_URL,
        "clicks_ip_hash_secret": IP_SECRET,
        "clicks_trusted_proxies": "10.0.0.0/8",
        "clicks_duplicate_window_s": 30,
        # Every test's client is 127.0.0.1: the rate check gets an app of its own.
        "clicks_ip_rate_per_minute": 0,
    }
    values.update(overrides)
    return ClicksSettings.model_validate(values)


async def wait_for_campaign(app: FastAPI, campaign_id: str) -> None:
    directory = app.state.directory
    await asyncio.wait_for(directory.ready.wait(), 30)
    for _ in range(400):
        if campaign_id in directory:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"campaign {campaign_id} never reached the clicks service")


@pytest.fixture(scope="package")
async def clicks_app(
    infra: Any, campaign: CampaignTerms, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[FastAPI]:
    app = create_app(clicks_settings(infra, tmp_path_factory.mktemp("clicks")))
    async with app.router.lifespan_context(app):
        await wait_for_campaign(app, campaign.campaign_id)
        yield app


def client_for(app: FastAPI, client_ip: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(client_ip, 50_000))
    return httpx.AsyncClient(
        transport=transport, base_url="http://clicks", headers={"User-Agent": BROWSER}
    )


@pytest.fixture
async def client(clicks_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(clicks_app) as http:
        yield http


ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def create_link(
    http: httpx.AsyncClient, campaign_id: str, destination: str, **extra: Any
) -> dict[str, Any]:
    body = {
        "affiliate_id": extra.pop("affiliate_id", unique("creator")),
        "campaign_id": campaign_id,
        "destination_url": destination,
        **extra,
    }
    response = await http.post("/v1/links", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


@dataclass
class ClickWatch:
    """Every event on the clicks topic, read incrementally up to the fetch high watermarks."""

    consumer: AIOKafkaConsumer
    events: list[dict[str, Any]] = field(default_factory=list)
    keys: list[bytes | None] = field(default_factory=list)
    consumed: dict[TopicPartition, int] = field(default_factory=dict)

    async def settle(self, quiet_rounds: int = 3) -> None:
        quiet = 0
        while quiet < quiet_rounds:
            batches = await self.consumer.getmany(timeout_ms=100, max_records=10_000)
            for tp, records in batches.items():
                for record in records:
                    parsed = json.loads(record.value or b"null")
                    for event in parsed if isinstance(parsed, list) else [parsed]:
                        self.events.append({**event, "_partition": tp.partition})
                        self.keys.append(record.key)
                    self.consumed[tp] = record.offset + 1
            caught_up = all(
                self.consumer.highwater(tp) is not None
                and self.consumed.get(tp, 0) >= (self.consumer.highwater(tp) or 0)
                for tp in self.consumer.assignment()
            )
            quiet = quiet + 1 if caught_up and not batches else 0

    async def click(self, click_id: str, timeout_s: float = 20.0) -> dict[str, Any]:
        """The event of ``click_id``, waiting for the shipper to deliver it."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            for event in self.events:
                if event.get("click_id") == click_id:
                    return event
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"click {click_id} never reached the clicks topic")
            await self.settle(quiet_rounds=1)
            await asyncio.sleep(0.05)


async def watch_clicks(bootstrap: str) -> ClickWatch:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None, fetch_max_wait_ms=10
    )
    await consumer.start()
    partitions = await topic_partitions(consumer, CLICKS.name)
    consumer.assign(partitions)
    for tp in partitions:
        consumer.seek(tp, 0)
    return ClickWatch(consumer)


@pytest.fixture(scope="package")
async def clicks_topic(infra: Any) -> AsyncIterator[ClickWatch]:
    watch = await watch_clicks(infra.kafka_bootstrap)
    try:
        yield watch
    finally:
        await stop_consumer(watch.consumer)


def click_id_of(location: str) -> str:
    return location.split("afx_click=", 1)[1].split("&", 1)[0].split("#", 1)[0]
