"""The KPI rows carry reach, engagement, CTR, RPM, EMV and engagement pay from the
ledger's counters, beside the sales KPIs; EMV per campaign at that campaign's values."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from afflux.payouts.portal.content_tables import contents_table
from afflux.payouts.tallies import ClickItem, count_clicks
from afflux.payouts.views import Counts, combine, content_clicks, content_rows, kpi_row, tally
from afflux.shared.core.engagement import ContentState, Publication, Release, Snapshot, fold
from afflux.shared.core.engagement_terms import EngagementReview
from afflux.shared.core.journal.content_records import content_from_json, content_to_json
from afflux.shared.core.journal.kpis import reach_contribution
from afflux.shared.core.terms import EmvValues

pytestmark = pytest.mark.unit

EMV = EmvValues(per_impression_minor_per_1000=500, per_like_minor=5, per_comment_minor=10)
# One creator's counters in one campaign-period: two contents, 50 valid clicks,
# 200.00 of sales less 20.00 refunded, 30.00 commission of which 12.00 engagement pay.
KPIS = {
    "contents|anna": "2",
    "views|anna": "4000",
    "impressions|anna": "10000",
    "likes|anna": "500",
    "comments|anna": "40",
    "shares|anna": "10",
    "saves|anna": "50",
    "followers|anna": "30000",
    "engagement_pay|anna": "1200",
    "commission|anna": "3000",
    "revenue|anna": "20000",
    "refunds|anna": "2000",
    "conversions|anna": "3",
    "sales|anna": "3",
    "attributed|anna|click_id": "1",
    "attributed|anna|livestream": "2",
}
CLICKS = {"r|anna": "60", "u|anna": "50"}


def counts(kpis: dict[str, str], campaign: str = "shop", emv: EmvValues | None = EMV) -> Counts:
    out: dict[str, Counts] = {}
    tally(kpis, CLICKS, "EUR", out, campaign_id=campaign, emv=emv)
    return out["anna"]


def test_a_creators_row_has_reach_and_what_it_is_worth() -> None:
    row = kpi_row(counts(KPIS))
    assert (row["contents"], row["views"], row["impressions"]) == (2, 4_000, 10_000)
    assert row["engagement"] == 600
    assert row["engagement_by_kind"] == {"likes": 500, "comments": 40, "shares": 10, "saves": 50}
    assert row["engagement_rate"] == 0.02  # 600 / 30,000 followers
    assert row["ctr"] == 0.005  # 50 valid clicks / 10,000 impressions
    assert row["rpm_minor"] == 4_500  # 180.00 net over 4,000 views, per 1,000
    assert row["emv_minor"] == 5_000 + 2_500 + 400  # impressions, likes, comments
    assert row["engagement_pay_minor"] == 1_200
    assert row["cost_per_engagement_minor"] == 2  # 12.00 / 600
    assert row["roi"] == 5.0  # (180.00 - 30.00) / 30.00, engagement pay included
    assert row["conversions_by_rule"] == {
        "click_id": 1,
        "cookie": 0,
        "coupon": 0,
        "livestream": 2,
        "survey": 0,
    }


def test_a_sales_only_creator_shows_none_where_there_is_no_denominator() -> None:
    row = kpi_row(counts({"revenue|anna": "5000", "commission|anna": "500"}, emv=None))
    assert (row["views"], row["engagement"], row["engagement_pay_minor"]) == (0, 0, 0)
    for name in ("engagement_rate", "ctr", "rpm_minor", "emv_minor", "cost_per_engagement_minor"):
        assert row[name] is None, name


def test_emv_adds_up_per_campaign_at_each_campaigns_values() -> None:
    cheap = EmvValues(per_like_minor=1)
    row = kpi_row(
        combine(
            [counts({"likes|anna": "100"}, "a", EMV), counts({"likes|anna": "100"}, "b", cheap)]
        )
    )
    assert row["emv_minor"] == 500 + 100
    # A campaign without EMV values adds nothing, and alone answers none.
    row = kpi_row(combine([counts({"likes|anna": "100"}, "a", EMV), counts(KPIS, "b", None)]))
    assert row["emv_minor"] == 500
    assert row["engagement"] == 100 + 600


def test_a_drop_in_a_snapshot_lowers_the_sums() -> None:
    # The ledger writes the counters' new values; a later, smaller snapshot writes less.
    before = kpi_row(counts(KPIS))
    after = kpi_row(counts({**KPIS, "likes|anna": "400"}))
    assert after["engagement"] == before["engagement"] - 100
    assert after["emv_minor"] == before["emv_minor"] - 500


def test_a_contents_ctr_counts_clicks_on_links_that_name_it() -> None:
    tally: dict[str, str] = {}
    clicks = [
        ClickItem("shop", "2026-11", "k1", "anna", 1, (), "instagram:P1"),
        ClickItem("shop", "2026-11", "k2", "anna", 2, (), "instagram:P1"),
        ClickItem("shop", "2026-11", "k3", "anna", 3, ("duplicate",), "instagram:P1"),  # flagged
        ClickItem("shop", "2026-11", "k4", "anna", 4),  # a link placed in no content
        ClickItem("shop", "2026-11", "k5", "ben", 5),
    ]
    count_clicks(tally, clicks)
    assert content_clicks(tally) == {"anna": {"instagram:P1": 2}}


def test_a_content_the_creator_published_reads_as_awaiting_the_brands_release() -> None:
    own = Publication("insta:CxREAL123", "anna", "shop", "post", 0, "p-1", None, True)
    brand = replace(own, key="insta:brand-1", event_id="p-2", by_creator=False)
    states = [fold(ContentState(p.key), p, None) for p in (own, brand)]
    states += [fold(states[0], Release(own.key, "r-1", "merchant:m"), None)]
    rows = content_rows(states, {}, EMV)
    for row in rows:
        row["period"], row["currency"] = "2026-11", "EUR"
    assert [(r["held_for_review"], r["awaiting_release"]) for r in rows] == [
        (True, True),
        (False, False),
        (False, False),  # released
    ]
    brand_page = contents_table(rows[:1], with_creator=True)
    assert "CxREAL123 (published by the creator: awaiting your release)" in brand_page
    creator_page = contents_table(rows[:1], with_creator=False)
    assert "awaiting the brand&#x27;s release" in creator_page  # escaped in the page


def _snapshot(n: int, likes: int, followers: int = 10_000) -> Snapshot:
    return Snapshot(
        "insta:p1", n * 1_000, 1_000 * n, 2_000 * n, likes, 0, 0, 0, followers, f"s-{n}"
    )


def test_a_held_content_shows_its_figures_before_the_hold_until_released() -> None:
    """One snapshot of 10^12 likes, held at once, counted in reach and EMV: 50 billion EUR
    on the brand's page."""
    review = EngagementReview(max_rate=Decimal("0.5"))
    published = Publication("insta:p1", "anna", "shop", "post", 0, "p-1", None, False)
    state = fold(ContentState("insta:p1"), published, review)
    state = fold(state, _snapshot(1, 400), review)
    before_hold = state
    held = fold(state, _snapshot(2, 10**12), review)
    released = fold(held, Release("insta:p1", "r-1", "merchant:m"), review)

    assert held.on_hold
    assert reach_contribution(held) == reach_contribution(before_hold)
    [row] = content_rows([held], {}, EMV)
    assert (row["engagement"], row["views"], row["held_for_review"]) == (400, 1_000, True)
    assert row["as_of"] == 1_000  # the figures shown are the first snapshot's
    assert dict(reach_contribution(released))["likes|anna"] == 10**12  # confirmed
    # Held from its first snapshot: counted as a content, with no figures yet.
    first = fold(fold(ContentState("insta:p1"), published, review), _snapshot(1, 10**12), review)
    assert dict(reach_contribution(first)) == {
        "contents|anna": 1,
        **{f"{n}|anna": 0 for n in ("views", "impressions", "likes", "comments")},
        **{f"{n}|anna": 0 for n in ("shares", "saves", "followers")},
    }


def test_a_content_stored_before_its_confirmed_figures_were_kept_reads_as_before() -> None:
    review = EngagementReview(max_rate=Decimal("0.5"))
    published = Publication("insta:p1", "anna", "shop", "post", 0, "p-1", None, False)
    plain = fold(fold(ContentState("insta:p1"), published, review), _snapshot(1, 400), review)
    stored = content_to_json(plain)
    del stored["confirmed"]
    assert content_from_json(stored) == plain
    held = fold(plain, _snapshot(2, 10**12), review)
    stored = content_to_json(held)
    del stored["confirmed"]
    # On hold, as the reach counters of that ledger count it: its held figures, so that
    # its release adds nothing twice.
    legacy = content_from_json(stored)
    assert legacy.shown == held.latest
    released = fold(legacy, Release("insta:p1", "r-1", "merchant:m"), review)
    assert reach_contribution(released) == reach_contribution(legacy)
    assert content_from_json(content_to_json(held)) == held
