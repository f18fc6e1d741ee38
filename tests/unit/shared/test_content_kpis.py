"""Creator-economy KPIs: each definition at its boundaries, rounding half up once, and
every zero denominator answered as None, never a division error."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest

from afflux.shared.core.content_kpis import (
    Reach,
    content_kpis,
    cost_per_engagement_minor,
    ctr,
    emv_minor,
    engagement_rate,
    roi,
    rpm_minor,
    total,
)
from afflux.shared.core.terms import CampaignTerms, EmvValues

pytestmark = pytest.mark.unit

POST = Reach(
    contents=1,
    views=4_000,
    impressions=10_000,
    likes=512,
    comments=40,
    shares=8,
    saves=20,
    followers=20_000,
)
EMPTY = Reach()
VALUES = EmvValues(
    per_impression_minor_per_1000=500,  # a 5.00 CPM
    per_view_minor_per_1000=0,
    per_like_minor=5,
    per_comment_minor=10,
    per_share_minor=20,
    per_save_minor=15,
)


def test_engagement_is_likes_comments_shares_and_saves() -> None:
    assert POST.engagement == 512 + 40 + 8 + 20


def test_sums_add_every_count_and_a_drop_subtracts() -> None:
    shrunk = Reach(1, 4_000, 10_000, 400, 40, 8, 20, 20_000)
    assert total([POST, POST]) == Reach(2, 8_000, 20_000, 1_024, 80, 16, 40, 40_000)
    assert POST - shrunk == Reach(likes=112)
    assert total([]) == EMPTY


@dataclass(frozen=True)
class RatioCase:
    engagement: int
    followers: int
    expected: Decimal | None


@pytest.mark.parametrize(
    "case",
    [
        RatioCase(580, 20_000, Decimal("0.029")),  # plain
        RatioCase(1, 3, Decimal("0.333333")),  # rounds down below the half
        RatioCase(2, 3, Decimal("0.666667")),  # rounds up above the half
        RatioCase(1, 2_000_000, Decimal("0.000001")),  # 0.0000005: a half goes up
        RatioCase(5, 0, None),  # no followers: none, not a division error
        RatioCase(0, 0, None),  # nothing at all: none
        RatioCase(3_000, 1_000, Decimal("3")),  # above 1 (bought engagement looks so)
    ],
)
def test_engagement_rate(case: RatioCase) -> None:
    reach = Reach(contents=1, likes=case.engagement, followers=case.followers)
    assert engagement_rate(reach) == case.expected


def test_engagement_rate_over_contents_is_weighted_by_followers() -> None:
    small = Reach(contents=1, likes=100, followers=1_000)  # 10 %
    large = Reach(contents=1, likes=100, followers=9_000)  # 1.11 %
    assert engagement_rate(total([small, large])) == Decimal("0.02")


@pytest.mark.parametrize(
    ("clicks", "impressions", "expected"),
    [
        (50, 10_000, Decimal("0.005")),  # plain
        (0, 10_000, Decimal("0")),  # no clicks: 0, the impressions are there
        (7, 0, None),  # clicks but no impressions reported: none
    ],
)
def test_ctr_is_valid_clicks_per_impression(
    clicks: int, impressions: int, expected: Decimal | None
) -> None:
    assert ctr(clicks, Reach(impressions=impressions)) == expected


@pytest.mark.parametrize(
    ("net_revenue", "views", "expected"),
    [
        (20_000, 4_000, 5_000),  # 200.00 over 4,000 views: 50.00 per 1,000
        (1, 2_000, 1),  # 0.5 minor units: a half goes up
        (1, 2_001, 0),  # just below the half
        (-1_000, 1_000, -1_000),  # refunds above sales: a negative RPM, not hidden
        (5_000, 0, None),  # no views: none
    ],
)
def test_rpm_is_net_revenue_per_thousand_views(
    net_revenue: int, views: int, expected: int | None
) -> None:
    assert rpm_minor(net_revenue, Reach(views=views)) == expected


def test_emv_adds_reach_and_each_interaction_at_its_value() -> None:
    # 10,000 * 5.00 / 1,000 + 512 * 0.05 + 40 * 0.10 + 8 * 0.20 + 20 * 0.15
    assert emv_minor(POST, VALUES) == 5_000 + 2_560 + 400 + 160 + 300


@dataclass(frozen=True)
class EmvCase:
    reach: Reach
    values: EmvValues | None
    expected: int | None


@pytest.mark.parametrize(
    "case",
    [
        EmvCase(POST, None, None),  # the campaign sets no EMV values: none
        EmvCase(EMPTY, VALUES, 0),  # no reach yet: worth 0
        EmvCase(Reach(impressions=1), EmvValues(per_impression_minor_per_1000=500), 1),  # 0.5
        EmvCase(Reach(impressions=1), EmvValues(per_impression_minor_per_1000=499), 0),  # 0.499
        # Fractions of views and impressions add up before the one rounding: 0.3 + 0.3.
        EmvCase(
            Reach(impressions=1, views=1),
            EmvValues(per_impression_minor_per_1000=300, per_view_minor_per_1000=300),
            1,
        ),
    ],
)
def test_emv_rounds_once(case: EmvCase) -> None:
    assert emv_minor(case.reach, case.values) == case.expected


@pytest.mark.parametrize(
    ("pay", "engagement", "expected"),
    [
        (2_900, 580, 5),  # 29.00 over 580 interactions
        (3, 2, 2),  # 1.5: a half goes up
        (0, 580, 0),  # engagement not paid (the minimum not reached): 0
        (100, 0, None),  # no engagement: none
    ],
)
def test_cost_per_engagement(pay: int, engagement: int, expected: int | None) -> None:
    assert cost_per_engagement_minor(pay, Reach(likes=engagement)) == expected


@pytest.mark.parametrize(
    ("net_revenue", "commission", "expected"),
    [
        (20_000, 5_000, Decimal("3")),  # sales and engagement pay together
        (0, 2_900, Decimal("-1")),  # engagement paid, nothing sold
        (1_000, 0, None),  # no commission: none
    ],
)
def test_roi_counts_every_commission(
    net_revenue: int, commission: int, expected: Decimal | None
) -> None:
    assert roi(net_revenue, commission) == expected


def test_no_content_at_all_gives_nones_not_errors() -> None:
    kpis = content_kpis(
        EMPTY, valid_clicks=3, net_revenue_minor=100, engagement_pay_minor=0, emv=VALUES
    )
    assert (kpis.views, kpis.impressions, kpis.engagement, kpis.emv_minor) == (0, 0, 0, 0)
    assert (kpis.engagement_rate, kpis.ctr, kpis.rpm_minor, kpis.cost_per_engagement_minor) == (
        None,
        None,
        None,
        None,
    )


def test_terms_take_emv_values_and_default_to_none() -> None:
    base = {"campaign_id": "c", "merchant_id": "m", "currency": "EUR"}
    assert CampaignTerms.model_validate(base).emv is None
    terms = CampaignTerms.model_validate({**base, "emv": {"per_like_minor": 5}})
    assert terms.emv == EmvValues(per_like_minor=5)
    with pytest.raises(ValueError, match="per_like_minor"):
        CampaignTerms.model_validate({**base, "emv": {"per_like_minor": -1}})
