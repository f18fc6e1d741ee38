"""Which creators a campaign's terms name (``names_creator``): such a creator belongs to
the campaign, and its own key may publish content there (docs/payouts.md)."""

from __future__ import annotations

from typing import Any

import pytest

from afflux.shared.core.terms import CampaignTerms, names_creator

pytestmark = pytest.mark.unit

BASE: dict[str, Any] = {"campaign_id": "glow", "merchant_id": "m", "currency": "EUR"}


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({}, False),
        ({"coupons": {"ANA10": "ana"}}, True),
        ({"coupons": {"ANA": "bo"}}, False),  # a coupon whose code spells the name
        ({"window_overrides_days": {"ana": 60}}, True),
        ({"survey": {"handles": {"@AnnaStyle": "ana"}}}, True),
        ({"survey": {"handles": {"@ana": "bo"}}}, False),
        ({"overrides": {"agencies": {"ana": {"agency_id": "ag", "share_percent": "5"}}}}, True),
        ({"overrides": {"agencies": {"bo": {"agency_id": "ana", "share_percent": "5"}}}}, False),
    ],
)
def test_terms_name_a_creator_by_its_coupon_handle_window_or_agency(
    extra: dict[str, Any], named: bool
) -> None:
    assert names_creator(CampaignTerms.model_validate({**BASE, **extra}), "ana") is named
