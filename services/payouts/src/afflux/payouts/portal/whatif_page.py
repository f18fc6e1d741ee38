"""A brand's what-if page, ``/portal/campaigns/{id}/whatif``: a form holding draft terms
(YAML, prefilled with the current ones) and a range; posting it replays the recorded
events under the draft and shows the diff (afflux.payouts.whatif; docs/campaigns.md,
"What-if"). Server-rendered, no inline script: the portal's CSP holds. The draft is
read by ``afflux.shared.io.untrusted_yaml`` (no anchors or aliases, bounded nesting), at
most ``MAX_DRAFT_CHARS``, in a thread of its own."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import yaml
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from afflux.payouts.deps import DirectoryDep
from afflux.payouts.portal import html as h
from afflux.payouts.portal.guard import campaign_viewer
from afflux.payouts.whatif import check_draft, replay_draft, whose
from afflux.shared.core.terms import CampaignTerms
from afflux.shared.core.whatif.diff import MAX_CREATORS, MAX_ORDER_IDS, WhatIfDiff
from afflux.shared.core.whatif.log import RangeProblem, day_range
from afflux.shared.io import untrusted_yaml
from afflux.shared.io.http.principals import CsrfDep, form_fields
from afflux.shared.io.http.problems import Problem

router = APIRouter(prefix="/portal", include_in_schema=False)
SHOWN_CHANGES = 100
MAX_DRAFT_CHARS = 256 * 1024  # a campaign's terms are a few kilobytes


def _form(action: str, csrf: str, draft: str, first: str, last: str) -> str:
    return (
        f'<form method="post" action="{h.esc(action)}" id="whatif-form">'
        f'<input type="hidden" name="csrf_token" value="{h.esc(csrf)}">'
        '<p><label for="terms">Draft terms (YAML, as under <code>terms:</code> in a campaigns '
        "file)</label></p>"
        f'<p><textarea id="terms" name="terms" rows="24" cols="90">{h.esc(draft)}</textarea></p>'
        f'<p><label>From <input type="date" name="from" value="{h.esc(first)}"></label> '
        f'<label>To <input type="date" name="to" value="{h.esc(last)}"></label> '
        '<button type="submit">Compare with the current terms</button></p>'
        '<p class="note">Nothing is published or written: the recorded clicks, orders and '
        "refunds are replayed under the draft and under the current terms.</p></form>"
    )


def _respond(campaign_id: str, body: str, csrf: str, status: int = 200) -> HTMLResponse:
    nav = (
        '<a href="/portal">Campaigns</a> '
        f'<a href="/portal/campaigns/{h.esc(campaign_id)}">Campaign {h.esc(campaign_id)}</a>'
    )
    return HTMLResponse(
        h.page(f"What-if {campaign_id}", body, nav=nav, csrf=csrf),
        status_code=status,
        headers=h.HEADERS,
    )


def current_yaml(terms: CampaignTerms) -> str:
    dumped: Any = terms.model_dump(mode="json", exclude_defaults=True)
    return str(yaml.safe_dump(dumped, sort_keys=False, allow_unicode=True))


def _ids(orders: tuple[str, ...]) -> str:
    """The first order ids, bounded as in the JSON answer, and how many more."""
    shown = ", ".join(orders[:MAX_ORDER_IDS]) or "-"
    more = len(orders) - MAX_ORDER_IDS
    return f"{shown} and {more} more" if more > 0 else shown


def diff_html(diff: WhatIfDiff) -> str:
    c = diff.currency
    body = (
        f'<p id="whatif-totals">{h.esc(diff.orders)} orders replayed: '
        f"{h.amount(diff.current_total_minor, c)} with the current terms, "
        f"{h.amount(diff.draft_total_minor, c)} with the draft.</p>"
    )
    if diff.empty:
        return body + (
            '<p id="whatif-empty">No difference: the draft pays every creator what the '
            "current terms do.</p>"
        )
    body += "<h2>Per creator</h2>" + h.table(
        ("Creator", "Current", "Draft", "Change", "Conversions", "Gained", "Lost"),
        [
            [
                h.esc(r.affiliate_id),
                h.amount(r.current_minor, c),
                h.amount(r.draft_minor, c),
                h.amount(r.delta_minor, c),
                h.esc(f"{r.current_conversions} → {r.draft_conversions}"),
                h.esc(_ids(r.gained)),
                h.esc(_ids(r.lost)),
            ]
            for r in diff.creators[:MAX_CREATORS]
        ],
        numeric=frozenset({1, 2, 3, 4}),
        cls="whatif-creators",
    )
    if len(diff.creators) > MAX_CREATORS:
        body += f"<p>{h.esc(len(diff.creators) - MAX_CREATORS)} more creators change less.</p>"
    body += f"<h2>Lines that change ({h.esc(diff.changes_total)}, the largest first)</h2>"
    body += h.table(
        ("Creator", "Current", "Draft", "Why"),
        [
            [
                h.esc(x.affiliate_id),
                h.amount(x.current_minor, c),
                h.amount(x.draft_minor, c),
                h.esc(x.reason),
            ]
            for x in diff.changes[:SHOWN_CHANGES]
        ],
        numeric=frozenset({1, 2}),
        cls="whatif-lines",
    )
    return body


@router.get("/campaigns/{campaign_id}/whatif", response_class=HTMLResponse)
async def whatif_form(request: Request, directory: DirectoryDep, campaign_id: str) -> Response:
    _, csrf = await campaign_viewer(request, directory, campaign_id)
    draft = current_yaml(directory.latest(campaign_id).terms)
    return _respond(campaign_id, _form(request.url.path, csrf, draft, "", ""), csrf)


@router.post("/campaigns/{campaign_id}/whatif", response_class=HTMLResponse)
async def whatif_result(
    request: Request, _: CsrfDep, directory: DirectoryDep, campaign_id: str
) -> Response:
    principal, csrf = await campaign_viewer(request, directory, campaign_id)
    fields = await form_fields(request)
    text, first, last = fields.get("terms", ""), fields.get("from", ""), fields.get("to", "")
    form = _form(request.url.path, csrf, text, first, last)
    try:
        # In a thread: a large draft takes the pure-Python parser a while, and the
        # service's other requests must not wait for it.
        draft = await asyncio.to_thread(_draft, text)
        versions = directory.versions(campaign_id)
        if draft.campaign_id != campaign_id:
            raise Problem(422, "terms.campaign_id", f"the draft must be for {campaign_id!r}")
        check_draft(draft, versions, "terms")
        window = day_range(_day(first, "from"), _day(last, "to"))
        state = request.app.state
        diff = await replay_draft(
            state.settings, state.metrics, versions, draft, window, whose(principal)
        )
    except RangeProblem as exc:
        return _refused(campaign_id, form, csrf, exc.field, exc.reason, 422)
    except Problem as problem:
        return _refused(
            campaign_id, form, csrf, problem.field or "request", problem.reason, problem.status
        )
    return _respond(campaign_id, diff_html(diff) + "<h2>Draft</h2>" + form, csrf)


def _refused(
    campaign_id: str, form: str, csrf: str, field: str, reason: str, status: int
) -> HTMLResponse:
    message = f'<p class="error" id="whatif-refused">{h.esc(field)}: {h.esc(reason)}</p>'
    return _respond(campaign_id, message + form, csrf, status)


def _draft(text: str) -> CampaignTerms:
    if len(text) > MAX_DRAFT_CHARS:
        raise Problem(422, "terms", f"longer than {MAX_DRAFT_CHARS} characters")
    try:
        raw = untrusted_yaml.load(text)
    except yaml.YAMLError as exc:
        raise Problem(422, "terms", f"not YAML: {exc}") from None
    try:
        return CampaignTerms.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise Problem(422, f"terms.{where}" if where else "terms", first["msg"]) from None


def _day(text: str, field: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise RangeProblem(field, f"not a date (YYYY-MM-DD): {text!r}") from None
