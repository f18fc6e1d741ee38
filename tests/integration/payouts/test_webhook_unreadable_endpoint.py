"""One endpoint record this version cannot read costs that endpoint alone.

A record with a field a newer version writes (a rolling deploy, a rollback) or damaged
made routing raise for every event of its owners: the event went to the dead-letter
topic, the deliveries to the other owners' healthy endpoints with it, and the admin
API's list answered 500. Real Redis, store, routing and admin API.
"""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from test_webhooks import conversion, directory_of, new_program

from afflux.payouts.settings import PayoutsSettings
from afflux.payouts.webhooks import routes
from afflux.payouts.webhooks.metrics import WebhookMetrics
from afflux.payouts.webhooks.policy import Endpoint
from afflux.payouts.webhooks.redis_store import ENDPOINTS, WebhookStore, dead_key, owner_key
from afflux.payouts.webhooks.routing import jobs_for
from afflux.shared.io.clock_source import system_clock
from afflux.shared.io.http.problems import install_problem_handlers

pytestmark = pytest.mark.integration

TOKEN = "t" * 32
TYPES = ("conversion.attributed",)


async def newer_record(redis: Redis[bytes], endpoint_id: str) -> None:
    """The endpoint's record as a later version writes it: one field more."""
    raw = await redis.hget(ENDPOINTS, endpoint_id)
    assert raw is not None
    await redis.hset(ENDPOINTS, endpoint_id, json.dumps(json.loads(raw) | {"paused": False}))


def admin_api(store: WebhookStore) -> httpx.AsyncClient:
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(routes.router)
    settings = PayoutsSettings(admin_token=TOKEN, kafka_bootstrap="127.0.0.1:1")
    app.state.settings, app.state.clock = settings, system_clock
    app.state.webhooks, app.state.directory = store, None
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://admin",
        headers={"authorization": f"Bearer {TOKEN}"},
    )


def unreadable(metrics: WebhookMetrics, step: str) -> float:
    return float(metrics.unreadable_endpoints.labels(step)._value.get())


async def test_an_events_other_endpoints_get_their_deliveries(empty_redis: Redis[bytes]) -> None:
    program = new_program(creators=1)
    metrics = WebhookMetrics(CollectorRegistry())
    store = WebhookStore(empty_redis, metrics=metrics)
    merchant, creator = program.merchant, program.creators[0]
    await store.add(Endpoint("ep-m", "merchant", merchant, "https://m.example/", TYPES, "s", 0))
    await store.add(Endpoint("ep-c", "affiliate", creator, "https://c.example/", TYPES, "s", 0))
    await store.add(Endpoint("ep-c2", "affiliate", creator, "https://c2.example/", TYPES, "s", 0))
    await newer_record(empty_redis, "ep-c")

    routed = await jobs_for(store, directory_of(program), [conversion(program, 0)], now=0)

    assert routed.failed == []  # nothing for the dead-letter topic
    assert sorted(job.endpoint_id for job in routed.jobs) == ["ep-c2", "ep-m"]
    assert routed.matched == {"conversion.attributed": 1}
    assert unreadable(metrics, "routing") == 1

    # The delivery side holds the unreadable endpoint's deliveries back, counted too.
    assert await store.get_many(["ep-c", "ep-m"]) == {"ep-c": None, "ep-m": await store.get("ep-m")}
    assert unreadable(metrics, "delivery") == 1


async def test_the_list_shows_an_unreadable_endpoint_as_such(empty_redis: Redis[bytes]) -> None:
    store = WebhookStore(empty_redis)
    await store.add(Endpoint("ep-m", "merchant", "m-1", "https://m.example/", TYPES, "s", 1))
    await store.add(Endpoint("ep-c", "affiliate", "c-1", "https://c.example/", TYPES, "s", 2))
    await newer_record(empty_redis, "ep-c")
    await empty_redis.hset(ENDPOINTS, "ep-x", b"not json")
    async with admin_api(store) as api:
        every = await api.get("/v1/webhooks/endpoints")
        merchants = await api.get(
            "/v1/webhooks/endpoints", params={"owner_kind": "merchant", "owner_id": "m-1"}
        )
    assert every.status_code == 200, every.text
    listed = every.json()["endpoints"]
    assert [(e["endpoint_id"], e.get("unreadable")) for e in listed] == [
        ("ep-m", None),
        ("ep-c", True),
        ("ep-x", True),
    ]
    assert "secret" not in json.dumps(listed)
    # Whose an unreadable record is cannot be told: it is listed under every filter.
    assert [e["endpoint_id"] for e in merchants.json()["endpoints"]] == ["ep-m", "ep-c", "ep-x"]


async def test_an_unreadable_endpoint_answers_409_and_can_still_be_removed(
    empty_redis: Redis[bytes],
) -> None:
    """Its own routes answered 500; and removing it, what the answer advises, needed the
    record read whole (its owner's set and queue)."""
    store = WebhookStore(empty_redis)
    await store.add(Endpoint("ep-c", "affiliate", "c-1", "https://c.example/", TYPES, "s", 2))
    await newer_record(empty_redis, "ep-c")
    await empty_redis.hset(ENDPOINTS, "ep-x", b"not json")

    async with admin_api(store) as api:
        shown = await api.get("/v1/webhooks/endpoints/ep-c")
        letters = await api.get("/v1/webhooks/endpoints/ep-c/dead-letters")
        removed = [
            (await api.delete(f"/v1/webhooks/endpoints/{e}")).status_code for e in ("ep-c", "ep-x")
        ]
        after = await api.get("/v1/webhooks/endpoints")

    assert (shown.status_code, shown.json()["detail"][0]["field"]) == (409, "endpoint_id"), (
        shown.text
    )
    assert "cannot be read by this version" in shown.json()["detail"][0]["reason"]
    assert letters.status_code == 409, letters.text
    assert removed == [204, 204]
    assert after.json()["endpoints"] == []
    assert await empty_redis.smembers(owner_key("affiliate", "c-1")) == set()


async def test_a_damaged_dead_letter_is_listed_as_unreadable(empty_redis: Redis[bytes]) -> None:
    store = WebhookStore(empty_redis)
    await store.add(Endpoint("ep-m", "merchant", "m-1", "https://m.example/", TYPES, "s", 1))
    await empty_redis.lpush(dead_key("ep-m"), b"not json", json.dumps({"reason": "5 attempts"}))

    async with admin_api(store) as api:
        letters = await api.get("/v1/webhooks/endpoints/ep-m/dead-letters")

    assert letters.status_code == 200, letters.text
    assert [e.get("reason", e.get("unreadable")) for e in letters.json()["dead_letters"]] == [
        "5 attempts",
        True,
    ]


async def test_removing_a_record_too_damaged_to_name_its_owner_frees_its_owners_limit(
    empty_redis: Redis[bytes],
) -> None:
    """Its id stayed in its owner's set, counted against the owner's endpoint limit for
    good: the owner could never add the endpoint again."""
    store = WebhookStore(empty_redis, max_endpoints_per_owner=1)
    await store.add(Endpoint("ep-c", "affiliate", "c-1", "https://c.example/", TYPES, "s", 2))
    await empty_redis.hset(ENDPOINTS, "ep-c", b"not json")

    async with admin_api(store) as api:
        removed = await api.delete("/v1/webhooks/endpoints/ep-c")

    assert removed.status_code == 204, removed.text
    assert await empty_redis.smembers(owner_key("affiliate", "c-1")) == set()
    await store.add(Endpoint("ep-d", "affiliate", "c-1", "https://c.example/", TYPES, "s", 2))
