"""The demo's creator content: a plan from the seed and the time alone, whose snapshots
shrink once, stay below the example terms' review ceilings and reach their minimum; and
the closing table prints RPM, CTR and EMV beside the sales KPIs, none where undefined."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from afflux.cli.console import console_for
from afflux.cli.demo_content import plan_content, wants_content
from afflux.cli.demo_report import ContentReport, print_content
from afflux.shared.campaign_file import load_campaign_file

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
TERMS = {
    e.terms.campaign_id: e.terms
    for e in load_campaign_file(ROOT / "examples/campaigns.yaml").campaigns
}
GLOW = TERMS["glow-cosmetics"]
NOW = 1_793_577_600_000
CREATORS = ["creator-01", "creator-02", "creator-03"]


def interactions(stats: dict[str, int]) -> int:
    return stats["likes"] + stats["comments"] + stats["shares"] + stats["saves"]


def test_only_creator_economy_campaigns_get_content() -> None:
    assert [cid for cid, t in TERMS.items() if wants_content(t)] == ["glow-cosmetics"]


def test_the_plan_depends_on_the_seed_and_time_only() -> None:
    assert plan_content(GLOW, CREATORS, NOW, 7) == plan_content(GLOW, CREATORS, NOW, 7)
    assert plan_content(GLOW, CREATORS, NOW, 7) != plan_content(GLOW, CREATORS, NOW, 8)


def test_snapshots_are_in_the_past_one_shrinks_and_none_is_held_for_review() -> None:
    planned, live = plan_content(GLOW, CREATORS, NOW, 7)
    post, video = planned
    assert [c.publication["kind"] for c in (post, video, live)] == ["post", "video", "live"]
    assert live.publication["live_started_at"] <= NOW
    assert "live_ended_at" not in live.publication
    likes = [s["likes"] for s in post.snapshots]
    assert likes[-1] < likes[-2]  # the platform removed fake likes
    plan = GLOW.plan.engagement
    assert plan is not None
    assert plan.review is not None
    assert plan.review.max_rate is not None
    assert plan.review.max_jump is not None
    for content in planned:
        times = [s["as_of"] for s in content.snapshots]
        assert times == sorted(times)
        assert times[-1] < NOW
        assert content.publication["published_at"] <= times[0]
        for before, after in zip(content.snapshots, content.snapshots[1:], strict=False):
            assert interactions(after) <= plan.review.max_jump * interactions(before)
        for s in content.snapshots:
            assert interactions(s) <= plan.review.max_rate * s["followers"]
        assert interactions(content.snapshots[-1]) >= plan.minimum_interactions


def kpis(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "currency": "EUR",
        "clicks": 120,
        "conversions_by_rule": {
            "click_id": 5,
            "cookie": 2,
            "coupon": 1,
            "livestream": 4,
            "survey": 0,
        },
        "net_revenue_minor": 123_456,
        "commission_minor": 20_000,
        "engagement_pay_minor": 7_500,
        "views": 120_000,
        "engagement": 9_000,
        "engagement_rate": 0.0321,
        "ctr": 0.0005,
        "rpm_minor": 1_029,
        "emv_minor": 98_765,
    }
    return {**base, **changes}


def test_the_table_prints_rpm_ctr_and_emv_beside_the_sales_kpis() -> None:
    live = {
        "platform": "tiktok",
        "content_id": "live-1",
        "kind": "live",
        "affiliate_id": "creator-03",
        "views": 18_000,
        "engagement": 2_400,
        "engagement_rate": 0.03,
        "rpm_minor": 1_500,
        "emv_minor": 4_000,
    }
    post = {
        **live,
        "content_id": "post-1",
        "kind": "post",
        "views": 0,
        "engagement_rate": None,
        "rpm_minor": None,
    }
    out = io.StringIO()
    print_content(console_for(out), [ContentReport("glow", kpis(), (post, live))])
    text = out.getvalue()
    for heading in ("clicks", "revenue", "commission", "views", "ER", "CTR", "RPM", "EMV"):
        assert heading in text
    assert "7/1/4/0" in text  # conversions by link, code, live stream and survey
    assert "1,234.56" in text  # grouped, as a person reads money
    assert "10.29" in text
    assert "987.65" in text
    assert "0.05%" in text
    assert "3.21%" in text
    assert text.index("tiktok:live-1") < text.index("tiktok:post-1")  # most viewed first
    assert "none" in text  # a content without views has no RPM or ER


def test_a_campaign_without_content_prints_none_not_an_error() -> None:
    out = io.StringIO()
    empty = kpis(
        views=0, engagement=0, engagement_rate=None, ctr=None, rpm_minor=None, emv_minor=None
    )
    print_content(console_for(out), [ContentReport("glow", empty, ())])
    assert out.getvalue().count("none") >= 4
