"""Batches, URL postbacks and the duplicate storm."""

from __future__ import annotations

import asyncio
import hmac
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import pytest

from afflux.orders.signing import sign_query

pytestmark = pytest.mark.integration


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def sale(campaigns: Any, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "order_id": new_id("o"),
        "campaign_id": campaigns.shop.campaign_id,
        "occurred_at": int(time.time() * 1000),
        "amount_minor": 1500,
        "currency": "EUR",
        "visitor_id": new_id("v"),
    }
    body.update(changes)
    return body


def orders_of(events: list[dict[str, Any]], ids: set[str]) -> list[str]:
    return [e["order_id"] for e in events if e["type"] == "OrderPlaced" and e["order_id"] in ids]


async def test_duplicate_storm_of_100_orders_sent_10_times_yields_100_events(
    api: Any, campaigns: Any, topics: Any
) -> None:
    orders = [sale(campaigns) for _ in range(100)]
    before = await topics.settle()

    sends = [api.post("/v1/orders", body) for body in orders for _ in range(10)]
    responses = await asyncio.gather(*sends)

    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(202) == 100, {r.status_code: r.text for r in responses}
    assert statuses.count(200) == 900
    await topics.settle()
    produced = orders_of(topics.since(before, "orders"), {o["order_id"] for o in orders})
    assert sorted(produced) == sorted(o["order_id"] for o in orders)


async def test_batch_answers_each_order_on_its_own(api: Any, campaigns: Any, topics: Any) -> None:
    first, second = sale(campaigns), sale(campaigns, kind="install", amount_minor=None)
    before = await topics.settle()

    response = await api.post(
        "/v1/orders:batch",
        {"orders": [first, second, first, sale(campaigns, currency="USD"), "not an order"]},
    )

    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == [
        "accepted",
        "accepted",
        "duplicate",
        "rejected",
        "rejected",
    ]
    assert results[3]["error"]["field"] == "orders.3.currency"
    assert results[4]["error"]["field"] == "orders.4"
    assert response.json()["counts"] == {"accepted": 2, "duplicate": 1, "rejected": 2}
    await topics.settle()
    produced = orders_of(topics.since(before, "orders"), {first["order_id"], second["order_id"]})
    assert sorted(produced) == sorted([first["order_id"], second["order_id"]])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"orders": []}, "orders", id="empty"),
        pytest.param({"orders": [{}] * 1001}, "orders", id="over 1000"),
        pytest.param({"order": []}, "orders", id="no orders list"),
    ],
)
async def test_batch_outside_its_limits_is_rejected_whole_and_emits_nothing(
    body: dict[str, Any], field: str, api: Any, topics: Any
) -> None:
    before = await topics.settle()

    response = await api.post("/v1/orders:batch", body)

    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == field
    assert await topics.written_since(before) == {}


def postback_params(campaigns: Any, order_id: str) -> list[tuple[str, str]]:
    return [
        ("merchant", "merchant-a"),
        ("campaign_id", campaigns.shop.campaign_id),
        ("order_id", order_id),
        ("amount_minor", "2599"),
        ("currency", "EUR"),
        ("click_id", "v-postback.abc123"),
        ("new_customer", "true"),
    ]


async def test_signed_postback_url_records_the_order(api: Any, campaigns: Any, topics: Any) -> None:
    order_id = new_id("pb")
    query = sign_query(postback_params(campaigns, order_id), "a-secret-new", int(time.time()))
    before = await topics.settle()

    first = await api.http.get(f"/v1/postback?{query}")
    again = await api.http.get(f"/v1/postback?{query}")

    assert (first.status_code, again.status_code) == (202, 200), first.text
    await topics.settle()
    [event] = [e for e in topics.since(before, "orders") if e["order_id"] == order_id]
    assert (event["amount_minor"], event["new_customer"], event["click_id"]) == (
        2599,
        True,
        "v-postback.abc123",
    )


def _tamper(query: str) -> str:
    return query.replace("2599", "2600")


def _drop_sig(query: str) -> str:
    return query.rsplit("&sig=", 1)[0]


@pytest.mark.parametrize(
    ("change", "age_s", "field"),
    [
        pytest.param(_tamper, 0, "sig", id="changed amount"),
        pytest.param(_drop_sig, 0, "sig", id="no signature"),
        pytest.param(lambda q: q, 301, "t", id="stale"),
        # as a wrong signature: which merchant ids exist cannot be probed
        pytest.param(lambda q: q.replace("merchant-a", "merchant-q"), 0, "sig", id="unknown"),
    ],
)
async def test_bad_postback_is_rejected_and_emits_nothing(
    change: Any, age_s: int, field: str, api: Any, campaigns: Any, topics: Any
) -> None:
    before = await topics.settle()
    params = postback_params(campaigns, new_id("pb"))
    query = change(sign_query(params, "a-secret-new", int(time.time()) - age_s))

    response = await api.http.get(f"/v1/postback?{query}")

    assert response.status_code == 401, response.text
    assert response.json()["detail"][0]["field"] == field
    assert await topics.written_since(before) == {}


@pytest.mark.parametrize(
    ("order_id", "reason"),
    [
        pytest.param("pb-x%FF", "not UTF-8 once percent-decoded", id="invalid UTF-8"),
        pytest.param("pb-x%C3", "not UTF-8 once percent-decoded", id="cut UTF-8"),
    ],
)
async def test_a_postback_order_id_that_is_not_utf8_is_refused_not_replaced(
    order_id: str, reason: str, api: Any, campaigns: Any, topics: Any
) -> None:
    """Replaced by U+FFFD, two different ids would be one order."""
    before = await topics.settle()
    now = int(time.time())
    params = [(k, v) for k, v in postback_params(campaigns, "x") if k != "order_id"]
    query = f"{urlencode([*params, ('t', str(now))])}&order_id={order_id}"
    mac = hmac.digest(b"a-secret-new", f"{now}.{query}".encode(), "sha256").hex()

    response = await api.http.get(f"/v1/postback?{query}&sig={mac}")

    assert response.status_code == 422, response.text
    assert response.json()["detail"][0] == {"field": "order_id", "reason": reason}
    assert await topics.written_since(before) == {}
