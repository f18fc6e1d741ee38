"""Creator-economy KPIs (pure): reach, engagement and what they are worth.

Every figure is a function of counts a period holds, never of a clock:

* a content's counts are those of its latest snapshot (``ContentStats``: cumulative,
  the latest by ``as_of`` wins); a creator's or campaign's are the sums over its
  contents (``Reach``), so a drop in a snapshot lowers them;
* money is integer minor units of the campaign's currency, rounded once, half up
  (``divide_half_up``); ratios are ``Decimal`` rounded half up to 6 places;
* a figure whose denominator is 0 is ``None`` ("none" on a page), never an error.

Definitions (docs/payouts.md, KPIs):

* engagement = likes + comments + shares + saves;
* engagement rate = engagement / followers, the followers of each content's latest
  snapshot summed over the contents (for one content: its followers), so a creator's
  rate over several contents is the follower-weighted mean of their rates;
* CTR = valid clicks / impressions;
* RPM = net revenue (sales less refunds) / views * 1,000;
* EMV = impressions * per_impression / 1,000 + views * per_view / 1,000 + each
  interaction kind * its value (``EmvValues`` of the campaign's terms), rounded once;
* cost per engagement = engagement pay / engagement;
* ROI = (net revenue - commission) / commission, commission counting every posting,
  engagement pay included.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from decimal import ROUND_HALF_UP, Decimal

from afflux.shared.core.money import divide_half_up
from afflux.shared.core.terms import EmvValues

RATIO_PLACES = Decimal("0.000001")
PER_MILLE = 1000


@dataclass(frozen=True, slots=True)
class Reach:
    """Counts of one content's latest snapshot, or their sums over several contents."""

    contents: int = 0  # contents with at least one snapshot
    views: int = 0
    impressions: int = 0
    likes: int = 0
    comments: int = 0
    shares: int = 0
    saves: int = 0
    followers: int = 0  # each content's followers at its latest snapshot, summed

    @property
    def engagement(self) -> int:
        return self.likes + self.comments + self.shares + self.saves

    def __add__(self, other: Reach) -> Reach:
        return Reach(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(Reach)))

    def __sub__(self, other: Reach) -> Reach:
        return Reach(*(getattr(self, f.name) - getattr(other, f.name) for f in fields(Reach)))


def total(reaches: Iterable[Reach]) -> Reach:
    """The sum over contents (or over creators' sums)."""
    out = Reach()
    for reach in reaches:
        out = out + reach
    return out


def ratio(numerator: int, denominator: int) -> Decimal | None:
    """``numerator / denominator`` to 6 places, half up; None when the denominator is 0."""
    if denominator == 0:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(RATIO_PLACES, ROUND_HALF_UP)


def engagement_rate(reach: Reach) -> Decimal | None:
    return ratio(reach.engagement, reach.followers)


def ctr(valid_clicks: int, reach: Reach) -> Decimal | None:
    return ratio(valid_clicks, reach.impressions)


def rpm_minor(net_revenue_minor: int, reach: Reach) -> int | None:
    """Net revenue per 1,000 views, in minor units; None without views."""
    if reach.views == 0:
        return None
    return divide_half_up(net_revenue_minor * PER_MILLE, reach.views)


def emv_minor(reach: Reach, values: EmvValues | None) -> int | None:
    """Earned media value in minor units; None when the campaign sets no EMV values."""
    if values is None:
        return None
    # Thousandths of a minor unit, so the whole sum is rounded once.
    milli = (
        reach.impressions * values.per_impression_minor_per_1000
        + reach.views * values.per_view_minor_per_1000
        + PER_MILLE
        * (
            reach.likes * values.per_like_minor
            + reach.comments * values.per_comment_minor
            + reach.shares * values.per_share_minor
            + reach.saves * values.per_save_minor
        )
    )
    return divide_half_up(milli, PER_MILLE)


def cost_per_engagement_minor(engagement_pay_minor: int, reach: Reach) -> int | None:
    """Engagement pay per interaction, in minor units; None without engagement."""
    if reach.engagement == 0:
        return None
    return divide_half_up(engagement_pay_minor, reach.engagement)


def roi(net_revenue_minor: int, commission_minor: int) -> Decimal | None:
    """(net revenue - commission) / commission; commission includes engagement pay."""
    return ratio(net_revenue_minor - commission_minor, commission_minor)


@dataclass(frozen=True, slots=True)
class ContentKpis:
    """What a page or the API shows of a reach (a content, a creator or a campaign)."""

    views: int
    impressions: int
    engagement: int
    engagement_rate: Decimal | None
    ctr: Decimal | None
    rpm_minor: int | None
    emv_minor: int | None
    cost_per_engagement_minor: int | None


def content_kpis(
    reach: Reach,
    *,
    valid_clicks: int,
    net_revenue_minor: int,
    engagement_pay_minor: int,
    emv: EmvValues | None,
) -> ContentKpis:
    return ContentKpis(
        views=reach.views,
        impressions=reach.impressions,
        engagement=reach.engagement,
        engagement_rate=engagement_rate(reach),
        ctr=ctr(valid_clicks, reach),
        rpm_minor=rpm_minor(net_revenue_minor, reach),
        emv_minor=emv_minor(reach, emv),
        cost_per_engagement_minor=cost_per_engagement_minor(engagement_pay_minor, reach),
    )
