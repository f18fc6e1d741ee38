"""The thin path through all four services, driven over HTTP as a user would."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest

from afflux.cli.demo_client import DemoClient, dev_merchant_secret
from afflux.cli.stack import Stack
from afflux.cli.topic_reader import read_events
from afflux.orders.signing import sign_request
from afflux.shared.core.money import Money
from afflux.shared.core.terms import CampaignTerms
from afflux.shared.events import ClickRecorded, ConversionAttributed, OrderUnattributed

from .conftest import ADMIN_TOKEN

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def pending_commission(stack: Stack, affiliate_id: str, currency: str) -> int:
    # httpx's 5 s read timeout leaves too little on a saturated machine (a ledger step can
    # hold the payouts loop for a second or more): 30 s, as the other clients here.
    headers = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(headers=headers, timeout=30.0) as http:
        response = await http.get(f"{stack.url('payouts')}/v1/creators/{affiliate_id}/balance")
    if response.status_code == 404:
        return 0
    response.raise_for_status()
    return balance_field(response.json(), currency, "pending_minor")


def balance_field(body: dict[str, Any], currency: str, name: str) -> int:
    for entry in body["balances"]:
        if entry["currency"] == currency:
            return int(entry[name])
    return 0


async def eventually(probe: Any, expected: Any, timeout_s: float = 30.0) -> Any:
    """``probe()`` until it gives ``expected``; a transport error (a connection the busy
    service reset) is asked again, not the end of the test."""
    deadline = time.monotonic() + timeout_s
    value = await _asked(probe)
    while value != expected and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        value = await _asked(probe)
    return value


async def _asked(probe: Any) -> Any:
    try:
        return await probe()
    except httpx.TransportError as exc:
        return exc  # never equal to what is expected: asked again


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def test_one_click_then_one_order_pays_the_creator_ten_percent(
    stack: Stack, client: DemoClient, campaign_terms: dict[str, CampaignTerms]
) -> None:
    shop = campaign_terms["e2e-shop"]
    creator = unique("creator")
    async with client:
        code = await client.create_link(shop, creator)
        visitor, _ = await client.click(code, None)
        await client.place_order(
            shop,
            order_id=unique("order"),
            kind="sale",
            amount=Money(12_345, "EUR"),
            visitor_id=visitor,
        )

    # 10 % of 123.45 EUR is 12.345 EUR: rounded once, half up, to 12.35 EUR.
    assert await eventually(lambda: pending_commission(stack, creator, "EUR"), 1_235) == 1_235


async def test_order_with_no_click_is_unattributed(
    stack: Stack, client: DemoClient, campaign_terms: dict[str, CampaignTerms]
) -> None:
    shop = campaign_terms["e2e-shop"]
    order_id = unique("order")
    async with client:
        await client.place_order(
            shop,
            order_id=order_id,
            kind="sale",
            amount=Money(5_000, "EUR"),
            visitor_id=unique("v"),
        )

    unmatched = await read_events(
        stack.kafka_bootstrap,
        "attribution.unmatched",
        until=lambda events: any(getattr(e, "order_id", None) == order_id for e in events),
    )
    mine = [e for e in unmatched if isinstance(e, OrderUnattributed) and e.order_id == order_id]
    assert [e.reason for e in mine] == ["no_click"]


async def test_order_one_ms_after_window_is_unattributed_and_at_the_edge_is_attributed(
    stack: Stack, client: DemoClient, campaign_terms: dict[str, CampaignTerms]
) -> None:
    # A zero-day cookie window: only the click's own instant is inside it.
    instant = campaign_terms["e2e-instant"]
    creator = unique("creator")
    outside, edge = unique("order-out"), unique("order-edge")
    async with client:
        code = await client.create_link(instant, creator)
        visitor, click_id = await client.click(code, None)
        clicks = await read_events(
            stack.kafka_bootstrap,
            "clicks",
            until=lambda events: any(getattr(e, "click_id", None) == click_id for e in events),
        )
        click = next(e for e in clicks if isinstance(e, ClickRecorded) and e.click_id == click_id)
        # Sent as a backfill: a merchant's order this recent would be placed at the
        # receive time (docs/orders.md, Event time); a backfill keeps the exact times.
        for order_id, at in ((outside, click.occurred_at + 1), (edge, click.occurred_at)):
            await client.backfill_order(
                instant,
                order_id=order_id,
                kind="sale",
                amount=Money(1_000, "EUR"),
                visitor_id=visitor,
                occurred_at=at,
            )

    unmatched = await read_events(
        stack.kafka_bootstrap,
        "attribution.unmatched",
        until=lambda events: any(getattr(e, "order_id", None) == outside for e in events),
    )
    conversions = await read_events(
        stack.kafka_bootstrap,
        "conversions",
        until=lambda events: any(getattr(e, "order_id", None) == edge for e in events),
    )
    assert [
        e.reason for e in unmatched if isinstance(e, OrderUnattributed) and e.order_id == outside
    ] == ["outside_window"]
    assert [
        e.affiliate_id
        for e in conversions
        if isinstance(e, ConversionAttributed) and e.order_id == edge
    ] == [creator]
    assert not [e for e in conversions if getattr(e, "order_id", None) == outside]


async def order_outcome(stack: Stack, merchant_id: str, order_id: str) -> dict[str, Any] | None:
    """``GET /v1/orders/{order_id}`` signed as the merchant; None while it answers 404."""
    target = f"/v1/orders/{order_id}"
    signature = sign_request("GET", target, dev_merchant_secret(merchant_id), int(time.time()))
    # The answer waits up to 3 s for the ledger's postings (then answers without them);
    # httpx's default 5 s read timeout leaves too little over on a saturated machine.
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.get(
            f"{stack.url('orders')}{target}",
            headers={"X-Afflux-Merchant": merchant_id, "X-Afflux-Signature": signature},
        )
    if answer.status_code == 404:
        return None
    answer.raise_for_status()
    outcome: dict[str, Any] = answer.json()["outcomes"][0]
    return outcome


async def test_a_merchant_reads_who_earned_its_order_and_the_creators_postings(
    stack: Stack, client: DemoClient, campaign_terms: dict[str, CampaignTerms]
) -> None:
    shop = campaign_terms["e2e-shop"]
    creator, order_id = unique("creator"), unique("order")
    async with client:
        code = await client.create_link(shop, creator)
        visitor, _ = await client.click(code, None)
        await client.place_order(
            shop, order_id=order_id, kind="sale", amount=Money(12_345, "EUR"), visitor_id=visitor
        )

    async def with_postings() -> bool:
        found = await order_outcome(stack, shop.merchant_id, order_id)
        return bool(found and found["postings"])

    assert await eventually(with_postings, True) is True
    outcome = await order_outcome(stack, shop.merchant_id, order_id)
    assert outcome is not None
    assert outcome["status"] == "attributed"
    assert outcome["decision"]["affiliate_id"] == creator
    assert outcome["decision"]["reason"] == "cookie"
    assert outcome["order"]["amount_minor"] == 12_345
    # The ledger's own postings for the order: 10 % of 123.45 EUR, with its rule in words.
    accruals = [p for p in outcome["postings"] if p["kind"] == "accrual"]
    assert [(p["affiliate_id"], p["amount_minor"]) for p in accruals] == [(creator, 1_235)]
    assert accruals[0]["rule"]


async def test_a_merchant_reads_why_its_order_was_not_attributed(
    stack: Stack, client: DemoClient, campaign_terms: dict[str, CampaignTerms]
) -> None:
    shop = campaign_terms["e2e-shop"]
    order_id = unique("order")
    async with client:
        await client.place_order(
            shop, order_id=order_id, kind="sale", amount=Money(5_000, "EUR"), visitor_id=unique("v")
        )

    async def reason() -> str | None:
        found = await order_outcome(stack, shop.merchant_id, order_id)
        return found["unattributed_reason"] if found else None

    assert await eventually(reason, "no_click") == "no_click"
