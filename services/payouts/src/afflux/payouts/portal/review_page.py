"""A brand's review queue, ``/portal/campaigns/{id}/reviews``: the campaign's conversions
held for review, each with its signals and an approve and a decline form (a reason for
the decline), and the decided ones below. Posting a form sends the same
``ConversionReviewed`` as ``POST /v1/reviews/{id}/approve|decline`` (routes.reviews) and
comes back to the page. Server-rendered, CSRF-checked forms, no inline script."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from afflux.payouts import reviews
from afflux.payouts.deps import ClockDep, DirectoryDep, StoreDep
from afflux.payouts.portal import html as h
from afflux.payouts.portal.guard import campaign_viewer
from afflux.payouts.reviews import Entry
from afflux.payouts.routes.reviews import decide
from afflux.shared.core.journal.review_queue import DECIDED_STATUSES, HELD
from afflux.shared.io.http.principals import CsrfDep, form_fields
from afflux.shared.io.http.problems import Problem

router = APIRouter(prefix="/portal", include_in_schema=False)
DECISIONS = ("approve", "decline")


def _forms(base: str, csrf: str, e: Entry) -> str:
    conversion = h.esc(e.conversion_id)
    token = f'<input type="hidden" name="csrf_token" value="{h.esc(csrf)}">'
    return (
        f'<form method="post" action="{h.esc(base)}/{conversion}/approve" class="inline">'
        f'{token}<button type="submit" class="approve">Approve</button></form> '
        f'<form method="post" action="{h.esc(base)}/{conversion}/decline" class="inline">'
        f'{token}<input type="text" name="reason" maxlength="500" placeholder="reason" '
        'aria-label="reason">'
        '<button type="submit" class="decline">Decline</button></form>'
    )


def _row(e: Entry, currency: str, actions: str) -> list[str]:
    v = e.view()
    return [
        h.esc(e.affiliate_id),
        h.esc(e.order_id),
        h.day(e.occurred_at),
        h.esc(", ".join(v["signals"]) or "-"),
        h.amount(v["amount_minor"], currency),
        h.amount(v["commission_minor"], currency),
        actions
        or h.esc(f"{e.status} by {v['decided_by']}" + (f": {v['reason']}" if v["reason"] else "")),
    ]


@router.get("/campaigns/{campaign_id}/reviews", response_class=HTMLResponse)
async def review_queue_page(
    request: Request, store: StoreDep, directory: DirectoryDep, campaign_id: str
) -> Response:
    _, csrf = await campaign_viewer(request, directory, campaign_id)
    notice = await _decided_notice(request, store, campaign_id)
    return await _page(request, store, directory, campaign_id, csrf, notice=notice)


async def _decided_notice(request: Request, store: StoreDep, campaign_id: str) -> str:
    """The notice of a decision just sent, built from the decision and the conversion it
    names, never from text in the URL: a link carrying any sentence would otherwise show
    it as the page's own word. Nothing when they name no conversion of this campaign."""
    decision = request.query_params.get("decided", "")
    conversion_id = request.query_params.get("conversion", "")
    if decision not in DECISIONS or not conversion_id or len(conversion_id) > 200:
        return ""
    found = await reviews.entry(store, conversion_id)
    if found is None or found.campaign_id != campaign_id:
        return ""
    return f"{decision}d {conversion_id}: the ledger applies it in a moment"


def _more(found: int, what: str) -> str:
    """How many of a table's conversions are left out (the oldest are listed)."""
    more = found - reviews.MAX_LISTED
    return f'<p class="note">{more} more {what} conversions not listed.</p>' if more > 0 else ""


async def _page(
    request: Request,
    store: StoreDep,
    directory: DirectoryDep,
    campaign_id: str,
    csrf: str,
    *,
    notice: str = "",
    error: str = "",
    status: int = 200,
) -> HTMLResponse:
    base = f"/portal/campaigns/{campaign_id}/reviews"
    currency = directory.latest(campaign_id).terms.currency
    versions = directory.versions
    held = await reviews.queue(store, [campaign_id], (HELD,), reviews.MAX_LISTED, versions)
    decided = await reviews.queue(
        store, [campaign_id], DECIDED_STATUSES, reviews.MAX_LISTED, versions
    )
    counts = held.counts
    body = (
        f'<p id="review-counts">{counts["held"]} held, {counts["approved"]} approved, '
        f"{counts['declined']} declined.</p>"
    )
    if notice:
        body += f'<p class="note" id="review-done">{h.esc(notice)}</p>'
    if error:
        body += f'<p class="error" id="review-refused">{h.esc(error)}</p>'
    headers = ("Creator", "Order", "Date", "Signals", "Amount", "Commission", "")
    body += "<h2>Held for review</h2>"
    if held.rows:
        rows = [_row(e, currency, _forms(base, csrf, e)) for e in held.rows]
        body += h.table(headers, rows, numeric=frozenset({4, 5}), cls="review-held")
        body += _more(held.total, "held")
    else:
        body += '<p id="review-empty">Nothing is waiting for a decision.</p>'
    if decided.rows:
        body += "<h2>Decided</h2>" + h.table(
            headers,
            [_row(e, currency, "") for e in decided.rows],
            numeric=frozenset({4, 5}),
            cls="review-decided",
        )
        body += _more(decided.total, "decided")
    nav = (
        '<a href="/portal">Campaigns</a> '
        f'<a href="/portal/campaigns/{h.esc(campaign_id)}">Campaign {h.esc(campaign_id)}</a>'
    )
    return HTMLResponse(
        h.page(f"Review queue {campaign_id}", body, nav=nav, csrf=csrf),
        status_code=status,
        headers=h.HEADERS,
    )


@router.post("/campaigns/{campaign_id}/reviews/{conversion_id}/{decision}")
async def review_decision(
    request: Request,
    _: CsrfDep,
    store: StoreDep,
    directory: DirectoryDep,
    clock: ClockDep,
    campaign_id: str,
    conversion_id: str,
    decision: str,
) -> Response:
    principal, csrf = await campaign_viewer(request, directory, campaign_id)
    if decision not in DECISIONS:
        return await _page(
            request, store, directory, campaign_id, csrf, error="unknown decision", status=422
        )
    reason = (await form_fields(request)).get("reason", "")[:500]
    found = await reviews.entry(store, conversion_id)
    try:
        if found is None or found.campaign_id != campaign_id:
            raise Problem(404, "conversion_id", f"unknown_conversion: {conversion_id}")
        await decide(
            principal,
            store,
            directory,
            request.app.state,
            clock(),
            conversion_id,
            "approve" if decision == "approve" else "decline",
            reason,
        )
    except Problem as problem:
        error = f"{problem.field or 'request'}: {problem.reason}"
        # Past the campaign's access check a 404 would read as "not your campaign": a
        # conversion that is not this campaign's is a bad form (422) on its page.
        status = 422 if problem.status == 404 else problem.status
        return await _page(request, store, directory, campaign_id, csrf, error=error, status=status)
    target = h.url(
        f"/portal/campaigns/{campaign_id}/reviews", decided=decision, conversion=conversion_id
    )
    return RedirectResponse(target, status_code=303)
