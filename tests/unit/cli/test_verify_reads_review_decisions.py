"""``afflux verify`` compares the ledger with the lines the reference makes of what the
topics hold; the review decisions are among them. Left out, every declined line read as
a divergence (the reference paid it, the ledger did not) and no review money was ever
checked."""

from __future__ import annotations

import pytest

from afflux.cli.ledger_compare import lines_of
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import CampaignTermsPublished, ConversionAttributed, ConversionReviewed

pytestmark = pytest.mark.unit

START = 1_793_491_200_000  # 2026-11-01
TERMS = CampaignTerms.model_validate(
    {
        "campaign_id": "shop",
        "merchant_id": "m",
        "currency": "EUR",
        "plan": {"sale": {"rate": {"percent": "10"}}},
        "review": {"hold_on": ["self_referral"]},
    }
)
PUBLISHED = CampaignTermsPublished(
    event_id="terms-shop-1",
    occurred_at=0,
    campaign_id="shop",
    versions=(TermsVersion(version=1, effective_from=0, published_at=0, terms=TERMS),),
)


def held(conversion: str) -> ConversionAttributed:
    return ConversionAttributed(
        event_id=conversion, occurred_at=START, conversion_id=conversion,
        order_id=f"o-{conversion}", campaign_id="shop", affiliate_id="ana", reason="coupon",
        model="last_click", window_ms=0, terms_version=1, amount_minor=10_000,
        currency="EUR", order_event_id=f"ev-{conversion}", risk_signals=("self_referral",),
    )  # fmt: skip


def decided(conversion: str, decision: str) -> ConversionReviewed:
    return ConversionReviewed(
        event_id=f"d-{conversion}", occurred_at=START + 5, conversion_id=conversion,
        order_id=f"o-{conversion}", campaign_id="shop", affiliate_id="ana",
        order_occurred_at=START, decision=decision, reason="own order", decided_by="admin",
    )  # fmt: skip


def test_a_declined_line_is_expected_to_pay_nothing_and_an_approved_one_its_commission() -> None:
    events = [PUBLISHED, decided("c1", "decline"), decided("c2", "approve")]

    lines = lines_of(events, [held("c1"), held("c2")])

    assert [(x.order_id, x.amount_minor) for x in lines["ana"]] == [("o-c2", 1_000)]
