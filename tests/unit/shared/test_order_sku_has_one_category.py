"""An order lists each sku under one category at the orders API (``OrderRequest.items``):
per-product rates and per-item refunds pool an order's items by sku, so a sku listed as
shoes at 10,000 and as a gift card at 100 had a refund of the gift card take back
commission at a blended rate. Refused at the later item's category; the same sku twice in
one category is fine. The event on the topic takes such an order: it was refused there
too, and an order an earlier version had taken was dead-lettered by the worker after an
upgrade, its commission lost."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from afflux.orders.rules import OrderRequest
from afflux.shared.core.products import mixed_category
from afflux.shared.events import OrderPlaced
from afflux.shared.wire import event_from_dict

pytestmark = pytest.mark.unit


def request(*items: tuple[str, str | None, int]) -> dict[str, Any]:
    return {
        "order_id": "o-1",
        "campaign_id": "camp",
        "occurred_at": 1_793_491_200_000,
        "currency": "EUR",
        "visitor_id": "v-1",
        "amount_minor": sum(price for _, _, price in items),
        "items": [
            {"sku": sku, "price_minor": price}
            | ({} if category is None else {"category": category})
            for sku, category, price in items
        ],
    }


def order(*items: tuple[str, str | None, int]) -> dict[str, Any]:
    fields = {k: v for k, v in request(*items).items() if k != "visitor_id"}
    return {"type": "OrderPlaced", "event_id": "ev-1", "merchant_id": "merchant", **fields}


RATES_BY_SKU = "(per-product rates and refunds go by sku)"
SHOES, CARD = ("X", "shoes", 10_000), ("X", "gift_card", 100)


@pytest.mark.parametrize(
    ("items", "refused"),
    [
        pytest.param([SHOES, CARD], (1, "sku 'X' is of category 'shoes' in items.0"), id="two"),
        pytest.param([SHOES, SHOES], None, id="the same sku twice in one category"),
        pytest.param([("X", None, 1), ("X", None, 2)], None, id="twice without a category"),
        pytest.param(
            [SHOES, ("X", None, 100)],
            (1, "sku 'X' is of category 'shoes' in items.0"),
            id="once without a category",
        ),
        pytest.param(
            [("X", None, 100), SHOES],
            (1, "sku 'X' is without a category in items.0"),
            id="first without a category",
        ),
        pytest.param(
            [SHOES, ("Y", "gift_card", 100), SHOES, CARD],
            (3, "sku 'X' is of category 'shoes' in items.0"),
            id="the later item named",
        ),
        pytest.param([SHOES, ("Y", "gift_card", 100)], None, id="other skus, other categories"),
        pytest.param([SHOES], None, id="one item"),
    ],
)
def test_an_order_listing_one_sku_under_two_categories_is_refused(
    items: list[tuple[str, str | None, int]], refused: tuple[int, str] | None
) -> None:
    reason = mixed_category([(sku, category) for sku, category, _ in items])
    if refused is None:
        assert reason is None
        OrderRequest.model_validate(request(*items))
        return
    index, starts = refused
    why = f"{starts}: an order lists each sku under one category {RATES_BY_SKU}"
    assert reason == (index, why)
    with pytest.raises(ValidationError) as caught:
        OrderRequest.model_validate(request(*items))
    [error] = caught.value.errors()
    assert (error["loc"], error["msg"]) == (("items", index, "category"), why)


def test_a_reader_of_the_topic_takes_it() -> None:
    """Written before the rule (by an earlier version, not yet read by the worker at an
    upgrade) or straight to the topic: taken and priced, never dead-lettered."""
    placed = event_from_dict(order(SHOES, CARD))
    assert isinstance(placed, OrderPlaced)
    assert [item.category for item in placed.items] == ["shoes", "gift_card"]
