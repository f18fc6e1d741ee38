"""A creator's pages: ``/portal/creators/{id}`` (balance), ``/ledger`` (postings,
explained), ``/statement`` (printable) and ``/statement.csv``, ``/kpis`` (per campaign,
charted) and ``/links`` (docs/portal.md).

Each reads what the JSON API of the same name reads, through the same functions, so
a page and its API always agree.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from afflux.payouts import params, payout_records, reads, views
from afflux.payouts.deps import ClockDep, DirectoryDep, StoreDep
from afflux.payouts.portal import content_tables
from afflux.payouts.portal import html as h
from afflux.payouts.portal.guard import creator_viewer
from afflux.payouts.portal.timeline import daily
from afflux.payouts.queries import (
    contents_for,
    counts_for,
    creators_campaign,
    creators_current_period,
    current_period,
    cursor_within,
    decode_cursor,
    encode_cursor,
    period_of_any,
    period_of_campaign,
)
from afflux.payouts.routes import creators
from afflux.payouts.statement_csv import csv_filename, statement_csv
from afflux.payouts.store import LedgerStore
from afflux.shared.core.access import Principal
from afflux.shared.core.journal.explain import explain_posting
from afflux.shared.core.journal.records import Posting
from afflux.shared.core.periods import period_bounds
from afflux.shared.io.campaign_view import CampaignDirectory

router = APIRouter(prefix="/portal/creators/{affiliate_id}", include_in_schema=False)
PAGE_SIZE = 25
Text = Annotated[str | None, Query(max_length=200)]


def nav(affiliate_id: str) -> str:
    base = f"/portal/creators/{affiliate_id}"
    return "".join(
        f'<a href="{h.esc(base + path)}">{label}</a>'
        for path, label in (
            ("", "Balance"),
            ("/ledger", "Postings"),
            ("/statement", "Statement"),
            ("/kpis", "KPIs"),
            ("/links", "Links"),
        )
    )


def respond(title: str, body: str, affiliate_id: str, csrf: str) -> HTMLResponse:
    return HTMLResponse(h.page(title, body, nav=nav(affiliate_id), csrf=csrf), headers=h.HEADERS)


async def _periods(store: LedgerStore, affiliate_id: str) -> list[tuple[str, str]]:
    return await reads.creator_periods(store, affiliate_id)


async def pending_schedule(
    store: LedgerStore, affiliate_id: str, cps: list[tuple[str, str]], as_of: int
) -> dict[tuple[str, str], int]:
    """(approval day, currency) -> what becomes approved that day (UTC), from the
    creator's approval schedule (what the balance's pending part is made of), so a line
    pending past its period's lock (held for a review decision, locked from a late
    receipt) is there too. A ledger written before the creator's running sums: from the
    postings of every campaign-period."""
    out: dict[tuple[str, str], int] = defaultdict(int)
    if await store.creator_sums.known(affiliate_id):
        balance = await store.creator_sums.balance(affiliate_id, as_of)
        for (currency, at), amount in balance.schedule.items():
            out[(h.day(at), currency)] += amount
    else:
        for p in await reads.period_postings(store, affiliate_id, cps):
            if p.approve_at > as_of and p.amount_minor:
                out[(h.day(p.approve_at), p.currency)] += p.amount_minor
    return {k: v for k, v in out.items() if v}


def next_payouts(
    directory: CampaignDirectory, campaigns: list[str], now: int
) -> list[tuple[int, str, str]]:
    """Per campaign of ``campaigns``: the first day after its current period ends (a
    payout run pays a period once it is over), that period and the campaign, soonest
    first. One date for all read as if a monthly campaign paid at a weekly one's."""
    ends = []
    for cid in campaigns:
        if cid in directory:
            period = current_period(directory, cid, now)
            ends.append((period_bounds(period)[1], period, cid))
    return sorted(ends)


