"""The demo's what-if draft: every percent tier rate doubled (at most 100 %), the rest of
the terms untouched, and the first campaign with tiers chosen."""

from __future__ import annotations

from decimal import Decimal

import pytest

from afflux.cli.demo_whatif import doubled_tiers, tiered
from afflux.shared.core.terms import CampaignTerms

pytestmark = pytest.mark.unit


def terms(campaign: str, tiers: list[dict[str, object]]) -> CampaignTerms:
    return CampaignTerms.model_validate(
        {
            "campaign_id": campaign,
            "merchant_id": "m",
            "currency": "EUR",
            "plan": {"sale": {"rate": {"percent": "8"}}, "tiers": tiers},
        }
    )


def test_every_percent_tier_rate_doubles_and_fixed_ones_stay() -> None:
    given = terms(
        "c",
        [
            {"from_sales": 20, "rate": {"percent": "10"}},
            {"from_sales": 50, "rate": {"fixed_minor": 300}},
            {"from_sales": 80, "rate": {"percent": "60"}},  # doubled past 100: 100
        ],
    )
    draft = doubled_tiers(given)
    assert [t.rate.percent for t in draft.plan.tiers] == [Decimal(20), None, Decimal(100)]
    assert draft.plan.tiers[1].rate.fixed_minor == 300
    assert draft.model_copy(update={"plan": given.plan}) == given


def test_the_first_campaign_with_tiers_is_chosen() -> None:
    plain = terms("plain", [])
    tiers = terms("tiered", [{"from_sales": 2, "rate": {"percent": "10"}}])
    assert tiered([plain, tiers]) == tiers
    assert tiered([plain]) is None
