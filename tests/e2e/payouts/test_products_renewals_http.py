"""Per-product rates and recurring commissions, end to end over HTTP on one stack.

A sale with items (a sku rate, a category rate, an excluded gift card, an item at the
sale's rate, shipping named as non-commissionable) is paid per item and a refund naming
one item takes back that item's commission; renewals of it pay its creator the recurring
rate up to the limit, a refunded renewal is reversed through the ordinary refunds route,
and renewals past the limit or of an unattributed order are reported with the reason.
Bad input is refused naming the field. Amounts are worked out by hand below.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest

from afflux.cli.demo_client import dev_merchant_secret
from afflux.cli.stack import Stack
from afflux.orders.signing import sign
from afflux.shared.io.clock_source import system_clock

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

T = TypeVar("T")
ADMIN_TOKEN = "products-renewals-admin-token"
CAMPAIGN, MERCHANT, CREATOR = "pr-subs", "merchant-subs", "pr-ana"
TERMS_YAML = f"""
campaigns:
  - effective_from: 0
    terms:
      campaign_id: {CAMPAIGN}
      merchant_id: {MERCHANT}
      currency: EUR
      coupons: {{ANA: {CREATOR}}}
      grace_seconds: 1
      lock_days: 30
      plan:
        sale:
          rate: {{percent: "10"}}
          products:
            skus: {{shoe-1: "20"}}
            categories: {{bags: "5"}}
            excluded_categories: [gift_card]
        recurring: {{rate: {{percent: "25"}}, max_renewals: 2}}
"""
ITEMS = [
    {"sku": "shoe-1", "quantity": 1, "price_minor": 4000, "category": "shoes"},  # 20 %: 800
    {"sku": "bag-1", "quantity": 1, "price_minor": 2000, "category": "bags"},  # 5 %: 100
    {"sku": "card-1", "quantity": 1, "price_minor": 1000, "category": "gift_card"},  # 0
    {"sku": "hat-1", "quantity": 1, "price_minor": 1000},  # the sale's 10 %: 100
]
SALE_RULE = (
    "sale: 5% of 2000 (category bags), 20% of 4000 (sku shoe-1), 10% of 1000 (base rate);"
    " excluded 1000; 500 non-commissionable"
)


class Merchant:
    """Signed calls to the orders service as the campaign's merchant (dev secret)."""

    def __init__(self, http: httpx.AsyncClient, orders_url: str) -> None:
        self.http = http
        self.orders_url = orders_url

    async def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        raw = json.dumps(body).encode()
        signature = sign(raw, dev_merchant_secret(MERCHANT), system_clock() // 1000)
        headers = {
            "Content-Type": "application/json",
            "X-Afflux-Merchant": MERCHANT,
            "X-Afflux-Signature": signature,
        }
        return await self.http.post(f"{self.orders_url}{path}", content=raw, headers=headers)


@pytest.fixture(scope="module")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def merchant(stack: Stack, http: httpx.AsyncClient) -> Merchant:
    return Merchant(http, stack.url("orders"))


async def eventually(
    read: Callable[[], Awaitable[T]], done: Callable[[T], bool], what: str, timeout_s: float = 60
) -> T:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while True:
        try:
            answer = await read()
            last = answer
            if done(answer):
                return answer
        except httpx.HTTPStatusError as exc:
            last = f"{exc.response.status_code} {exc.response.text}"
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout_s:.0f}s; last: {last!r}")
        await asyncio.sleep(0.5)


def order_body(order_id: str, amount: int, **fields: Any) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "campaign_id": CAMPAIGN,
        "occurred_at": system_clock(),
        "amount_minor": amount,
        "currency": "EUR",
        **fields,
    }


def renewal_body(first: str, number: int, amount: int, **fields: Any) -> dict[str, Any]:
    return {
        "order_id": first,
        "renewal_number": number,
        "campaign_id": CAMPAIGN,
        "occurred_at": system_clock(),
        "amount_minor": amount,
        "currency": "EUR",
        **fields,
    }


def refund_body(refund_id: str, order_id: str, amount: int, **fields: Any) -> dict[str, Any]:
    return {
        "refund_id": refund_id,
        "order_id": order_id,
        "campaign_id": CAMPAIGN,
        "occurred_at": system_clock(),
        "amount_minor": amount,
        "currency": "EUR",
        **fields,
    }


def problem(response: httpx.Response) -> tuple[int, str]:
    [detail] = response.json()["detail"]
    return response.status_code, detail["field"]


