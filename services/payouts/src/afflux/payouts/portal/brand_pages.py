"""A brand's pages: ``/portal`` (where each role starts) and ``/portal/campaigns/{id}``:
a campaign's KPIs for a chosen period, charted per day, its top creators, its
unattributed orders by reason, late clicks and assists (from the orders service,
server-to-server: ``AFFLUX_ORDERS_URL``) and the payouts made (docs/portal.md)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from afflux.payouts import params, payout_records, reads, views
from afflux.payouts.deps import ClockDep, DirectoryDep, StoreDep
from afflux.payouts.portal import content_tables
from afflux.payouts.portal import html as h
from afflux.payouts.portal.creator_pages import kpi_table
from afflux.payouts.portal.guard import campaign_viewer, viewer
from afflux.payouts.portal.timeline import daily
from afflux.payouts.queries import contents_for, counts_for, current_period, period_of_campaign
from afflux.payouts.settings import PayoutsSettings
from afflux.shared.core.periods import period_bounds
from afflux.shared.io.http.tls import tls_context

router = APIRouter(prefix="/portal", include_in_schema=False)
TOP_CREATORS = 10
TIMEOUT_S = 5.0
REASON_WORDS = {
    "no_click": "no click or coupon of a creator",
    "outside_window": "the click was older than the cookie window",
    "bot_only": "only bot clicks",
    "unknown_click": "an unknown click id",
    "other_campaign": "the click was for another campaign",
    "cookie_not_in_precedence": "clicks the campaign's rules do not count (no cookie rule)",
    "duplicate_order": "a duplicate of an order already decided",
    "first_order_unattributed": "a renewal whose first order no creator earned",
    "first_order_unknown": "a renewal whose first order is not known (yet)",
    "renewal_beyond_limit": "a renewal past the recurring limit",
    "no_recurring_terms": "a renewal under terms that pay no recurring rate",
    "renewal_before_first_order": "a renewal dated before its first order",
    "renewal_number_taken": "a renewal number another renewal order took",
    "first_order_is_renewal": "a renewal whose first order is itself a renewal",
}


async def _insights(request: Request, campaign_id: str, period: str) -> dict[str, Any]:
    """The orders service's ``GET /v1/campaigns/{id}/insights`` (server-to-server)."""
    settings: PayoutsSettings = request.app.state.settings
    base = settings.orders_url.rstrip("/")
    if not base:
        raise LookupError("AFFLUX_ORDERS_URL is not set")
    async with httpx.AsyncClient(verify=tls_context(), timeout=TIMEOUT_S) as http:
        answer = await http.get(
            f"{base}/v1/campaigns/{quote(campaign_id, safe='')}/insights",
            params={"period": period},
            headers={"Authorization": f"Bearer {settings.admin_token_value() or ''}"},
        )
    if answer.status_code != 200:
        raise LookupError(f"the orders service answered {answer.status_code}")
    found: dict[str, Any] = answer.json()
    return found


async def insights_section(request: Request, campaign_id: str, period: str) -> str:
    """Unattributed orders by reason, late clicks, assists (afflux.orders.insights)."""
    try:
        found = await _insights(request, campaign_id, period)
    except (LookupError, httpx.HTTPError) as exc:
        return f'<p class="error" id="insights-error">Not available now: {h.esc(exc)}.</p>'
    reasons = found["unattributed_by_reason"]
    body = "<h2>Unattributed orders</h2>"
    body += h.table(
        ("Why no creator earned it", "Orders"),
        [[h.esc(REASON_WORDS.get(r, r)), h.esc(n)] for r, n in reasons.items()]
        + [["<strong>all</strong>", f"<strong>{sum(reasons.values())}</strong>"]],
        numeric=frozenset({1}),
        cls="unattributed",
    )
    late = found["late_clicks"]
    body += "<h2>Late clicks</h2>"
    body += (
        f'<p id="late-clicks">Orders a click re-decided after it arrived late: '
        f"{h.esc(late.get('reattributed', 0))} taken from another creator, "
        f"{h.esc(late.get('attributed', 0))} attributed after being unattributed.</p>"
    )
    body += "<h2>Assists</h2>"
    body += (
        '<p class="note">An assist: another creator had an eligible click on an order that '
        "went to someone else. It would have won under first-click attribution when it "
        "was the order's first click.</p>"
    )
    body += (
        h.table(
            ("Creator", "Assisted orders", "Clicks that would have won"),
            [
                [h.esc(a["affiliate_id"]), h.esc(a["assists"]), h.esc(a["would_have_won"])]
                for a in found["assists"]
            ],
            numeric=frozenset({1, 2}),
            cls="assists",
        )
        if found["assists"]
        else '<p id="no-assists">No assists in this period.</p>'
    )
    return body


