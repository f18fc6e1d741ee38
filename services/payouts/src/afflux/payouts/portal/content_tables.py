"""The creator-economy KPIs on a page: a row's reach and what it is worth, and one row
per content (the KPI API's ``/contents`` answer), with each definition stated."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from afflux.payouts.portal import html as h

NONE = "none"  # a ratio without a denominator (no views, followers or impressions)
CONTENT_KPI_DEFINITIONS = (
    "Engagement = likes + comments + shares + saves at each content's latest snapshot. "
    "Engagement rate = engagement ÷ followers (at each content's latest snapshot). "
    "CTR = valid clicks ÷ impressions. RPM = net revenue per 1,000 views. "
    "EMV = what the reach would have cost as ads, at the campaign's values. "
    "Cost per engagement = engagement pay ÷ engagement. "
    "Per content, CTR counts the clicks on links that name the content "
    "(utm_content=<platform>:<content_id>), none when the creator's links name none; "
    "RPM is a live stream's: the sales it won per 1,000 views."
)


def percent(value: object) -> str:
    return NONE if value is None else h.esc(f"{float(value) * 100:.2f} %")  # type: ignore[arg-type]


def money_or_none(value: object, currency: str) -> str:
    return NONE if value is None else h.amount(int(value), currency)  # type: ignore[call-overload]


def reach_table(row: Mapping[str, Any]) -> str:
    """One row: a campaign's or creator's reach, engagement and what they are worth."""
    currency = str(row["currency"])
    return h.table(
        (
            "Contents",
            "Views",
            "Impressions",
            "Engagement",
            "Engagement rate",
            "CTR",
            "RPM",
            "EMV",
            "Engagement pay",
            "Cost per engagement",
        ),
        [
            [
                h.esc(f"{row['contents']:,}"),
                h.esc(f"{row['views']:,}"),
                h.esc(f"{row['impressions']:,}"),
                h.esc(f"{row['engagement']:,}"),
                percent(row["engagement_rate"]),
                percent(row["ctr"]),
                money_or_none(row["rpm_minor"], currency),
                money_or_none(row["emv_minor"], currency),
                h.amount(int(row["engagement_pay_minor"]), currency),
                money_or_none(row["cost_per_engagement_minor"], currency),
            ]
        ],
        numeric=frozenset(range(10)),
        cls="reach",
    )


def attribution_line(row: Mapping[str, Any]) -> str:
    """Conversions by how the order was attributed: link, code, live stream, survey."""
    rules = row["conversions_by_rule"]
    link = int(rules.get("click_id", 0)) + int(rules.get("cookie", 0))
    return (
        '<p id="conversions-by-rule">Conversions by attribution: '
        f"{link} by link, {int(rules.get('coupon', 0))} by code, "
        f"{int(rules.get('livestream', 0))} during a live stream, "
        f"{int(rules.get('survey', 0))} survey-attributed.</p>"
    )


def contents_table(rows: Sequence[Mapping[str, Any]], *, with_creator: bool) -> str:
    """One row per content: platform, kind, views, engagement, ER, CTR, RPM, EMV."""
    if not rows:
        return '<p id="no-contents">No content published in this period.</p>'
    headers = ["Platform", "Kind", "Content"]
    if with_creator:
        headers.append("Creator")
    headers += ["Views", "Engagement", "ER", "CTR", "RPM", "EMV"]
    first_number = len(headers) - 6
    body = []
    for r in sorted(rows, key=lambda r: (-int(r["views"]), r["platform"], r["content_id"])):
        currency = str(r["currency"])
        held = " (held for review)" if r["held_for_review"] else ""
        if r.get("awaiting_release"):  # the brand's page lists creators, a creator's not
            whose = "your" if with_creator else "the brand's"
            held = f" (published by the creator: awaiting {whose} release)"
        cells = [h.esc(r["platform"]), h.esc(r["kind"]), h.esc(f"{r['content_id']}{held}")]
        if with_creator:
            cells.append(h.esc(r["affiliate_id"]))
        cells += [
            h.esc(f"{r['views']:,}"),
            h.esc(f"{r['engagement']:,}"),
            percent(r["engagement_rate"]),
            percent(r["ctr"]),
            money_or_none(r["rpm_minor"], currency),
            money_or_none(r["emv_minor"], currency),
        ]
        body.append(cells)
    return h.table(
        headers,
        body,
        numeric=frozenset(range(first_number, len(headers))),
        cls="contents",
    )


def section(row: Mapping[str, Any], contents: Sequence[Mapping[str, Any]], *, brand: bool) -> str:
    """The content part of a KPI page: reach, attribution and the per-content table."""
    return (
        "<h2>Content</h2>"
        + f'<p class="note" id="content-kpi-definitions">{h.esc(CONTENT_KPI_DEFINITIONS)}</p>'
        + reach_table(row)
        + attribution_line(row)
        + contents_table(contents, with_creator=brand)
    )
