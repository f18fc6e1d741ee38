"""Response models of the payouts API (they make the OpenAPI schema exact)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Balance(BaseModel):
    currency: str
    pending_minor: int
    approved_minor: int
    paid_minor: int
    reversed_minor: int


class BalanceAnswer(BaseModel):
    affiliate_id: str
    as_of: int
    balances: list[Balance]


class CapCutView(BaseModel):
    scope: str
    cut_minor: int


class Explain(BaseModel):
    rule: str
    terms_version: int
    gross_minor: int
    refunded_minor: int
    cap_cuts: list[CapCutView]
    source_event_ids: list[str]


class LineView(BaseModel):
    """A line's postings summed: what it amounts to and why (the latest accrual's rule)."""

    line_id: str
    affiliate_id: str
    campaign_id: str
    currency: str
    period: str
    kind: str = Field(description="the line's kind (the same as line_kind)")
    line_kind: str = Field(description="sale, lead, action, click, base_fee or bonus")
    amount_minor: int = Field(description="the sum of the line's postings")
    pending_minor: int
    approved_minor: int
    status: str = Field(
        description="declined (in review), reattributed (a later click, stream or survey"
        " answer won the order),"
        " refunded (refunds or clawbacks alone took it to nothing), else approved once the"
        " line's accrual is approved at as_of, or pending"
    )
    order_id: str | None
    occurred_at: int
    approve_at: int
    rule: str
    posting_ids: list[str]
    explanation: str = Field(
        description="the line in plain words: what earned it, its order and terms version, "
        "each refund, clawback or cap cut, and what it pays when (docs/portal.md)"
    )
    explain: Explain


class PostingView(BaseModel):
    """One immutable journal entry, with its status at as_of."""

    posting_id: str
    seq: int = Field(description="order within the campaign-period's journal")
    line_id: str
    affiliate_id: str
    campaign_id: str
    period: str
    currency: str
    kind: str = Field(
        description="accrual, click_pay, base_fee, bonus, tier_adjustment, adjustment, "
        "moved, reversal, base_fee_reversal, bonus_reversal, refund_reduction, clawback, "
        "engagement_pay, engagement_correction, engagement_reversal, cap_cut or cap_release"
    )
    line_kind: str
    component: str = Field(
        description="accrual, refund, clawback:<reversal>, cap:creator or cap:campaign"
    )
    amount_minor: int
    approve_at: int
    occurred_at: int
    rule: str
    terms_version: int
    order_id: str | None
    source_event_ids: list[str]
    corrects: str | None = Field(description="the earlier posting of the same component")
    status: str


class LedgerAnswer(BaseModel):
    affiliate_id: str
    as_of: int
    campaign_id: str | None
    period: str | None
    postings: list[PostingView]
    lines: list[LineView] = Field(
        description="this page's postings grouped by line (a line whose postings span "
        "pages appears on each with that page's share)"
    )
    next_cursor: str | None = Field(description="pass as cursor for the next page; null: last")


class Total(BaseModel):
    currency: str
    amount_minor: int
    pending_minor: int
    approved_minor: int


class OverrideOnCommission(BaseModel):
    campaign_id: str
    agency_id: str
    amount_minor: int = Field(description="the override's postings summed: taken and reversed")


class StatementAnswer(BaseModel):
    affiliate_id: str
    campaign_id: str | None
    period: str
    as_of: int
    postings: list[PostingView]
    lines: list[LineView]
    totals: list[Total]
    payouts: list[dict[str, Any]]
    overrides_on_commission: list[OverrideOnCommission] = Field(
        default_factory=list,
        description="what the brand pays agencies on this creator's commission in the"
        " period (agency overrides, on top: the creator's own lines are not reduced)",
    )


class KpiFields(BaseModel):
    currency: str
    clicks: int = Field(description="clicks that are not bots (flagged or not)")
    unique_clicks: int = Field(description="valid clicks: no quality flag (what is paid)")
    valid_clicks: int = Field(description="the same as unique_clicks")
    flagged_clicks: int = Field(description="clicks with at least one quality flag, bots included")
    flagged_by_reason: dict[str, int] = Field(
        description="flagged clicks per reason: bot, duplicate, ip_duplicate, rate, embedded "
        "(a click may carry several reasons)"
    )
    conversions: int
    conversion_rate: float
    revenue_minor: int
    refunds_minor: int
    net_revenue_minor: int
    commission_minor: int
    epc_minor: int
    cpa_minor: int
    aov_minor: int
    roi: float | None = Field(
        description="(net revenue - commission) / commission; commission counts every posting,"
        " engagement pay included; null without commission"
    )
    new_customer_share: float
    reviews_held: int = Field(0, description="conversions held for review, not yet decided")
    reviews_approved: int = Field(0, description="held conversions approved in review")
    reviews_declined: int = Field(0, description="held conversions declined in review")
    contents: int = Field(description="contents with at least one stats snapshot")
    views: int = Field(description="views at each content's latest snapshot, summed")
    impressions: int = Field(description="impressions at each content's latest snapshot, summed")
    engagement: int = Field(description="likes + comments + shares + saves, latest snapshots")
    engagement_by_kind: dict[str, int] = Field(description="likes, comments, shares, saves")
    followers: int = Field(description="followers at each content's latest snapshot, summed")
    engagement_rate: float | None = Field(
        description="engagement / followers (each content's latest snapshot); null without"
        " followers"
    )
    ctr: float | None = Field(description="valid clicks / impressions; null without impressions")
    rpm_minor: int | None = Field(
        description="net revenue per 1,000 views, rounded half up; null without views"
    )
    emv_minor: int | None = Field(
        description="earned media value from the campaign's terms.emv, rounded half up once"
        " per campaign; null when no campaign of the row sets EMV values"
    )
    engagement_pay_minor: int = Field(description="postings of engagement lines")
    cost_per_engagement_minor: int | None = Field(
        description="engagement pay / engagement, rounded half up; null without engagement"
    )
    conversions_by_rule: dict[str, int] = Field(
        description="conversions per attribution rule: click_id and cookie (link), coupon"
        " (code), livestream, survey"
    )


class KpiRow(KpiFields):
    campaign_id: str
    period: str | None


class CreatorRow(KpiFields):
    affiliate_id: str
    campaign_id: str | None


class CreatorKpisList(BaseModel):
    campaign_id: str | None
    period: str | None
    creators: list[CreatorRow]


class CreatorKpis(CreatorRow):
    period: str | None
    creators: list[CreatorRow]


class ContentRow(BaseModel):
    platform: str
    content_id: str
    kind: str = Field(description="post, story, video or live")
    affiliate_id: str
    campaign_id: str
    period: str = Field(description="the period of its publication, where its figures count")
    currency: str
    published_at: int
    as_of: int | None = Field(description="the latest snapshot's time; null before the first")
    snapshots: int = Field(description="snapshots that became the latest")
    stale_snapshots: int = Field(description="snapshots at or before the latest's as_of: ignored")
    held_for_review: bool
    awaiting_release: bool = Field(
        False,
        description="held because the creator's own key published it: nothing of it counts"
        " (no engagement pay, its live stream claims no order) until the brand releases it"
        " (POST /v1/content/{platform}/{content_id}/release)",
    )
    views: int
    impressions: int
    engagement: int = Field(description="likes + comments + shares + saves")
    followers: int
    engagement_rate: float | None = Field(description="engagement / followers; null without")
    clicks: int | None = Field(
        description="valid clicks on links naming the content (utm_content=<platform>:"
        "<content_id>); null when none of its creator's clicks in the period names a content"
    )
    ctr: float | None = Field(
        description="clicks / impressions; null when clicks is null or without impressions"
    )
    revenue_minor: int | None = Field(
        description="a live stream: net revenue of the sales it won (rule livestream) in the"
        " period; null for other kinds"
    )
    rpm_minor: int | None = Field(
        description="a live stream: revenue_minor per 1,000 views; null otherwise or without views"
    )
    emv_minor: int | None = Field(description="earned media value; null without terms.emv")


class ContentsAnswer(BaseModel):
    campaign_id: str | None = None
    affiliate_id: str | None = None
    period: str | None
    contents: list[ContentRow]


class Bucket(BaseModel):
    day: str
    start: int
    clicks: int
    conversions: int
    commission_minor: int


class CurrencySeries(BaseModel):
    currency: str
    buckets: list[Bucket]


class SeriesAnswer(BaseModel):
    currency: str
    buckets: list[Bucket]
    campaign_id: str | None = None
    affiliate_id: str | None = None
    by_currency: list[CurrencySeries] | None = Field(
        None,
        description="a creator's series without a campaign: one per currency of their"
        " campaigns (currency and buckets above are the first's); money never mixes",
    )


class PayoutResult(BaseModel):
    affiliate_id: str
    campaign_id: str
    currency: str
    period: str
    status: str
    amount_minor: int
    payout_id: str | None


class PayoutRunAnswer(BaseModel):
    as_of: int
    period: str = Field(description="the payout period paid (results name their own)")
    campaign_id: str | None
    results: list[PayoutResult]