@router.get("", response_class=HTMLResponse)
async def balance_page(
    request: Request, store: StoreDep, directory: DirectoryDep, clock: ClockDep, affiliate_id: str
) -> Response:
    principal, csrf = await creator_viewer(request, affiliate_id)
    now = clock()
    cps = await _periods(store, affiliate_id)
    rows: list[dict[str, Any]] = []
    if cps:  # the balance API's answer, as the API computes it
        answer = await creators.balance(principal, store, clock, affiliate_id, str(now))
        rows = answer["balances"]
    body = f'<p class="note">As of {h.esc(h.day(now))} (UTC).</p>'
    if not rows:
        body += '<p id="no-balance">No postings yet.</p>'
    else:
        body += h.table(
            ("Currency", "Pending", "Approved, not yet paid", "Paid", "Reversed"),
            [
                [
                    h.esc(r["currency"]),
                    h.amount(r["pending_minor"], r["currency"]),
                    h.amount(r["approved_minor"], r["currency"]),
                    h.amount(r["paid_minor"], r["currency"]),
                    h.amount(r["reversed_minor"], r["currency"]),
                ]
                for r in rows
            ],
            numeric=frozenset({1, 2, 3, 4}),
            cls="balance",
        )
    schedule = await pending_schedule(store, affiliate_id, cps, now)
    body += "<h2>When pending amounts are approved</h2>"
    if schedule:
        body += h.table(
            ("Approved on", "Amount"),
            [
                [h.esc(day), h.amount(amount, currency)]
                for (day, currency), amount in sorted(schedule.items())
            ],
            numeric=frozenset({1}),
            cls="schedule",
        )
    else:
        body += "<p>Nothing is pending.</p>"
    upcoming = next_payouts(directory, sorted({cid for cid, _ in cps}), now)
    body += "<h2>Next payout</h2>"
    if upcoming:
        body += (
            '<p id="next-payout">A payout run pays a period once it is over, what is '
            "approved by then.</p>"
        ) + h.table(
            ("Campaign", "Current period", "Paid on or after"),
            [[h.esc(cid), h.esc(period), h.esc(h.day(end))] for end, period, cid in upcoming],
            cls="next-payouts",
        )
    else:
        body += '<p id="next-payout">No campaign yet.</p>'
    return respond(f"Balance of {affiliate_id}", body, affiliate_id, csrf)


def _filters(
    action: str,
    cps: list[tuple[str, str]],
    period: str | None,
    campaign: str | None,
    no_period: str = "every period",
) -> str:
    """The period and campaign pickers; ``no_period``: what the empty period means. With
    a campaign chosen, only its periods (a weekly campaign's weeks beside a monthly one's
    months offered periods the chosen campaign was never paid by: a 422 page)."""
    periods = sorted(
        {p for c, p in cps if campaign is None or c == campaign} | ({period} if period else set()),
        reverse=True,
    )
    campaigns = sorted({c for c, _ in cps})

    def options(values: list[str], chosen: str | None, every: str) -> str:
        first = f'<option value="">{h.esc(every)}</option>'
        return first + "".join(
            f'<option value="{h.esc(v)}"{" selected" if v == chosen else ""}>{h.esc(v)}</option>'
            for v in values
        )

    return (
        f'<form method="get" action="{h.esc(action)}" id="filters">'
        '<label>Period <select name="period" id="period">'
        f"{options(periods, period, no_period)}"
        "</select></label> "
        f'<label>Campaign <select name="campaign_id" id="campaign">'
        f"{options(campaigns, campaign, 'every campaign')}</select></label> "
        '<button type="submit">Show</button></form>'
    )


