"""A new link posted to a large audience is clicked by hundreds of visitors before its
first read from Redis returns: every one is redirected (none gets the 503 that means
Redis is away), and the link is read from Redis once, not once per visitor."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi import FastAPI

from afflux.clicks.links import Link, LinkCache, LinkStore
from afflux.shared.core.terms import CampaignTerms
from afflux.shared.io.redis_client import POOL_CONNECTIONS, single_server
from afflux.shared.settings import CommonSettings

from .conftest import client_for, create_link, unique

pytestmark = pytest.mark.integration
VISITORS = 300  # three times redis-py's default pool, which refused the 101st


class CountingStore(LinkStore):
    """The real store on the real Redis, counting its reads."""

    lookups = 0

    async def lookup(self, code: str) -> tuple[bool, Link | None]:
        self.lookups += 1
        return await super().lookup(code)


async def test_a_burst_of_visitors_on_a_new_link_is_all_redirected(
    clicks_app: FastAPI, campaign: CampaignTerms
) -> None:
    async with client_for(clicks_app) as http:
        link = await create_link(http, campaign.campaign_id, "https://shop.example.com/new")
        clicks_app.state.cache.forget(link["code"])
        answers = await asyncio.gather(*(http.get(f"/c/{link['code']}") for _ in range(VISITORS)))
    statuses = sorted({a.status_code for a in answers})
    assert statuses == [302], [a.text for a in answers if a.status_code != 302][:1]
    assert all("afx_click=" in a.headers["location"] for a in answers)


async def test_concurrent_misses_of_one_code_read_redis_once(
    clicks_app: FastAPI, campaign: CampaignTerms, infra: Any
) -> None:
    async with client_for(clicks_app) as http:
        link = await create_link(http, campaign.campaign_id, "https://shop.example.com/once")
    redis = single_server(clicks_app.state.settings.redis_url)
    try:
        store = CountingStore(redis, clicks_app.state.settings.clicks_redis_prefix)
        cache = LinkCache(store, max_entries=100)
        targets = await asyncio.gather(*(cache.load(link["code"]) for _ in range(VISITORS)))
        assert store.lookups == 1
        assert {t.link.code if t else None for t in targets} == {link["code"]}
        assert cache.cached(link["code"])[0]
        await cache.load(unique("no-such-code"))  # a later miss reads again
        assert store.lookups == 2
    finally:
        await redis.aclose()


async def test_a_waiting_visitor_who_leaves_does_not_cancel_the_others_read(
    clicks_app: FastAPI, campaign: CampaignTerms
) -> None:
    async with client_for(clicks_app) as http:
        link = await create_link(http, campaign.campaign_id, "https://shop.example.com/stay")
    redis = single_server(clicks_app.state.settings.redis_url)
    try:
        cache = LinkCache(LinkStore(redis, clicks_app.state.settings.clicks_redis_prefix), 100)
        first = asyncio.create_task(cache.load(link["code"]))
        second = asyncio.create_task(cache.load(link["code"]))
        await asyncio.sleep(0)
        first.cancel()
        target = await second
        assert target is not None
        assert target.link.code == link["code"]
        with pytest.raises(asyncio.CancelledError):
            await first
    finally:
        await redis.aclose()


async def test_as_many_concurrent_commands_as_requests_a_process_takes_each_get_a_connection(
    infra: Any,
) -> None:
    # Each BLPOP holds its connection for 50 ms, all at once.
    assert 2 * CommonSettings.model_fields["http_max_connections"].default <= POOL_CONNECTIONS
    redis = single_server(infra.redis_url)
    try:
        empty = unique("nothing-here")
        replies = await asyncio.gather(
            *(redis.blpop([empty], timeout=0.05) for _ in range(VISITORS))
        )
        assert replies == [None] * VISITORS
    finally:
        await redis.aclose()