@router.get("", response_class=HTMLResponse)
async def start(request: Request, directory: DirectoryDep) -> Response:
    """A creator goes to its balance; a merchant and admin see the campaigns they may read."""
    principal, csrf = await viewer(request)
    if principal.role == "creator" and principal.subject:
        return RedirectResponse(f"/portal/creators/{principal.subject}", status_code=303)
    campaigns = [
        cid
        for cid in sorted(directory.campaign_ids())
        if principal.is_admin or directory.latest(cid).terms.merchant_id == principal.subject
    ]
    items = "".join(
        f'<li><a href="/portal/campaigns/{h.esc(c)}">{h.esc(c)}</a></li>' for c in campaigns
    )
    body = f'<ul id="campaigns">{items}</ul>' if items else "<p>No campaign.</p>"
    return HTMLResponse(h.page("Campaigns", body, csrf=csrf), headers=h.HEADERS)


@router.get("/campaigns/{campaign_id}", response_class=HTMLResponse)
async def campaign_page(
    request: Request,
    store: StoreDep,
    directory: DirectoryDep,
    clock: ClockDep,
    campaign_id: str,
    period: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    _, csrf = await campaign_viewer(request, directory, campaign_id)
    now = clock()
    current = current_period(directory, campaign_id, now)
    period_of_campaign(directory, campaign_id, params.period(period), now)
    wanted = params.period(period) or current
    counts = await counts_for(store, directory, campaign_id, wanted)
    total = views.combine(counts.values())
    currency = directory.latest(campaign_id).terms.currency
    total.currency = total.currency or currency
    row = views.kpi_row(total)
    base = f"/portal/campaigns/{campaign_id}"
    known = await reads.campaign_periods(store, campaign_id)
    body = h.period_picker(base, known, wanted, current)
    body += h.period_label(wanted, current)
    body += f'<p class="note" id="conversion-rate">{h.esc(h.CONVERSION_RATE_DEFINITION)}</p>'
    body += (
        f'<p id="whatif-link"><a href="{h.esc(base)}/whatif">What-if: try draft terms on the '
        "recorded events</a></p>"
        f'<p id="reviews-link"><a href="{h.esc(base)}/reviews">Review queue: conversions held'
        " for review</a></p>"
    )
    body += "<h2>KPIs</h2>" + kpi_table(row)
    contents = await contents_for(store, [(campaign_id, wanted)], directory)
    body += content_tables.section(row, contents, brand=True)
    start, end = period_bounds(wanted)
    series = daily(views.series(total), start=start, end=end, until=now)
    body += "<h2>Per day</h2>"
    body += h.chart(
        "chart-activity",
        "Clicks and conversions per day",
        series,
        (("clicks", "Clicks"), ("conversions", "Conversions")),
        span=(start, end),
    )
    body += h.chart(
        "chart-commission",
        "Commission per day",
        series,
        (("commission_minor", "Commission"),),
        currency,
        span=(start, end),
    )
    ranked = sorted(
        ((a, views.kpi_row(c)) for (_, a), c in counts.items()),
        key=lambda item: (-item[1]["commission_minor"], -item[1]["conversions"], item[0]),
    )[:TOP_CREATORS]
    body += "<h2>Top creators</h2>"
    body += (
        h.table(
            ("Creator", "Valid clicks", "Conversions", "Conversion rate", "Revenue", "Commission"),
            [
                [
                    h.esc(a),
                    h.esc(r["valid_clicks"]),
                    h.esc(r["conversions"]),
                    h.esc(f"{r['conversion_rate'] * 100:.2f} %"),
                    h.amount(r["revenue_minor"], currency),
                    h.amount(r["commission_minor"], currency),
                ]
                for a, r in ranked
            ],
            numeric=frozenset({1, 2, 3, 4, 5}),
            cls="top-creators",
        )
        if ranked
        else "<p>No creator activity in this period.</p>"
    )
    body += await insights_section(request, campaign_id, wanted)
    paid = []
    for affiliate in sorted({a for _, a in counts}):
        records = await payout_records.records_named(store, affiliate, [campaign_id], wanted)
        paid += [(affiliate, r) for r in records]
    body += "<h2>Payouts made</h2>"
    body += (
        h.table(
            ("Creator", "Amount", "Payout id"),
            [
                [
                    h.esc(a),
                    h.amount(int(r.get("amount_minor", 0)), str(r.get("currency", currency))),
                    h.esc(r.get("payout_id", "")),
                ]
                for a, r in paid
            ],
            numeric=frozenset({1}),
            cls="payouts",
        )
        if paid
        else "<p>No payout for this period yet.</p>"
    )
    return HTMLResponse(
        h.page(f"Campaign {campaign_id}", body, nav='<a href="/portal">Campaigns</a>', csrf=csrf),
        headers=h.HEADERS,
    )
