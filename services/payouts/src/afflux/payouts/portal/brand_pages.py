"""A brand's pages: ``/portal`` (where each role starts) and ``/portal/campaigns/{id}``:
a campaign's KPIs for a chosen period, charted per day, its top creators and the
payouts made (docs/portal.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from afflux.payouts import params, payout_records, reads, views
from afflux.payouts.deps import ClockDep, DirectoryDep, StoreDep
from afflux.payouts.portal import html as h
from afflux.payouts.portal.creator_pages import kpi_table
from afflux.payouts.portal.guard import campaign_viewer, viewer
from afflux.payouts.portal.timeline import daily
from afflux.payouts.queries import counts_for, current_period
from afflux.shared.core.periods import period_bounds

router = APIRouter(prefix="/portal", include_in_schema=False)
TOP_CREATORS = 10


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
    body += "<h2>KPIs</h2>" + kpi_table(row)
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