@router.get("/ledger", response_class=HTMLResponse)
async def ledger_page(
    request: Request,
    store: StoreDep,
    directory: DirectoryDep,
    clock: ClockDep,
    affiliate_id: str,
    period: Text = None,
    campaign_id: Text = None,
    cursor: Text = None,
) -> Response:
    reader, csrf = await creator_viewer(request, affiliate_id)
    now = clock()
    wanted = params.period(period)
    campaign = campaign_id or None
    await creators_campaign(store, directory, reader, affiliate_id, campaign)
    period_of_campaign(directory, campaign, wanted, now)
    after = decode_cursor(cursor, directory, campaign, wanted)
    every = await _periods(store, affiliate_id)
    if campaign is None:
        period_of_any(directory, (c for c, _ in every), wanted)
    cps = [
        (c, p)
        for c, p in every
        if (campaign is None or c == campaign) and (wanted is None or p == wanted)
    ]
    cursor_within(after, cps)
    postings, following = await reads.postings_page(store, affiliate_id, cps, after, PAGE_SIZE)
    lines = {line["line_id"]: line for line in views.line_views(postings, now)}
    base = f"/portal/creators/{affiliate_id}/ledger"
    body = _filters(base, every, wanted, campaign)
    if not postings:
        body += '<p id="no-postings">No postings match.</p>'
    rows = []
    for p in postings:
        line = lines[p.line_id]
        explanation = (
            f'<details class="explain" data-posting="{h.esc(p.posting_id)}">'
            f'<summary>Why?</summary><p class="posting-why">{h.esc(explain_posting(p))}</p>'
            f'<p class="line-why">Line: {h.esc(line["explanation"])}</p></details>'
        )
        rows.append(
            [
                h.esc(h.day(p.occurred_at)),
                h.esc(p.campaign_id),
                h.esc(p.order_id or ""),
                h.esc(p.kind.replace("_", " ")),
                h.amount(p.amount_minor, p.currency),
                h.esc(views.status(p.approve_at, now)),
                h.esc(h.day(p.approve_at)),
                explanation,
            ]
        )
    if rows:
        body += h.table(
            ("Date", "Campaign", "Order", "Kind", "Amount", "Status", "Approved on", "Explanation"),
            rows,
            numeric=frozenset({4}),
            cls="postings",
        )
    pager = []
    if after is not None:
        pager.append(
            f'<a href="{h.esc(h.url(base, period=wanted, campaign_id=campaign))}">First page</a>'
        )
    nxt = encode_cursor(following)
    if nxt:
        pager.append(
            '<a id="next-page" href="'
            f'{h.esc(h.url(base, period=wanted, campaign_id=campaign, cursor=nxt))}">'
            "Next page</a>"
        )
    body += f'<p class="pager">{"".join(pager)}</p>'
    return respond(f"Postings of {affiliate_id}", body, affiliate_id, csrf)


async def statement_postings(
    store: LedgerStore,
    directory: CampaignDirectory,
    reader: Principal,
    affiliate_id: str,
    campaign: str | None,
    period: str | None,
    now: int,
) -> tuple[str, list[str], list[Posting]]:
    """The statement's period, the creator's campaigns and the period's postings: what
    ``GET /v1/creators/{id}/statement`` reads (a campaign the creator has no part in is
    an unknown one)."""
    await creators_campaign(store, directory, reader, affiliate_id, campaign)
    period_of_campaign(directory, campaign, params.period(period), now)
    everywhere = await _periods(store, affiliate_id)
    if campaign is not None:
        everywhere = [(c, p) for c, p in everywhere if c == campaign]
    period_of_any(directory, (c for c, _ in everywhere), params.period(period))
    wanted = params.period(period) or creators_current_period(
        directory, campaign, (c for c, _ in everywhere), now
    )
    cps = [(c, p) for c, p in everywhere if p == wanted]
    postings = await reads.period_postings(store, affiliate_id, cps)
    return wanted, sorted({c for c, _ in everywhere}), postings