async def accepted(response: Awaitable[httpx.Response]) -> dict[str, Any]:
    answer = await response
    assert answer.status_code == 202, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def test_per_product_sale_renewals_and_their_refunds_reach_the_ledger(
    stack: Stack, merchant: Merchant, http: httpx.AsyncClient
) -> None:
    run = f"{system_clock()}"
    first, lost = f"sub-{run}", f"lost-{run}"
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    # Items that do not make up the amount, unnamed: refused naming the field.
    bad = order_body(f"bad-{run}", 8501, items=ITEMS, coupon_code="ANA")
    assert problem(await merchant.post("/v1/orders", bad)) == (422, "items")
    # The sale: 8,000 of items and 500 of shipping.
    await accepted(
        merchant.post(
            "/v1/orders",
            order_body(
                first,
                8500,
                items=ITEMS,
                non_commissionable_minor=500,
                non_commissionable_reason="shipping",
                coupon_code="ANA",
            ),
        )
    )
    # An order no creator wins (no click, no coupon).
    await accepted(merchant.post("/v1/orders", order_body(lost, 3000, visitor_id=f"v-{run}")))
    # Renewals 1 and 2 pay 25 % of 2,000; renewal 3 is past max_renewals 2.
    renewals = [
        await accepted(merchant.post("/v1/renewals", renewal_body(first, n, 2000)))
        for n in (1, 2, 3)
    ]
    assert [r["renewal_order_id"] for r in renewals] == [f"{first}:renewal-{n}" for n in (1, 2, 3)]
    again = await merchant.post("/v1/renewals", renewal_body(first, 1, 2000))
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    await accepted(merchant.post("/v1/renewals", renewal_body(lost, 1, 2000)))
    same = renewal_body(first, 4, 2000, renewal_order_id=first)
    assert problem(await merchant.post("/v1/renewals", same)) == (422, "renewal_order_id")

    # One of the shoes back (800 of its commission), and renewal 2 refunded in full,
    # through the ordinary refunds route under the renewal's own order id.
    named = refund_body(f"rf-shoe-{run}", first, 4000, items=[{"sku": "shoe-1", "quantity": 1}])
    await accepted(merchant.post("/v1/refunds", named))
    renewal_2 = f"{first}:renewal-2"
    over = refund_body(f"rf-over-{run}", renewal_2, 2001)
    assert problem(await merchant.post("/v1/refunds", over)) == (422, "amount_minor")
    await accepted(merchant.post("/v1/refunds", refund_body(f"rf-r2-{run}", renewal_2, 2000)))

    async def ledger() -> list[tuple[Any, ...]]:
        response = await http.get(
            f"{stack.url('payouts')}/v1/creators/{CREATOR}/ledger",
            params={"campaign_id": CAMPAIGN, "limit": 1000},
            headers=admin,
        )
        response.raise_for_status()
        return sorted(
            (
                line["kind"],
                line["order_id"],
                line["amount_minor"],
                line["explain"]["gross_minor"],
                line["explain"]["refunded_minor"],
            )
            for line in response.json()["lines"]
        )

    expected = sorted(
        [
            ("sale", first, 1000 - 800, 1000, 800),
            ("renewal", f"{first}:renewal-1", 500, 500, 0),
            ("renewal", renewal_2, 0, 500, 500),
        ]
    )
    await eventually(ledger, lambda lines: lines == expected, "the creator's ledger")

    response = await http.get(
        f"{stack.url('payouts')}/v1/creators/{CREATOR}/ledger",
        params={"campaign_id": CAMPAIGN, "limit": 1000},
        headers=admin,
    )
    [sale] = [line for line in response.json()["lines"] if line["order_id"] == first]
    assert sale["rule"].startswith(SALE_RULE), sale["rule"]  # the per-item rates, named

    async def outcome(order_id: str) -> dict[str, Any]:
        answer = await http.get(
            f"{stack.url('orders')}/v1/orders/{order_id}",
            params={"campaign_id": CAMPAIGN},
            headers=admin,
        )
        answer.raise_for_status()
        [body] = answer.json()["outcomes"]
        assert isinstance(body, dict)
        return body

    for order_id, reason in (
        (f"{first}:renewal-3", "renewal_beyond_limit"),
        (f"{lost}:renewal-1", "first_order_unattributed"),
    ):
        answer = await eventually(
            lambda o=order_id: outcome(o),  # type: ignore[misc]
            lambda a: a.get("status") == "unattributed",
            f"outcome of {order_id}",
        )
        assert answer["unattributed_reason"] == reason
