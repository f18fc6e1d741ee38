"""The demo's what-if draft: every percent tier rate doubled (at most 100 %), the rest of
the terms untouched, and the first campaign with tiers chosen."""

from __future__ import annotations

from decimal import Decimal

import pytest

from afflux.cli.demo_whatif import doubled_tiers, question, tiered
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


def test_the_question_names_each_percent_tier_now_and_in_the_draft() -> None:
    given = terms(
        "acme",
        [
            {"from_sales": 20, "rate": {"percent": "10"}},
            {"from_sales": 35, "rate": {"fixed_minor": 300}},  # not a percent: not doubled
            {"from_sales": 50, "rate": {"percent": "12.5"}},
        ],
    )
    assert question(given) == (
        "What if acme doubled its tier rates "
        "(from net sale 20: 10% -> 20%, from net sale 50: 12.5% -> 25%)?"
    )
