"""A creator's tracking links: ``GET /portal/creators/{id}/links`` lists them and offers a
form; ``POST`` to the same path creates one; ``POST …/links/{code}/deactivate``
deactivates one.

The links live in the clicks service; the portal asks its links API server-to-server
(``AFFLUX_CLICKS_URL``, with the admin token), so a link made here meets exactly the
destination rules of ``POST /v1/links`` (the campaign's allowed domains), and its
refusal reason is shown as the API words it. The forms are a session's: same origin
and the session's CSRF token (``CsrfDep``). A creator may make a link only for a
campaign it belongs to (``afflux.payouts.belonging``), at most
``AFFLUX_PORTAL_LINKS_PER_CAMPAIGN`` in each, and may deactivate its own links but the
last active one of a campaign it belongs to only through links
(``afflux.payouts.portal.link_room``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from afflux.payouts.belonging import (
    LinksUnavailable,
    clicks_client,
    creator_campaigns,
    creator_links,
    links_api,
    named_in,
)
from afflux.payouts.deps import DirectoryDep, StoreDep
from afflux.payouts.portal import html as h
from afflux.payouts.portal.creator_pages import respond
from afflux.payouts.portal.guard import creator_viewer, not_found
from afflux.payouts.portal.link_room import (
    claim,
    deactivation_refusal,
    made_in,
    room_refusal,
)
from afflux.payouts.settings import PayoutsSettings
from afflux.shared.core.access import may_read_creator
from afflux.shared.io.http.principals import CsrfDep, csrf_token, form_fields

router = APIRouter(prefix="/portal/creators/{affiliate_id}/links", include_in_schema=False)


def _settings(request: Request) -> PayoutsSettings:
    settings: PayoutsSettings = request.app.state.settings
    return settings


def _deactivate_form(affiliate_id: str, csrf: str, code: str) -> str:
    action = f"/portal/creators/{quote(affiliate_id, safe='')}/links/{quote(code, safe='')}"
    return (
        f'<form method="post" class="deactivate" action="{h.esc(action)}/deactivate">'
        f'<input type="hidden" name="csrf_token" value="{h.esc(csrf)}">'
        f'<button type="submit">Deactivate</button></form>'
    )


def _page(
    affiliate_id: str,
    csrf: str,
    links: list[dict[str, Any]],
    campaigns: list[str],
    most: int,
    message: str = "",
    destination: str = "",
) -> str:
    body = message
    body += (
        h.table(
            ("Campaign", "Tracking link", "Goes to", "Active", ""),
            [
                [
                    h.esc(link["campaign_id"]),
                    f'<a href="{h.esc(link["url"])}">{h.esc(link["url"])}</a>',
                    h.esc(link["destination_url"]),
                    "yes" if link["active"] else "no",
                    _deactivate_form(affiliate_id, csrf, str(link["code"]))
                    if link["active"]
                    else "",
                ]
                for link in links
            ],
            cls="links",
        )
        if links
        else '<p id="no-links">No links yet.</p>'
    )
    made = [(c, made_in(links, c)) for c in campaigns]
    if any(n for _, n in made):
        body += (
            '<p class="note" id="links-made">Links made: '
            + "; ".join(f"{h.esc(c)} {n:,} of {most:,}" for c, n in made if n)
            + " (deactivated links count too).</p>"
        )
    options = "".join(f'<option value="{h.esc(c)}">{h.esc(c)}</option>' for c in campaigns)
    body += "<h2>New link</h2>" + (
        f'<form method="post" id="new-link">'
        f'<input type="hidden" name="csrf_token" value="{h.esc(csrf)}">'
        f'<label>Campaign <select name="campaign_id">{options}</select></label> '
        f'<label>Destination <input name="destination_url" size="50" required '
        f'value="{h.esc(destination)}"></label> '
        '<button type="submit">Create link</button></form>'
        '<p class="note">The destination must be on one of the campaign\'s allowed '
        "domains (as for the links API).</p>"
        if campaigns
        else "<p>You do not belong to a campaign yet.</p>"
    )
    return body


@router.get("", response_class=HTMLResponse)
async def links_page(request: Request, directory: DirectoryDep, affiliate_id: str) -> Response:
    _, csrf = await creator_viewer(request, affiliate_id)
    try:
        links = await creator_links(_settings(request), affiliate_id)
    except LinksUnavailable as exc:
        body = f'<p class="error">Links cannot be shown now: {h.esc(exc)}.</p>'
        return respond(f"Links of {affiliate_id}", body, affiliate_id, csrf)
    campaigns = creator_campaigns(directory, affiliate_id, links)
    most = _settings(request).portal_links_per_campaign
    page = _page(affiliate_id, csrf, links, campaigns, most)
    return respond(f"Links of {affiliate_id}", page, affiliate_id, csrf)


@router.post("", response_class=HTMLResponse)
async def create_link(
    request: Request,
    principal: CsrfDep,
    directory: DirectoryDep,
    store: StoreDep,
    affiliate_id: str,
) -> Response:
    csrf = csrf_token(request)
    if not may_read_creator(principal, affiliate_id):
        return not_found(f"creator {affiliate_id}", csrf)
    fields = await form_fields(request)
    campaign, destination = fields.get("campaign_id", ""), fields.get("destination_url", "")
    settings = _settings(request)
    most = settings.portal_links_per_campaign
    try:
        async with claim(store.redis, store.keys, affiliate_id) as others_making:
            links = await creator_links(settings, affiliate_id)
            campaigns = creator_campaigns(directory, affiliate_id, links)
            if campaign not in campaigns or campaign not in directory:
                problem = f"campaign_id: you do not belong to campaign {campaign!r}"
            elif refusal := room_refusal(made_in(links, campaign), others_making, most):
                problem = f"campaign_id: {refusal}"
            else:
                answer = await _clicks("POST", settings, "", affiliate_id, campaign, destination)
                if answer.status_code == 201:
                    return RedirectResponse(request.url.path, status_code=303)
                problem = _refusal_of(answer)
        status = 422
    except (LinksUnavailable, httpx.HTTPError) as exc:
        links, campaigns, problem = [], [], f"links cannot be made now: {exc}"
        status = 503
    page = _page(
        affiliate_id, csrf, links, campaigns, most, _refused("created", problem), destination
    )
    return _with_status(respond(f"Links of {affiliate_id}", page, affiliate_id, csrf), status)


@router.post("/{code}/deactivate", response_class=HTMLResponse)
async def deactivate_link(
    request: Request,
    principal: CsrfDep,
    directory: DirectoryDep,
    affiliate_id: str,
    code: str,
) -> Response:
    csrf = csrf_token(request)
    if not may_read_creator(principal, affiliate_id):
        return not_found(f"creator {affiliate_id}", csrf)
    settings = _settings(request)
    links: list[dict[str, Any]] = []
    campaigns: list[str] = []
    status = 409
    try:
        links = await creator_links(settings, affiliate_id)
        campaigns = creator_campaigns(directory, affiliate_id, links)
        link = next((x for x in links if x["code"] == code), None)
        named = link is not None and link["campaign_id"] in named_in(directory, affiliate_id)
        if link is None:
            status = 404
        if refusal := deactivation_refusal(links, code, named):
            problem = refusal
        else:
            answer = await _clicks("DELETE", settings, code)
            if answer.status_code == 200:
                return RedirectResponse(
                    f"/portal/creators/{quote(affiliate_id, safe='')}/links", status_code=303
                )
            problem, status = _refusal_of(answer), 503
    except (LinksUnavailable, httpx.HTTPError) as exc:
        problem, status = f"links cannot be changed now: {exc}", 503
    most = settings.portal_links_per_campaign
    page = _page(affiliate_id, csrf, links, campaigns, most, _refused("deactivated", problem))
    return _with_status(respond(f"Links of {affiliate_id}", page, affiliate_id, csrf), status)


def _refused(what: str, problem: str) -> str:
    """The notice a refused form shows above the links (``Not created: ...``)."""
    return f'<p class="error" id="link-refused">Not {what}: {h.esc(problem)}</p>'


def _with_status(response: Response, status: int) -> Response:
    response.status_code = status
    return response


async def _clicks(
    method: str,
    settings: PayoutsSettings,
    code: str,
    affiliate_id: str = "",
    campaign_id: str = "",
    destination: str = "",
) -> httpx.Response:
    """A link made (POST) or deactivated (DELETE ``code``) through the clicks links API."""
    url, headers = links_api(settings)
    async with clicks_client() as http:
        if method == "POST":
            body = {
                "affiliate_id": affiliate_id,
                "campaign_id": campaign_id,
                "destination_url": destination,
            }
            return await http.post(url, json=body, headers=headers)
        return await http.delete(f"{url}/{quote(code, safe='')}", headers=headers)


def _refusal_of(answer: httpx.Response) -> str:
    try:
        details = answer.json().get("detail", [])
        reasons = "; ".join(f"{d.get('field') or 'request'}: {d.get('reason')}" for d in details)
    except (ValueError, AttributeError, TypeError):
        reasons = ""
    return reasons or f"the clicks service answered {answer.status_code}"