@router.get("/statement", response_class=HTMLResponse)
async def statement_page(
    request: Request,
    store: StoreDep,
    directory: DirectoryDep,
    clock: ClockDep,
    affiliate_id: str,
    period: Text = None,
    campaign_id: Text = None,
) -> Response:
    reader, csrf = await creator_viewer(request, affiliate_id)
    now = clock()
    campaign = campaign_id or None
    wanted, campaigns, postings = await statement_postings(
        store, directory, reader, affiliate_id, campaign, period, now
    )
    base = f"/portal/creators/{affiliate_id}/statement"
    every = await _periods(store, affiliate_id)
    # A statement is of one period: the empty choice is the current one, not every one.
    body = _filters(base, every, wanted, campaign, no_period="the current period")
    csv_url = h.url(f"{base}.csv", period=wanted, campaign_id=campaign)
    body += (
        f'<p class="no-print"><a id="download-csv" href="{h.esc(csv_url)}" download>'
        "Download CSV</a> · "
        '<button type="button" data-print>Print</button></p>'
        f'<p id="statement-for">Statement of {h.esc(affiliate_id)} for {h.esc(wanted)}'
        f"{' in campaign ' + h.esc(campaign) if campaign else ''}, as of {h.esc(h.day(now))}.</p>"
    )
    if not postings:
        # Two tables of headers alone read as a page that failed to load.
        body += '<p id="no-postings">No postings in this period.</p>'
    else:
        body += "<h2>Totals</h2>" + h.table(
            ("Currency", "Total", "Pending", "Approved"),
            [
                [
                    h.esc(t["currency"]),
                    h.amount(t["amount_minor"], t["currency"]),
                    h.amount(t["pending_minor"], t["currency"]),
                    h.amount(t["approved_minor"], t["currency"]),
                ]
                for t in views.totals(postings, now)
            ],
            numeric=frozenset({1, 2, 3}),
            cls="totals",
        )
        # By date, as a statement reads: the API's (campaign, seq) order put a campaign's
        # lines after another's whatever their dates, and a late line before older ones.
        lines = sorted(
            views.line_views(postings, now),
            key=lambda line: (line["occurred_at"], line["campaign_id"], line["line_id"]),
        )
        body += "<h2>Lines</h2>" + h.table(
            ("Date", "Campaign", "Amount", "Status", "What it is"),
            [
                [
                    h.esc(h.day(line["occurred_at"])),
                    h.esc(line["campaign_id"]),
                    h.amount(line["amount_minor"], line["currency"]),
                    h.esc(line["status"]),
                    h.esc(line["explanation"]),
                ]
                for line in lines
            ],
            numeric=frozenset({2}),
            cls="lines",
        )
    overrides = await reads.overrides_on(
        store,
        affiliate_id,
        [(c, wanted) for c in campaigns if not campaign or c == campaign],
        lambda c: directory.versions(c) if c in directory else (),
    )
    if overrides:  # the brand pays agencies on top: the lines above are not reduced
        body += "<h2>Agency overrides on this commission</h2>" + h.table(
            ("Campaign", "Agency", "Paid by the brand on top"),
            [
                [
                    h.esc(o["campaign_id"]),
                    h.esc(o["agency_id"]),
                    h.amount(o["amount_minor"], directory.latest(o["campaign_id"]).terms.currency),
                ]
                for o in overrides
            ],
            numeric=frozenset({2}),
            cls="overrides",
        )
    payouts = await payout_records.records_named(store, affiliate_id, campaigns, wanted)
    body += "<h2>Payouts</h2>"
    body += (
        h.table(
            ("Campaign", "Amount", "Payout id"),
            [
                [
                    h.esc(r.get("campaign_id", "")),
                    h.amount(int(r.get("amount_minor", 0)), str(r.get("currency", ""))),
                    h.esc(r.get("payout_id", "")),
                ]
                for r in payouts
            ],
            numeric=frozenset({1}),
        )
        if payouts
        else "<p>None for this period.</p>"
    )
    return respond(f"Statement {wanted}", body, affiliate_id, csrf)


