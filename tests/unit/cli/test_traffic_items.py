"""The seeded traffic's sales with items always make up their amount, so the orders
service accepts every one; campaigns without per-product rates get no items."""

from __future__ import annotations

import random

import pytest

from afflux.cli.traffic import sale_items
from afflux.orders.ingest import parse
from afflux.orders.placement import Placement
from afflux.orders.rules import OrderRequest, order_event
from afflux.shared.core.terms import CampaignTerms

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


@pytest.mark.parametrize("amount", [400, 401, 999, 4001, 123_457, 10**9])
def test_items_and_shipping_make_up_the_amount_the_orders_service_accepts(amount: int) -> None:
    rng = random.Random(amount)
    for _ in range(20):
        items, shipping = sale_items(PRODUCTS, amount, rng)
        body = {
            "order_id": "o",
            "campaign_id": "c",
            "occurred_at": 0,
            "amount_minor": amount,
            "currency": "EUR",
            "coupon_code": "X",
            "items": items,
            "non_commissionable_minor": shipping,
        }
        event = order_event(parse(OrderRequest, body), PRODUCTS, "m", Placement(0))
        assert len(event.items) == 4


def test_small_sales_and_campaigns_without_product_rates_carry_no_items() -> None:
    rng = random.Random(1)
    assert sale_items(PRODUCTS, 399, rng) == ([], 0)
    assert sale_items(terms(None), 10_000, rng) == ([], 0)
