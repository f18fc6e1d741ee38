"""The seeded traffic's sales with items always make up their amount, so the orders
service accepts every one; campaigns without per-product rates get no items."""

from __future__ import annotations

import random
from typing import Any

import pytest

from afflux.cli.traffic import refund_of, sale_items
from afflux.orders.ingest import parse
from afflux.orders.placement import Placement
from afflux.orders.rules import OrderRequest, check_refund_items_value, order_event
from afflux.shared.core.terms import CampaignTerms
from afflux.shared.events import OrderPlaced, OrderRefunded

pytestmark = pytest.mark.unit


def terms(products: dict[str, object] | None) -> CampaignTerms:
    sale: dict[str, object] = {"rate": {"percent": "8"}}
    if products is not None:
        sale["products"] = products
    return CampaignTerms.model_validate(
        {"campaign_id": "c", "merchant_id": "m", "currency": "EUR", "plan": {"sale": sale}}
    )


PRODUCTS = terms(
    {"skus": {"S-1": "15"}, "categories": {"shoes": "10"}, "excluded_categories": ["gift_card"]}
)


def placed_order(order_id: str, amount: int, items: list[Any], shipping: int) -> OrderPlaced:
    """The traffic's sale as the orders service accepts it (any rule it breaks raises)."""
    body = {
        "order_id": order_id,
        "campaign_id": "c",
        "occurred_at": 0,
        "amount_minor": amount,
        "currency": "EUR",
        "coupon_code": "X",
        "items": items,
        "non_commissionable_minor": shipping,
    }
    return order_event(parse(OrderRequest, body), PRODUCTS, "m", Placement(0))


@pytest.mark.parametrize("amount", [400, 401, 999, 4001, 123_457, 10**9])
def test_items_and_shipping_make_up_the_amount_the_orders_service_accepts(amount: int) -> None:
    rng = random.Random(amount)
    for _ in range(20):
        items, shipping = sale_items(PRODUCTS, amount, rng)
        event = placed_order("o", amount, items, shipping)
        assert len(event.items) == 4


def test_small_sales_and_campaigns_without_product_rates_carry_no_items() -> None:
    rng = random.Random(1)
    assert sale_items(PRODUCTS, 399, rng) == ([], 0)
    assert sale_items(terms(None), 10_000, rng) == ([], 0)


@pytest.mark.parametrize("amount", [400, 401, 999, 4001, 123_457, 10**9])
def test_the_traffics_refunds_name_what_they_refund_as_the_orders_service_requires(
    amount: int,
) -> None:
    rng = random.Random(amount)
    kinds = set()
    for n in range(40):
        items, shipping = sale_items(PRODUCTS, amount, rng)
        placed = placed_order(f"o-{n}", amount, items, shipping)
        part, named = refund_of(items, amount, rng)
        refund = OrderRefunded.model_validate(
            {
                "event_id": f"rf-{n}",
                "occurred_at": 1,
                "refund_id": f"r-{n}",
                "order_id": f"o-{n}",
                "campaign_id": "c",
                "amount_minor": part,
                "currency": "EUR",
                "items": named,
            }
        )
        check_refund_items_value(refund, placed.items, placed.non_commissionable_minor)
        assert 0 < part <= amount
        kinds.add(next((k for k in named[0] if k != "sku"), "") if named else "")
    assert kinds == {"", "quantity", "amount_minor"}  # whole, one unit, an amount of an item
