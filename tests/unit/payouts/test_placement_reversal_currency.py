"""A reversal takes money back in its conversion's currency: one in another currency than
its campaign's, written straight to the topic, is refused (dead-lettered by the consumer)
before it is placed, as a conversion in another currency is; it reversed 5000 EUR for
5000 USD."""

from __future__ import annotations

import pytest

from afflux.payouts.batch import Batch
from afflux.payouts.placement import Placement, Rejected
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import CampaignTermsPublished, ConversionReversed
from afflux.shared.io.campaign_view import CampaignDirectory

pytestmark = pytest.mark.unit

NOV_15 = 1_794_700_800_000


def placement() -> Placement:
    terms = CampaignTerms.model_validate(
        {"campaign_id": "camp", "merchant_id": "m", "currency": "EUR"}
    )
    directory = CampaignDirectory()
    directory.apply(
        CampaignTermsPublished(
            event_id="t",
            occurred_at=0,
            campaign_id="camp",
            versions=(TermsVersion(version=1, effective_from=0, published_at=0, terms=terms),),
        )
    )
    return Placement(directory)


def reversal(currency: str) -> ConversionReversed:
    return ConversionReversed(
        event_id=f"rev-{currency}",
        occurred_at=NOV_15 + 1,
        reversal_id="rev",
        refund_id="refund",
        conversion_id="conv",
        order_id="order",
        campaign_id="camp",
        affiliate_id="anna",
        amount_minor=5_000,
        requested_minor=5_000,
        refunded_total_minor=5_000,
        order_amount_minor=10_000,
        currency=currency,
        order_occurred_at=NOV_15,
    )


def test_a_reversal_in_another_currency_than_its_campaigns_is_refused_and_placed_nowhere() -> None:
    batch = Batch()
    with pytest.raises(Rejected, match="reversal in USD for campaign 'camp' paid in EUR"):
        placement().place(reversal("USD"), batch)
    assert batch.refunds == []


def test_a_reversal_in_its_campaigns_currency_is_placed() -> None:
    batch = Batch()
    placement().place(reversal("EUR"), batch)
    assert [fact.amount_minor for _, _, fact in batch.refunds] == [5_000]
