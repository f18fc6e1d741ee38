"""KPI counters a line contributes to, so reads never scan facts.

Each conversion line contributes to its creator's counters (conversions,
sales, revenue, refunds of sales, new customers, conversions per day) while it is the
order's current conversion; a correction that replaces it takes its share back.
The step adds the difference of a line's contribution before and after a batch,
and every posting's amount to the creator's commission (in all and per day of
the line's time). Field names: ``<counter>|<affiliate>`` and
``<counter>|<affiliate>|<YYYY-MM-DD>``.

An engagement line's postings add to ``engagement_pay`` (as every posting to commission:
a cap's or budget's re-fill that moves its pay moves the counter too; counted from the
line's pay, it missed those, and the same facts gave 800 or 500 by arrival order); a
content contributes its latest snapshot's counts to its creator's reach counters
(``contents``, ``views``, ``impressions``, ``likes``, ``comments``, ``shares``,
``saves``, ``followers``: afflux.shared.core.content_kpis.Reach), so a later snapshot,
smaller or larger, changes them by the difference. ``attributed|<affiliate>|<rule>``
counts current conversions by how their order was attributed (click_id, coupon,
cookie, livestream, survey); ``stream_revenue|<affiliate>|<platform>:<content_id>`` the
net revenue of sales a live stream won (rule livestream), for its RPM.
"""

from __future__ import annotations

from afflux.shared.core.engagement import ContentState, Snapshot
from afflux.shared.core.journal import rules
from afflux.shared.core.journal.records import LineRecord
from afflux.shared.core.journal.review_lines import is_declined, review_contribution
from afflux.shared.core.periods import day_of

Contribution = tuple[tuple[str, int], ...]
NO_FIGURES = Snapshot("", 0, 0, 0, 0, 0, 0, 0, 0, "")
ENGAGEMENT_LINE = "engagement"


def reach_contribution(state: ContentState | None) -> Contribution:
    """A content's share of its creator's reach counters: the counts of its latest
    snapshot not on hold (none before its publication and first snapshot are both known;
    a content held from its first snapshot counts with zeros until released)."""
    if state is None or state.publication is None or state.latest is None:
        return ()
    a, s = state.publication.affiliate_id, state.shown or NO_FIGURES
    return (
        (f"contents|{a}", 1),
        (f"views|{a}", s.views),
        (f"impressions|{a}", s.impressions),
        (f"likes|{a}", s.likes),
        (f"comments|{a}", s.comments),
        (f"shares|{a}", s.shares),
        (f"saves|{a}", s.saves),
        (f"followers|{a}", s.followers),
    )


def add_reach(kpis: dict[str, int], old: Contribution, new: Contribution) -> None:
    """Add the difference of a content's reach contribution before and after a batch."""
    for name, value in old:
        kpis[name] = kpis.get(name, 0) - value
    for name, value in new:
        kpis[name] = kpis.get(name, 0) + value


def kpi_contribution(record: LineRecord, period_end: int, *, empty: bool = False) -> Contribution:
    del period_end  # the counters count refunds whenever they happen
    c = record.conversion
    if empty or c is None or rules.is_superseded(record):
        return ()
    if is_declined(record):
        # Declined in review (fraud, self-purchase): counted in review_declined only. As a
        # conversion with its revenue it raised the conversion rate, AOV and ROI by an
        # order the brand refused.
        return review_contribution(record)
    a = record.affiliate_id
    day = day_of(c.occurred_at)
    sale = c.kind == "sale"
    # Capped at the order: refunds carry what they asked for (``ledger_facts.refund_fact``).
    refunded = min(sum(r.amount_minor for r in record.refunds), c.amount_minor)
    return (
        (f"conversions|{a}", 1),
        (f"conversions|{a}|{day}", 1),
        (f"sales|{a}", 1 if sale else 0),
        (f"revenue|{a}", c.amount_minor if sale else 0),
        # Sales only, as revenue: a refunded renewal or lead took revenue that was never
        # counted, and a creator's net revenue went below zero.
        (f"refunds|{a}", refunded if sale else 0),
        (f"new_customers|{a}", 1 if c.new_customer else 0),
        *(((f"attributed|{a}|{c.attributed_by}", 1),) if c.attributed_by else ()),
        *(
            ((f"stream_revenue|{a}|{c.live_stream_id}", c.amount_minor - refunded),)
            if c.live_stream_id and sale
            else ()
        ),
        *review_contribution(record),
    )


def add_contribution(
    kpis: dict[str, int], record: LineRecord, old: Contribution, new: Contribution
) -> None:
    del record
    for name, value in old:
        kpis[name] = kpis.get(name, 0) - value
    for name, value in new:
        kpis[name] = kpis.get(name, 0) + value
