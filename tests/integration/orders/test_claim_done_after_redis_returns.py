"""An acknowledged order's claim ends done though Redis was away when it was to be marked,
so the order's lead confirmation is accepted, never a 404 "no such order": the done mark is
retried until Redis is back, and a claim that is gone is found in the order-outcome index."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from afflux.cli.embedded import start_redis
from afflux.cli.processes import Child, free_port
from afflux.orders.app import create_app
from afflux.orders.claims import ClaimStore, NewOrder
from afflux.orders.marks import DoneMarks, MarkMetrics

from .conftest import Api, orders_settings

pytestmark = pytest.mark.integration

# Short enough that, without the retried mark, the confirmation below outlives the pending
# claim (and reads the order as unknown) within its own wait for it (produce timeout + 2 s).
PENDING_S = 4.0
WITHIN_S = 20.0


def lead(campaign: str, order_id: str) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "campaign_id": campaign,
        "occurred_at": int(time.time() * 1000),
        "kind": "lead",
        "visitor_id": Api.new_id("v"),
    }


async def until(check: Callable[[], Awaitable[Any]], what: str) -> Any:
    deadline = time.monotonic() + WITHIN_S
    while not (found := await check()):
        assert time.monotonic() < deadline, f"{what} not within {WITHIN_S} s"
        await asyncio.sleep(0.05)
    return found


def kill_before_done_marks(claims: ClaimStore, server: Child) -> asyncio.Event:
    """Redis killed (-9) right before the first done mark runs, after the broker's ack
    (the mark runs after the 202 too: the returned event is set once Redis is dead)."""
    mark, killed = claims.mark_done, asyncio.Event()

    async def mark_after_kill(orders: Sequence[NewOrder]) -> None:
        if not killed.is_set():
            await asyncio.to_thread(server.kill)
            killed.set()
        await mark(orders)

    claims.mark_done = mark_after_kill  # type: ignore[method-assign]
    return killed


async def follows(app: FastAPI, campaign: str) -> None:
    directory = app.state.directory
    await asyncio.wait_for(directory.ready.wait(), 30)

    async def known() -> bool:
        return campaign in directory

    await until(known, f"campaign {campaign}")


async def test_a_done_mark_redis_missed_is_retried_once_it_is_back_and_the_lead_confirms(
    infra: Any, campaigns: Any, tmp_path: Path
) -> None:
    port = free_port()
    data = tmp_path / "redis"
    server = start_redis(port, data, tmp_path, aof=True)
    settings = orders_settings(
        infra,
        redis_url=f"redis://127.0.0.1:{port}/0",
        orders_pending_s=PENDING_S,
        orders_outcome_index=False,  # the retried mark alone, not the index's fallback
    )
    app = create_app(settings)
    campaign, order_id = campaigns.leads.campaign_id, Api.new_id("lead")
    redis: Redis = Redis(port=port)
    try:
        async with app.router.lifespan_context(app):
            await follows(app, campaign)
            ingestor = app.state.ingestor
            killed = kill_before_done_marks(ingestor.claims, server)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://orders") as http:
                api = Api(http)

                placed = await api.post("/v1/orders", lead(campaign, order_id))
                assert placed.status_code == 202, placed.text
                await asyncio.wait_for(killed.wait(), WITHIN_S)
                server = await asyncio.to_thread(start_redis, port, data, tmp_path, aof=True)
                confirmed = await api.post(
                    f"/v1/leads/{order_id}/confirm", {"campaign_id": campaign}
                )

            assert confirmed.status_code == 202, confirmed.text
            claim = ingestor.claims.order_key(campaign, order_id)
            assert await redis.hget(claim, "state") == b"done"
            registry = app.state.metrics.registry

            async def retried_once() -> bool:
                labels = {"outcome": "retried"}
                return registry.get_sample_value("afflux_order_claim_marks_total", labels) == 1

            await until(retried_once, "the retried mark counted")
    finally:
        await redis.aclose()
        server.stop()


async def test_a_renewal_number_redis_lost_before_its_done_mark_is_not_taken_again(
    infra: Any, campaigns: Any, topics: Any, tmp_path: Path
) -> None:
    """Redis killed before a renewal's done mark and started again with nothing (no
    append-only file): the retried mark writes the renewal's claim and the key of its
    number, so the same number under another renewal order id is still a 409, not a
    second renewal paid."""
    port = free_port()
    data = tmp_path / "redis"
    server = start_redis(port, data, tmp_path, aof=False)
    settings = orders_settings(
        infra, redis_url=f"redis://127.0.0.1:{port}/0", orders_outcome_index=False
    )
    app = create_app(settings)
    campaign, first = campaigns.shop.campaign_id, Api.new_id("sub")
    renewal = {
        "order_id": first,
        "renewal_number": 2,
        "renewal_order_id": f"{first}-r2",
        "campaign_id": campaign,
        "occurred_at": int(time.time() * 1000),
        "amount_minor": 1999,
        "currency": "EUR",
    }
    redis: Redis = Redis(port=port)
    try:
        async with app.router.lifespan_context(app):
            await follows(app, campaign)
            claims = app.state.ingestor.claims
            killed = kill_before_done_marks(claims, server)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://orders") as http:
                api = Api(http)

                accepted = await api.post("/v1/renewals", renewal)
                assert accepted.status_code == 202, accepted.text
                await asyncio.wait_for(killed.wait(), WITHIN_S)
                server = await asyncio.to_thread(start_redis, port, data, tmp_path, aof=False)
                claim = claims.order_key(campaign, f"{first}-r2")

                async def written_again() -> bool:
                    return await redis.hget(claim, "state") == b"done"

                await until(written_again, "the renewal's claim written again")
                before = await topics.settle()
                again = await api.post(
                    "/v1/renewals", renewal | {"renewal_order_id": f"{first}-again"}
                )
                retried = await api.post("/v1/renewals", renewal)

            assert again.status_code == 409, again.text
            [detail] = again.json()["detail"]
            assert (detail["field"], f"{first}-r2" in detail["reason"]) == ("renewal_number", True)
            assert (retried.status_code, retried.json()["status"]) == (200, "duplicate")
            assert await topics.written_since(before) == {}
    finally:
        await redis.aclose()
        server.stop()


async def test_a_lead_whose_claim_is_gone_confirms_from_the_order_outcome_index(
    orders_app: FastAPI, api: Api, campaigns: Any
) -> None:
    campaign, order_id = campaigns.leads.campaign_id, Api.new_id("lead")
    assert (await api.post("/v1/orders", lead(campaign, order_id))).status_code == 202
    index, claims = orders_app.state.outcome_index, orders_app.state.ingestor.claims

    async def indexed() -> bool:
        return campaign in await index.events([campaign], order_id)

    await until(indexed, "the order in the outcome index")
    # As when its done mark was given up and its pending claim expired, or Redis
    # restarted on a file that missed the claim.
    await orders_app.state.redis.delete(claims.order_key(campaign, order_id))

    confirmed = await api.post(f"/v1/leads/{order_id}/confirm", {"campaign_id": campaign})
    answer = {"campaign_id": campaign, "handle": "@DeeStyle"}
    survey = await api.post(f"/v1/orders/{order_id}/survey", answer)

    assert confirmed.status_code == 202, confirmed.text
    claim = await orders_app.state.redis.hgetall(claims.order_key(campaign, order_id))
    assert (claim[b"state"], claim[b"kind"], claim[b"confirmed"]) == (b"done", b"lead", b"done")
    assert survey.status_code == 202, survey.text


async def test_marks_past_the_bound_and_those_waiting_at_shutdown_are_given_up() -> None:
    redis: Redis = Redis(port=free_port(), socket_connect_timeout=1)  # nobody listens
    claims = ClaimStore(redis, "afx:marks", pending_ms=1_000, ttl_s=60)
    registry = CollectorRegistry()
    marks = DoneMarks(claims, MarkMetrics(registry), max_undone=1)
    orders = [NewOrder("c", order_id, "k", 100, "sale") for order_id in ("o1", "o2")]

    def given_up() -> float | None:
        return registry.get_sample_value("afflux_order_claim_marks_total", {"outcome": "given_up"})

    try:
        await marks.mark(orders)
        assert (marks.undone, given_up()) == (1, 1)

        await marks.close()
        assert (marks.undone, given_up()) == (0, 2)
    finally:
        await redis.aclose()


@pytest.mark.parametrize(
    "lost",
    [
        "claim and number",  # Redis restarted on a file that missed the reservation
        "number only",  # the number's key alone gone (evicted, or expired first)
    ],
)
async def test_the_first_done_mark_writes_a_renewal_number_redis_lost_since_the_claim(
    orders_app: FastAPI,
    api: Api,
    campaigns: Any,
    topics: Any,
    monkeypatch: pytest.MonkeyPatch,
    lost: str,
) -> None:
    """What Redis lost between a renewal's reservation and its first done mark is written
    again by that mark, as by a retried one: the first mark only marked a claim that was
    still there, so the same number was then accepted under another renewal order id and
    paid twice."""
    campaign, first = campaigns.shop.campaign_id, Api.new_id("sub")
    ingestor = orders_app.state.ingestor
    claims, redis = ingestor.claims, orders_app.state.redis
    renewal = {
        "order_id": first,
        "renewal_number": 2,
        "renewal_order_id": f"{first}-r2",
        "campaign_id": campaign,
        "occurred_at": int(time.time() * 1000),
        "amount_minor": 1999,
        "currency": "EUR",
    }
    number_key = claims.renewal_number_key(campaign, first, 2)
    first_mark = ingestor.marks.mark

    async def mark_after_loss(orders: Sequence[NewOrder]) -> None:
        gone = [number_key] + (
            [claims.order_key(campaign, f"{first}-r2")] * (lost != "number only")
        )
        assert await redis.delete(*gone) == len(gone)
        await first_mark(orders)

    monkeypatch.setattr(ingestor.marks, "mark", mark_after_loss)
    accepted = await api.post("/v1/renewals", renewal)
    assert accepted.status_code == 202, accepted.text
    monkeypatch.undo()
    before = await topics.settle()

    again = await api.post("/v1/renewals", renewal | {"renewal_order_id": f"{first}-again"})
    retried = await api.post("/v1/renewals", renewal)

    assert again.status_code == 409, again.text
    [detail] = again.json()["detail"]
    assert (detail["field"], f"{first}-r2" in detail["reason"]) == ("renewal_number", True)
    assert (retried.status_code, retried.json()["status"]) == (200, "duplicate")
    assert await redis.get(number_key) == f"{first}-r2".encode()
    assert await topics.written_since(before) == {}
