"""A conversion is paid on its items only when they and its non-commissionable part make
up its amount, as the attribution worker checks an order: one written straight to the
topic whose items were worth twice the sale was paid twice (1600 where 800 was due), and
one whose non-commissionable part exceeded it was taken and earned nothing, both without
a dead letter."""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.payouts.test_placement_reversal_currency import NOV_15, placement

from afflux.payouts.batch import Batch
from afflux.payouts.placement import Rejected
from afflux.shared.events import ConversionAttributed

pytestmark = pytest.mark.unit


def conversion(**fields: Any) -> ConversionAttributed:
    return ConversionAttributed.model_validate(
        {
            "event_id": "ev-1",
            "occurred_at": NOV_15,
            "conversion_id": "conv-1",
            "order_id": "o-1",
            "campaign_id": "camp",
            "affiliate_id": "anna",
            "reason": "cookie",
            "model": "last_click",
            "window_ms": 1,
            "terms_version": 1,
            "amount_minor": 10_000,
            "currency": "EUR",
            "order_event_id": "oev-1",
            **fields,
        }
    )


def item(quantity: int, price: int) -> dict[str, Any]:
    return {"sku": "a", "quantity": quantity, "price_minor": price}


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"items": [item(2, 10_000)]}, "items sum to 20000 and non_commissionable_minor is 0"),
        ({"non_commissionable_minor": 10**12}, "non_commissionable_minor 1000000000000 is not"),
        ({"items": [item(10**15, 10**15)]}, f"items sum to {10**30}"),
        ({"items": [item(1, 9_000)]}, "items sum to 9000"),  # worth less: shipping unsaid
    ],
)
def test_a_conversion_whose_items_do_not_make_up_its_amount_is_refused(
    fields: dict[str, Any], reason: str
) -> None:
    batch = Batch()
    with pytest.raises(Rejected, match=reason):
        placement().place(conversion(**fields), batch)
    assert batch.conversions == []


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"items": [item(2, 5_000)]},
        {"items": [item(1, 9_000)], "non_commissionable_minor": 1_000},
        {"non_commissionable_minor": 10_000},
    ],
)
def test_a_conversion_whose_items_make_up_its_amount_is_placed(fields: dict[str, Any]) -> None:
    batch = Batch()
    placement().place(conversion(**fields), batch)
    assert len(batch.conversions) == 1
