"""An id of a campaign is an order's or a renewal's, never both, on the real broker and
Redis: an order reusing a renewal's ``renewal_order_id`` as its ``order_id`` (sent alone,
in a batch, as an admin backfill or as a postback) is a 409 naming ``order_id``, and a
renewal reusing an order's id a 409 naming ``renewal_order_id``; neither produces
anything. Before, the order was answered "200 duplicate": the renewal's claim keeps no
order terms, so the order found nothing to compare, and the merchant read as recorded an
order that was never produced."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from afflux.orders.claims import ClaimStore, NewOrder
from afflux.orders.signing import sign_query

from .conftest import ADMIN_TOKEN

pytestmark = pytest.mark.integration

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
# What a route answered, alike for every route: "accepted", "duplicate", the status code
# of a refusal or a batch item's "rejected", then the field and reason refused.
Answer = tuple[str, str | None, str]


def sale(campaigns: Any, order_id: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "order_id": order_id,
        "campaign_id": campaigns.shop.campaign_id,
        "occurred_at": int(time.time() * 1000),
        "amount_minor": 2500,
        "currency": "EUR",
        "visitor_id": f"v-{uuid.uuid4().hex[:12]}",
    }
    return body | changes


def lead(campaigns: Any, order_id: str) -> dict[str, Any]:
    body = sale(campaigns, order_id, kind="lead")
    del body["amount_minor"], body["currency"]
    return body


def renewal(campaigns: Any, first: str, **changes: Any) -> dict[str, Any]:
    """Renewal 2 of ``first``; its renewal order id is the default one unless given."""
    body: dict[str, Any] = {
        "order_id": first,
        "renewal_number": 2,
        "campaign_id": campaigns.shop.campaign_id,
        "occurred_at": int(time.time() * 1000),
        "amount_minor": 1999,
        "currency": "EUR",
    }
    return body | changes


def _refused(response: Any) -> Answer:
    if response.status_code < 400:
        return response.json()["status"], None, ""
    [detail] = response.json()["detail"]
    return str(response.status_code), detail["field"], detail["reason"]


def _item(response: Any) -> Answer:
    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    error = result.get("error") or {"field": None, "reason": ""}
    return result["status"], error["field"], error["reason"]


async def send_order(api: Any, route: str, body: dict[str, Any]) -> Answer:
    """``body`` sent the way ``route`` takes an order."""
    if route == "single":
        return _refused(await api.post("/v1/orders", body))
    if route == "batch":
        return _item(await api.post("/v1/orders:batch", {"orders": [body]}))
    if route == "backfill":
        return _item(
            await api.http.post("/v1/admin/backfill/orders", json={"orders": [body]}, headers=ADMIN)
        )
    assert route == "postback"
    params = [("merchant", "merchant-a"), *((name, str(value)) for name, value in body.items())]
    query = sign_query(params, "a-secret-new", int(time.time()))
    return _refused(await api.http.get(f"/v1/postback?{query}"))


def produced_under(topics: Any, before: dict[str, int], taken: str) -> list[str]:
    """The topics each record naming ``taken`` as its own id went to since ``before``."""
    return [
        topic
        for topic, field in (("orders", "order_id"), ("refunds", "renewal_order_id"))
        for event in topics.since(before, topic)
        if event.get(field) == taken
    ]


@pytest.mark.parametrize(
    ("route", "kind", "renewal_id", "answer", "field"),
    [
        ("single", "sale", "explicit", "409", "order_id"),
        ("single", "sale", "default", "409", "order_id"),  # `<first>:renewal-2`
        ("single", "lead", "explicit", "409", "order_id"),
        ("batch", "sale", "explicit", "rejected", "orders.0.order_id"),
        ("backfill", "sale", "explicit", "rejected", "orders.0.order_id"),
        ("postback", "sale", "default", "409", "order_id"),
    ],
)
async def test_an_order_reusing_a_renewal_order_id_is_refused_naming_order_id(
    api: Any,
    campaigns: Any,
    topics: Any,
    route: str,
    kind: str,
    renewal_id: str,
    answer: str,
    field: str,
) -> None:
    first = api.new_id("sub")
    taken = api.new_id("renewal") if renewal_id == "explicit" else f"{first}:renewal-2"
    renewed = renewal(campaigns, first, renewal_order_id=taken)
    accepted = await api.post("/v1/renewals", renewed)
    assert accepted.status_code == 202, accepted.text
    before = await topics.settle()
    order = sale(campaigns, taken) if kind == "sale" else lead(campaigns, taken)

    got, refused, reason = await send_order(api, route, order)

    assert (got, refused) == (answer, field), reason
    assert f"{taken} was already accepted as a renewal of order {first}" in reason
    assert await topics.written_since(before) == {}
    # Sent again, it is refused again: nothing of it was kept. The renewal is still the
    # idempotent duplicate, and the order is taken under its own id.
    assert (await send_order(api, route, order))[:2] == (answer, field)
    again = await api.post("/v1/renewals", renewed)
    assert (again.status_code, again.json()["status"]) == (200, "duplicate"), again.text
    own = await send_order(api, route, order | {"order_id": f"{taken}-own"})
    assert own[0] == "accepted", own


@pytest.mark.parametrize(
    ("route", "kind", "renewal_id"),
    [
        ("single", "sale", "explicit"),
        ("single", "sale", "default"),  # the order's id is `<first>:renewal-2`
        ("single", "lead", "explicit"),
        ("batch", "sale", "explicit"),
        ("backfill", "sale", "explicit"),
        ("postback", "sale", "default"),
    ],
)
async def test_a_renewal_reusing_an_order_id_is_refused_naming_renewal_order_id(
    api: Any, campaigns: Any, topics: Any, route: str, kind: str, renewal_id: str
) -> None:
    first = api.new_id("sub")
    taken = api.new_id("order") if renewal_id == "explicit" else f"{first}:renewal-2"
    order = sale(campaigns, taken) if kind == "sale" else lead(campaigns, taken)
    assert (await send_order(api, route, order))[0] == "accepted"
    before = await topics.settle()
    # The default renewal order id is the one the order took: it is not named.
    changes = {"renewal_order_id": taken} if renewal_id == "explicit" else {}

    answer = await api.post("/v1/renewals", renewal(campaigns, first, **changes))

    assert _refused(answer) == (
        "409",
        "renewal_order_id",
        f"{taken} is already an order of the campaign that is not a renewal of {first}",
    )
    assert await topics.written_since(before) == {}
    again = await send_order(api, route, order)
    assert again[0] == "duplicate", again


async def test_an_order_and_a_renewal_sent_at_once_under_one_id_take_it_once(
    api: Any, campaigns: Any, topics: Any
) -> None:
    """Whichever claims the id first is taken; the other, if it finds that claim in flight,
    is refused (a renewal) or waits for it and is then refused (an order)."""
    before = await topics.settle()
    pairs = [(api.new_id("sub"), api.new_id("shared")) for _ in range(4)]

    answers = await asyncio.gather(
        *(
            send
            for first, taken in pairs
            for send in (
                send_order(api, "single", sale(campaigns, taken)),
                api.post("/v1/renewals", renewal(campaigns, first, renewal_order_id=taken)),
            )
        )
    )

    await topics.settle()
    for index, (_, taken) in enumerate(pairs):
        order, renewed = answers[2 * index], _refused(answers[2 * index + 1])
        assert sorted([order[0], renewed[0]]) == ["409", "accepted"], (order, renewed)
        refused = order if order[0] == "409" else renewed
        assert refused[1] == ("order_id" if refused is order else "renewal_order_id")
        assert len(produced_under(topics, before, taken)) == 1


@pytest.fixture
async def claims(infra: Any) -> AsyncIterator[ClaimStore]:
    redis: Redis[bytes] = Redis.from_url(infra.redis_url.rsplit("/", 1)[0] + "/2")
    try:
        yield ClaimStore(redis, f"afx:shared-{uuid.uuid4().hex[:8]}", pending_ms=5_000, ttl_s=60)
    finally:
        await redis.aclose()  # type: ignore[attr-defined]


RENEWAL = NewOrder("c", "sub-1-r", "sub-1", 1999, "renewal", renewal_number=2, currency="EUR")
ORDER = NewOrder("c", "sub-1-r", "v-1", 2500, "sale", '["sale",2500]')


@pytest.mark.parametrize(
    ("renewal_claim", "expected"),
    [
        ("accepted", "renewal"),
        ("written anew by a retried done mark", "renewal"),  # after Redis lost it
        ("in flight", "pending"),  # the order waits for it, then is refused or taken
        ("released", "reserved"),  # its produce failed: the id is free
    ],
)
async def test_an_order_claim_on_a_renewal_order_id_answers_what_the_renewal_became(
    claims: ClaimStore, renewal_claim: str, expected: str
) -> None:
    now = int(time.time() * 1000)
    if renewal_claim == "written anew by a retried done mark":
        await claims.mark_done([RENEWAL])
    else:
        assert (await claims.reserve_renewal(RENEWAL, now)).status == "reserved"
    if renewal_claim == "accepted":
        await claims.mark_done([RENEWAL])
    if renewal_claim == "released":
        await claims.release_renewal(RENEWAL)

    assert await claims.reserve_orders([ORDER], now) == [expected]
    first = await claims.renewed_order("c", "sub-1-r")
    assert first == ("sub-1" if expected in ("renewal", "pending") else None)
