"""A name that does not resolve for now is a failed attempt, tried again; only a name that
resolves to a refused address is dead-lettered as refused.

In production any failed lookup (the resolver restarting, a SERVFAIL, a name missing a
moment during a zone change) was taken for a refused address: the delivery went to the
dead letters at its first attempt, never tried again. The sender runs here on a real
Redis in production mode; the resolver (``socket.getaddrinfo``) answers from a script,
and no request is sent anywhere (``_post`` answers in the process).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from afflux.payouts.settings import PayoutsSettings
from afflux.payouts.webhooks import routes
from afflux.payouts.webhooks.delivery import Deliverer, DeliveryLimits
from afflux.payouts.webhooks.metrics import WebhookMetrics
from afflux.payouts.webhooks.policy import Endpoint
from afflux.payouts.webhooks.redis_store import Job, WebhookStore
from afflux.shared.io.clock_source import system_clock
from afflux.shared.io.http.problems import install_problem_handlers

pytestmark = pytest.mark.integration

NAME = "hooks.merchant.example"
PUBLIC = "93.184.215.14"
AGAIN = socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
NO_NAME = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
Answer = OSError | str  # what one lookup of NAME gives: an error, or an address


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> list[Answer]:
    """The answers to the next lookups of ``NAME``, in turn (the last one for good);
    other names (Redis's 127.0.0.1) are looked up as usual."""
    script: list[Answer] = []
    real = socket.getaddrinfo

    def lookup(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != NAME:
            return real(host, port, *args, **kwargs)
        answer = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(answer, OSError):
            raise answer
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answer, port))]

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    return script


@contextlib.asynccontextmanager
async def sending(
    redis: Redis[bytes], metrics: WebhookMetrics, max_attempts: int
) -> AsyncIterator[tuple[WebhookStore, list[str]]]:
    """A production sender (private addresses refused) on ``redis`` with one delivery
    scheduled to ``NAME``; yields the store and the URLs its requests went to."""
    store = WebhookStore(redis)
    endpoint = Endpoint(
        "ep-m", "merchant", "m-1", f"https://{NAME}/in", ("conversion.attributed",), "s" * 32, 0
    )
    await store.add(endpoint)
    now = system_clock()
    body = json.dumps({"type": "conversion.attributed", "timestamp": "t", "data": {}})
    job = Job("msg-1", "ep-m", "conversion.attributed", "ev-1", body, now, owner="merchant:m-1")
    await store.enqueue([(job, now)], now=now)
    limits = DeliveryLimits(
        max_attempts=max_attempts, retry_base_s=0.01, retry_cap_s=0.05, timeout_s=5
    )
    sender = Deliverer(
        store=store, metrics=metrics, limits=limits, clock=system_clock, wake=asyncio.Event()
    )
    sent: list[str] = []

    async def post(client: Any, url: str, *args: Any) -> tuple[int, str]:
        sent.append(url)
        return 204, ""

    sender._post = post  # type: ignore[method-assign]
    task = asyncio.create_task(sender.run())
    try:
        yield store, sent
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(check: Callable[[], Any], what: str, timeout_s: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await check():
        assert loop.time() < deadline, f"not within {timeout_s:.0f}s: {what}"
        await asyncio.sleep(0.02)


def count(metrics: WebhookMetrics, outcome: str) -> float:
    return float(metrics.deliveries.labels(outcome)._value.get())


async def test_a_name_that_does_not_resolve_for_a_while_is_tried_again_then_delivered(
    empty_redis: Redis[bytes], dns: list[Answer]
) -> None:
    dns += [AGAIN, NO_NAME, PUBLIC]
    metrics = WebhookMetrics(CollectorRegistry())
    async with sending(empty_redis, metrics, max_attempts=8) as (store, sent):

        async def settled() -> bool:
            return await store.pending() == 0

        await until(settled, "the delivery, once the name resolves")
        assert sent == [f"https://{NAME}/in"]
        assert await store.dead_letters("ep-m") == []
        assert (count(metrics, "retry_scheduled"), count(metrics, "refused")) == (2, 0)
        assert count(metrics, "delivered") == 1


async def test_a_name_that_never_resolves_is_dead_lettered_when_its_attempts_run_out(
    empty_redis: Redis[bytes], dns: list[Answer]
) -> None:
    dns.append(AGAIN)
    metrics = WebhookMetrics(CollectorRegistry())
    async with sending(empty_redis, metrics, max_attempts=3) as (store, sent):
        await until(
            lambda: store.dead_letters("ep-m"), "the dead letter, once the attempts ran out"
        )
        [letter] = await store.dead_letters("ep-m")
        assert (letter["attempts"], letter["reason"]) == (3, "3 attempts failed")
        assert letter["last_error"] == (
            f"LookupFailed: {NAME} did not resolve: [Errno -3] Temporary failure in name resolution"
        )
        assert sent == []
        assert (count(metrics, "retry_scheduled"), count(metrics, "refused")) == (2, 0)
        assert count(metrics, "dead_lettered") == 1


async def test_a_name_resolving_to_a_refused_address_is_still_refused_at_once(
    empty_redis: Redis[bytes], dns: list[Answer]
) -> None:
    dns.append("10.0.0.7")
    metrics = WebhookMetrics(CollectorRegistry())
    async with sending(empty_redis, metrics, max_attempts=8) as (store, sent):
        await until(lambda: store.dead_letters("ep-m"), "the refusal")
        [letter] = await store.dead_letters("ep-m")
        assert (letter["attempts"], letter["reason"]) == (
            1,
            f"refused: {NAME}: 10.0.0.7 is a private address",
        )
        # What the docs promise of every dead letter: the last error says why (it was "").
        assert letter["last_error"] == letter["reason"]
        assert sent == []
        assert count(metrics, "refused") == 1


async def test_registering_a_name_that_does_not_resolve_answers_422_naming_the_url(
    empty_redis: Redis[bytes], dns: list[Answer]
) -> None:
    """What the docs say: the name is checked when registered, and one that does not
    resolve cannot be (it answered 422 before; it must not become a 500)."""
    dns.append(AGAIN)
    settings = PayoutsSettings(
        env="production", admin_token="t" * 32, kafka_bootstrap="127.0.0.1:1"
    )
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(routes.router)
    app.state.settings, app.state.clock = settings, system_clock
    app.state.webhooks, app.state.directory = WebhookStore(empty_redis), None
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://admin",
        headers={"authorization": f"Bearer {'t' * 32}"},
    ) as api:
        answer = await api.post(
            "/v1/webhooks/endpoints",
            json={
                "owner_kind": "merchant",
                "owner_id": "m-1",
                "url": f"https://{NAME}/in",
                "event_types": ["conversion.attributed"],
            },
        )
    assert answer.status_code == 422, answer.text
    [problem] = answer.json()["detail"]
    assert problem["field"] == "url"
    assert "resolve" in problem["reason"]
    assert "Temporary failure in name resolution" in problem["reason"]
    assert await empty_redis.hlen("afx:{wh}:endpoints") == 0