@router.get("/statement.csv")
async def statement_download(
    request: Request,
    store: StoreDep,
    directory: DirectoryDep,
    clock: ClockDep,
    affiliate_id: str,
    period: Text = None,
    campaign_id: Text = None,
) -> Response:
    reader, _ = await creator_viewer(request, affiliate_id)
    now = clock()
    wanted, _, postings = await statement_postings(
        store, directory, reader, affiliate_id, campaign_id or None, period, now
    )
    return Response(
        statement_csv(postings, now),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{csv_filename(affiliate_id, wanted)}"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


@router.get("/kpis", response_class=HTMLResponse)
async def kpis_page(
    request: Request,
    store: StoreDep,
    directory: DirectoryDep,
    clock: ClockDep,
    affiliate_id: str,
    period: Text = None,
    campaign_id: Text = None,
) -> Response:
    reader, csrf = await creator_viewer(request, affiliate_id)
    now = clock()
    chosen = params.period(period)
    campaign = campaign_id or None
    # Narrowed as the statement and ledger pages are: one the creator has no part in is
    # an unknown campaign (the page listed every campaign whatever the filter said).
    await creators_campaign(store, directory, reader, affiliate_id, campaign)
    period_of_campaign(directory, campaign, chosen, now)
    every = await _periods(store, affiliate_id)
    if campaign is None:
        period_of_any(directory, (c for c, _ in every), chosen)
    held = set(every)
    base = f"/portal/creators/{affiliate_id}/kpis"
    options = '<option value="">each campaign\'s current period</option>' + "".join(
        f'<option value="{h.esc(p)}"{" selected" if p == chosen else ""}>{h.esc(p)}</option>'
        for p in sorted({p for _, p in every}, reverse=True)
    )
    campaigns = '<option value="">every campaign</option>' + "".join(
        f'<option value="{h.esc(c)}"{" selected" if c == campaign else ""}>{h.esc(c)}</option>'
        for c in sorted({c for c, _ in every})
    )
    body = (
        f'<form method="get" action="{h.esc(base)}" id="period-picker"><label>Period '
        f'<select name="period" id="period">{options}</select></label> '
        f'<label>Campaign <select name="campaign_id" id="campaign">{campaigns}</select></label> '
        '<button type="submit">Show</button></form>'
    )
    label = f"Showing {chosen}" if chosen else "Showing each campaign's current period"
    body += f'<p id="period-label">{h.esc(label)}</p>'
    body += f'<p class="note">{h.esc(h.CONVERSION_RATE_DEFINITION)}</p>'
    shown = 0
    for cid in sorted({cid for cid, _ in every}):
        if cid not in directory or campaign not in (None, cid):
            continue
        # A weekly campaign's period is a week, a monthly one's a month.
        wanted = chosen or current_period(directory, cid, now)
        if (cid, wanted) not in held:
            continue
        c = (await counts_for(store, directory, cid, wanted)).get((cid, affiliate_id))
        if c is None:
            continue
        shown += 1
        row = views.kpi_row(c)
        body += f"<h2>Campaign {h.esc(cid)}, {h.esc(wanted)}</h2>" + kpi_table(row)
        contents = await contents_for(store, [(cid, wanted)], directory, affiliate_id)
        body += content_tables.section(row, contents, brand=False)
        start, end = period_bounds(wanted)
        series = daily(views.series(c), start=start, end=end, until=now)
        body += h.chart(
            f"chart-{cid}-activity",
            "Clicks and conversions per day",
            series,
            (("clicks", "Clicks"), ("conversions", "Conversions")),
            span=(start, end),
        )
        body += h.chart(
            f"chart-{cid}-commission",
            "Commission per day",
            series,
            (("commission_minor", "Commission"),),
            str(row["currency"]),
            span=(start, end),
        )
    if not shown:
        body += '<p id="no-kpis">No activity in this period.</p>'
    return respond(f"KPIs of {affiliate_id}", body, affiliate_id, csrf)


def kpi_table(row: dict[str, object]) -> str:
    currency = str(row["currency"])

    def m(name: str) -> str:
        value = row[name]
        return h.amount(int(value), currency) if isinstance(value, int) else ""

    rate = float(row["conversion_rate"])  # type: ignore[arg-type]
    return h.table(
        (
            "Clicks",
            "Valid clicks",
            "Conversions",
            "Conversion rate",
            "Revenue",
            "Commission",
            "EPC",
        ),
        [
            [
                h.esc(f"{row['clicks']:,}"),
                h.esc(f"{row['valid_clicks']:,}"),
                h.esc(f"{row['conversions']:,}"),
                h.esc(f"{rate * 100:.2f} %"),
                m("revenue_minor"),
                m("commission_minor"),
                m("epc_minor"),
            ]
        ],
        numeric=frozenset(range(7)),
        cls="kpis",
    )
