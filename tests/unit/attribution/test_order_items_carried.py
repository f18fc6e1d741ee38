"""An order's items and non-commissionable part reach its conversion, and a correction
(a late click re-deciding the order after a restart from the changelog) carries them too,
so the ledger prices the corrected conversion the same way."""

from __future__ import annotations

import pytest

from afflux.attribution.join import JoinPartition
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import ClickRecorded, ConversionAttributed, OrderItem, OrderPlaced

pytestmark = pytest.mark.unit

DAY = 86_400_000
ORDER_AT = 1_793_491_200_000
TERMS = TermsVersion(
    version=1,
    effective_from=0,
    published_at=0,
    terms=CampaignTerms.model_validate(
        {
            "campaign_id": "campaign",
            "merchant_id": "merchant",
            "currency": "EUR",
            "grace_seconds": 1,
            "plan": {"sale": {"rate": {"percent": "10"}}},
        }
    ),
)
ITEMS = (
    OrderItem(sku="shoe", quantity=2, price_minor=3_000, category="shoes"),
    OrderItem(sku="card", price_minor=2_000, category="gift_card"),
)


def terms(campaign: str, at: int) -> TermsVersion | None:
    return TERMS


def click(at: int, creator: str) -> ClickRecorded:
    return ClickRecorded(
        event_id=f"ev-{creator}",
        occurred_at=at,
        click_id=f"click-{creator}",
        link_code="code",
        affiliate_id=creator,
        campaign_id="campaign",
        visitor_id="v",
    )


def test_items_survive_the_changelog_and_reach_a_corrected_conversion() -> None:
    join = JoinPartition()
    join.click("v", click(ORDER_AT - 2 * DAY, "ana"), arrived=0, terms=terms)
    order = OrderPlaced(
        event_id="order-ev",
        occurred_at=ORDER_AT,
        order_id="order",
        campaign_id="campaign",
        merchant_id="merchant",
        currency="EUR",
        amount_minor=8_495,
        visitor_id="v",
        items=ITEMS,
        non_commissionable_minor=495,
        non_commissionable_reason="shipping",
    )
    join.order("v", order, arrived=0)
    [(_, _, first)] = join.due(1_000, terms)
    assert isinstance(first, ConversionAttributed)
    assert (first.items, first.non_commissionable_minor) == (ITEMS, 495)

    restored = JoinPartition()
    for key, value in join.take_dirty():
        if value is not None:
            restored.restore(key, value)
    late = restored.click("v", click(ORDER_AT - DAY, "bea"), arrived=2_000, terms=terms)

    corrected = [e for _, _, e in late.outputs if isinstance(e, ConversionAttributed)]
    assert [(c.affiliate_id, c.items, c.non_commissionable_minor) for c in corrected] == [
        ("bea", ITEMS, 495)
    ]
