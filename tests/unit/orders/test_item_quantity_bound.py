"""An item's quantity is bounded like an amount (at most 10^15, exact as a double in
other languages): a free item of 10^250 units summed to 0 and was accepted, then carried
on every conversion and reversal of the order. Refused at the orders API naming the
item's ``quantity``, and by the event schemas on a topic."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import ValidationError

from afflux.orders.errors import Rejected
from afflux.orders.ingest import parse
from afflux.orders.placement import Placement
from afflux.orders.rules import OrderRequest, RefundRequest, order_event
from afflux.shared.core.money import MAX_AMOUNT_MINOR
from afflux.shared.core.terms import CampaignTerms
from afflux.shared.events import OrderItem, RefundItem

pytestmark = pytest.mark.unit

NOW = 1_790_000_000_000
TERMS = CampaignTerms(campaign_id="shop", merchant_id="merchant-a", currency="EUR")


@dataclass(frozen=True)
class Case:
    name: str
    quantity: Any
    refused: bool


CASES = [
    # The bound itself: taken.
    Case("10^15 units", MAX_AMOUNT_MINOR, False),
    # One past it: refused.
    Case("10^15 + 1 units", MAX_AMOUNT_MINOR + 1, True),
    # Far past it (a free item, so the items still sum to the amount): refused.
    Case("10^250 units", 10**250, True),
    # No units: refused, as before.
    Case("0 units", 0, True),
]


def order(quantity: Any) -> dict[str, Any]:
    return {
        "order_id": "o-1",
        "campaign_id": "shop",
        "occurred_at": NOW,
        "currency": "EUR",
        "visitor_id": "v-1",
        "amount_minor": 1000,
        "items": [
            {"sku": "hat", "price_minor": 1000},
            {"sku": "sticker", "quantity": quantity, "price_minor": 0},
        ],
    }


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_an_order_items_quantity_is_bounded_naming_it(case: Case) -> None:
    if not case.refused:
        request = parse(OrderRequest, order(case.quantity))
        event = order_event(request, TERMS, "merchant-a", Placement(NOW))
        assert event.items[1].quantity == case.quantity
        return
    with pytest.raises(Rejected) as caught:
        parse(OrderRequest, order(case.quantity))
    assert (caught.value.status, caught.value.field) == (422, "items.1.quantity")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_a_refund_items_quantity_is_bounded_naming_it(case: Case) -> None:
    body = {
        "refund_id": "r-1",
        "order_id": "o-1",
        "campaign_id": "shop",
        "occurred_at": NOW,
        "currency": "EUR",
        "amount_minor": 100,
        "items": [{"sku": "sticker", "quantity": case.quantity}],
    }
    if not case.refused:
        assert parse(RefundRequest, body).items[0].quantity == case.quantity
        return
    with pytest.raises(Rejected) as caught:
        parse(RefundRequest, body)
    assert (caught.value.status, caught.value.field) == (422, "items.0.quantity")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_the_event_schemas_hold_the_same_bound(case: Case) -> None:
    for model, fields in (
        (OrderItem, {"sku": "s", "quantity": case.quantity}),
        (RefundItem, {"sku": "s", "quantity": case.quantity}),
    ):
        if case.refused:
            with pytest.raises(ValidationError):
                model.model_validate(fields)
        else:
            assert model.model_validate(fields).quantity == case.quantity
