"""The clicks service on a Redis at its memory limit (``maxmemory``, noeviction): a link
read from Redis is still redirected (the lookup was a MULTI, which Redis refuses at its
limit, reads and all: every link not in a process's cache answered 503), and a link
that cannot be created is a 503 to retry, not a 500."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from afflux.cli.embedded import start_redis
from afflux.cli.processes import free_port
from afflux.clicks.app import create_app
from afflux.shared.core.terms import CampaignTerms

from .conftest import ADMIN, BROWSER, clicks_settings, client_for, create_link, wait_for_campaign

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("clicks-oom")
    port = free_port()
    server = start_redis(port, work / "data", work)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.stop()


async def _app(
    infra: Any, url: str, campaign: CampaignTerms, tmp: pytest.TempPathFactory
) -> FastAPI:
    return create_app(clicks_settings(infra, tmp.mktemp("clicks"), redis_url=url))


@pytest.fixture
async def full_redis(own_redis: str) -> AsyncIterator[Redis[bytes]]:
    redis: Redis[bytes] = Redis.from_url(own_redis)
    try:
        yield redis
    finally:
        await redis.config_set("maxmemory", 0)
        await redis.aclose()  # type: ignore[attr-defined]


async def _at_the_limit(redis: Redis[bytes]) -> None:
    used = int((await redis.info("memory"))["used_memory"])
    await redis.config_set("maxmemory", used)
    with pytest.raises(ResponseError):  # the limit reached: writes refused
        await redis.set("afx:probe", "x" * 10_000)


async def test_a_link_is_redirected_and_a_new_one_refused_with_503(
    infra: Any,
    own_redis: str,
    full_redis: Redis[bytes],
    campaign: CampaignTerms,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    first = await _app(infra, own_redis, campaign, tmp_path_factory)
    async with first.router.lifespan_context(first):
        await wait_for_campaign(first, campaign.campaign_id)
        async with client_for(first) as http:
            link = await create_link(http, campaign.campaign_id, "https://shop.example.com/p")
        for _ in range(600):  # its first start restores the links from the topic
            if await first.state.store.is_complete():
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the links were never restored")
    await _at_the_limit(full_redis)
    # A process that never saw the link: it reads it from Redis.
    second = await _app(infra, own_redis, campaign, tmp_path_factory)
    async with second.router.lifespan_context(second):
        await wait_for_campaign(second, campaign.campaign_id)
        async with client_for(second) as http:
            redirect = await http.get(f"/c/{link['code']}", headers={"User-Agent": BROWSER})
            body = {
                "affiliate_id": "another",
                "campaign_id": campaign.campaign_id,
                "destination_url": "https://shop.example.com/q",
            }
            created = await http.post("/v1/links", json=body, headers=ADMIN)

    assert redirect.status_code == 302, redirect.text
    assert redirect.headers["location"].startswith("https://shop.example.com/p")
    assert created.status_code == 503, created.text
    assert created.headers["retry-after"] == "1"
    assert created.json()["detail"] == [
        {"field": None, "reason": "redis cannot take writes now, retry"}
    ]
