"""Two orders instances publishing terms of one campaign at once never take the same
version number: a publication holds the campaign's lock in their shared Redis while it
reads the latest version and writes the next."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from afflux.orders.app import create_app
from afflux.orders.terms_publisher import LOCK_WAIT_S
from afflux.shared.io.campaign_publish import read_all_versions

from .conftest import orders_settings

pytestmark = pytest.mark.integration

ADMIN = {"Authorization": "Bearer orders-admin-token"}
EACH = 3  # publications per instance


def entry(campaign_id: str, percent: int) -> dict[str, Any]:
    # No effective_from: each version from its publication on (a later one may not start
    # before it: ``backdated_version``).
    return {
        "terms": {
            "campaign_id": campaign_id,
            "merchant_id": "merchant-a",
            "currency": "EUR",
            "plan": {"sale": {"rate": {"percent": str(percent)}}},
        },
    }


@pytest.fixture
async def instances(infra: Any) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Two orders apps, as two processes would be: each its own publisher, one Redis."""
    async with AsyncExitStack() as stack:
        clients = []
        for _ in range(2):
            app = create_app(orders_settings(infra))
            await stack.enter_async_context(app.router.lifespan_context(app))
            await asyncio.wait_for(app.state.directory.ready.wait(), 30)
            transport = httpx.ASGITransport(app=app)
            clients.append(
                await stack.enter_async_context(
                    httpx.AsyncClient(transport=transport, base_url="http://orders", timeout=60)
                )
            )
        yield clients


async def test_two_instances_publishing_one_campaign_at_once_take_every_version_once(
    infra: Any, instances: list[httpx.AsyncClient]
) -> None:
    campaign_id = f"race-{uuid.uuid4().hex[:8]}"
    percents = list(range(1, 2 * EACH + 1))

    answers = await asyncio.gather(
        *(
            instances[n % 2].put(
                f"/v1/campaigns/{campaign_id}", json=entry(campaign_id, p), headers=ADMIN
            )
            for n, p in enumerate(percents)
        )
    )

    assert [a.status_code for a in answers] == [201] * len(percents), [a.text for a in answers]
    assert sorted(a.json()["version"] for a in answers) == list(range(1, len(percents) + 1))
    history = (await read_all_versions(infra.kafka_bootstrap))[campaign_id]
    assert [v.version for v in history] == list(range(1, len(percents) + 1))
    kept = sorted(int(v.terms.plan.sale.rate.percent) for v in history)  # type: ignore[union-attr]
    assert kept == percents  # no publication's version lost to another's record


async def test_a_campaign_locked_past_the_wait_is_a_503_and_publishes_nothing(
    infra: Any, instances: list[httpx.AsyncClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign_id = f"held-{uuid.uuid4().hex[:8]}"
    settings = orders_settings(infra)
    redis: Redis = Redis.from_url(settings.redis_url)
    key = f"{settings.orders_redis_prefix}:terms-lock:{campaign_id}"
    monkeypatch.setattr("afflux.orders.terms_publisher.LOCK_WAIT_S", 0.3)
    try:
        await redis.set(key, "another-instance", px=10_000)
        held = await instances[0].put(
            f"/v1/campaigns/{campaign_id}", json=entry(campaign_id, 5), headers=ADMIN
        )
        assert await redis.get(key) == b"another-instance"  # never released by another
        await redis.delete(key)
        free = await instances[1].put(
            f"/v1/campaigns/{campaign_id}", json=entry(campaign_id, 5), headers=ADMIN
        )
    finally:
        await redis.aclose()
    assert held.status_code == 503, held.text
    assert "another publication of this campaign" in held.text
    assert (free.status_code, free.json()["version"]) == (201, 1)
    assert LOCK_WAIT_S >= 10  # the default leaves a real publication time enough
