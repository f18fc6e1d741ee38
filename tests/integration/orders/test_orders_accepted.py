"""Accepted orders, leads and refunds reach their topics once, keyed for the join."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from afflux.shared.core.ids import new_click_id, order_partition_key


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


pytestmark = pytest.mark.integration


def hours_ago(hours: float) -> int:
    """An event time older than the clock-skew allowance, so it is kept as sent."""
    return int(time.time() * 1000) - int(hours * 3_600_000)


def _keyed(watch: Any, topic: str, before: dict[str, int]) -> list[tuple[str, dict]]:
    records = watch.records.get(topic, [])[before.get(topic, 0) :]
    return [((key or b"").decode(), json.loads(value or b"null")) for key, value in records]


async def test_sale_is_accepted_and_produced_once_keyed_by_visitor(
    api: Any, campaigns: Any, topics: Any
) -> None:
    before = await topics.settle()
    order_id, visitor = new_id("o"), new_id("v")
    occurred_at = hours_ago(1) // 1000 * 1000
    body = {
        "order_id": order_id,
        "campaign_id": campaigns.shop.campaign_id,
        "occurred_at": datetime.fromtimestamp(occurred_at / 1000, UTC).isoformat(),
        "amount_minor": 5499,
        "currency": "EUR",
        "visitor_id": visitor,
        "new_customer": True,
        "items": [{"sku": "shirt", "quantity": 2, "price_minor": 2500, "category": "tops"}],
        "non_commissionable_minor": 499,
        "non_commissionable_reason": "shipping",
    }

    first = await api.post("/v1/orders", body)
    again = await api.post("/v1/orders", body)

    assert first.status_code == 202, first.text
    assert first.json()["status"] == "accepted"
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    await topics.settle()
    produced = _keyed(topics, "orders", before)
    assert len(produced) == 1
    key, event = produced[0]
    assert key == visitor
    assert event["type"] == "OrderPlaced"
    assert event["order_id"] == order_id
    assert event["merchant_id"] == "merchant-a"
    assert event["amount_minor"] == 5499
    assert event["items"][0]["category"] == "tops"
    assert event["non_commissionable_minor"] == 499
    assert event["occurred_at"] == occurred_at
    assert event["reported_occurred_at"] is None
    assert event["new_customer"] is True


async def test_order_with_only_a_click_id_is_keyed_by_the_clicks_visitor(
    api: Any, campaigns: Any, topics: Any
) -> None:
    before = await topics.settle()
    visitor = new_id("v")
    click_id = new_click_id(visitor)
    body = {
        "order_id": new_id("o"),
        "campaign_id": campaigns.shop.campaign_id,
        "occurred_at": hours_ago(2),
        "amount_minor": 100,
        "currency": "EUR",
        "click_id": click_id,
    }

    response = await api.post("/v1/orders", body)

    assert response.status_code == 202, response.text
    await topics.settle()
    [(key, _)] = _keyed(topics, "orders", before)
    assert key == visitor == order_partition_key(body["order_id"], None, click_id)


async def test_the_second_active_secret_also_signs(api: Any, campaigns: Any) -> None:
    body = {
        "order_id": new_id("o"),
        "campaign_id": campaigns.shop.campaign_id,
        "occurred_at": hours_ago(2),
        "kind": "install",
        "coupon_code": "ANY",
    }

    response = await api.post("/v1/orders", body, secret="a-secret-old")

    assert response.status_code == 202, response.text


async def test_confirmed_lead_emits_lead_confirmed_with_the_orders_key_once(
    api: Any, campaigns: Any, topics: Any
) -> None:
    before = await topics.settle()
    order_id, visitor = new_id("lead"), new_id("v")
    campaign = campaigns.leads.campaign_id
    lead = {
        "order_id": order_id,
        "campaign_id": campaign,
        "occurred_at": hours_ago(2),
        "kind": "lead",
        "visitor_id": visitor,
    }
    assert (await api.post("/v1/orders", lead)).status_code == 202

    confirm = {"campaign_id": campaign}
    first = await api.post(f"/v1/leads/{order_id}/confirm", confirm)
    again = await api.post(f"/v1/leads/{order_id}/confirm", confirm)

    assert first.status_code == 202, first.text
    assert again.json()["status"] == "duplicate"
    await topics.settle()
    produced = _keyed(topics, "orders", before)
    assert [(k, e["type"]) for k, e in produced] == [
        (visitor, "OrderPlaced"),
        (visitor, "LeadConfirmed"),
    ]


async def test_partial_refunds_up_to_the_order_amount_are_accepted_once(
    api: Any, campaigns: Any, topics: Any
) -> None:
    before = await topics.settle()
    order_id = new_id("o")
    campaign = campaigns.shop.campaign_id
    order = {
        "order_id": order_id,
        "campaign_id": campaign,
        "occurred_at": hours_ago(2),
        "amount_minor": 1000,
        "currency": "EUR",
        "visitor_id": new_id("v"),
    }
    assert (await api.post("/v1/orders", order)).status_code == 202

    def refund(refund_id: str, amount: int) -> dict[str, object]:
        return {
            "refund_id": refund_id,
            "order_id": order_id,
            "campaign_id": campaign,
            "occurred_at": hours_ago(1),
            "amount_minor": amount,
            "currency": "EUR",
        }

    r1, r2, r3 = new_id("r1"), new_id("r2"), new_id("r3")
    first = await api.post("/v1/refunds", refund(r1, 600))
    repeat = await api.post("/v1/refunds", refund(r1, 600))
    rest = await api.post("/v1/refunds", refund(r2, 400))
    beyond = await api.post("/v1/refunds", refund(r3, 1))
    # The same refund id for another order: a conflict, never a silent "duplicate".
    elsewhere = await api.post("/v1/refunds", {**refund(r1, 600), "order_id": new_id("o")})

    assert [first.status_code, repeat.status_code, rest.status_code] == [202, 200, 202]
    assert repeat.json()["status"] == "duplicate"
    assert elsewhere.status_code == 409, elsewhere.text
    assert elsewhere.json()["detail"][0]["field"] == "refund_id"
    assert beyond.status_code == 422
    assert beyond.json()["detail"][0]["field"] == "amount_minor"
    await topics.settle()
    produced = _keyed(topics, "refunds", before)
    assert [(k, e["refund_id"], e["amount_minor"]) for k, e in produced] == [
        (order_id, r1, 600),
        (order_id, r2, 400),
    ]


async def test_refund_for_an_unknown_order_is_accepted_for_attribution_to_match(
    api: Any, campaigns: Any
) -> None:
    refund = {
        "refund_id": new_id("r"),
        "order_id": new_id("o"),
        "campaign_id": campaigns.shop.campaign_id,
        "occurred_at": hours_ago(1),
        "amount_minor": 10_000_000,
        "currency": "EUR",
    }

    response = await api.post("/v1/refunds", refund)

    assert response.status_code == 202, response.text


async def test_metrics_count_orders_by_campaign_kind_and_outcome(api: Any, campaigns: Any) -> None:
    text = (await api.http.get("/metrics")).text
    assert (
        f'afflux_orders_total{{campaign="{campaigns.shop.campaign_id}",kind="sale",'
        f'outcome="accepted"}}' in text
    )
    assert "afflux_ingest_seconds_bucket" in text
    assert "afflux_refunds_total" in text


async def test_healthz_is_ok_when_broker_redis_and_campaigns_are_ready(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"campaigns": True, "redis": True, "kafka": True}
