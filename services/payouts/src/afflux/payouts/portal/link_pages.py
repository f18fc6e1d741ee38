"""A creator's tracking links: ``GET /portal/creators/{id}/links`` lists them and offers a
form; ``POST`` to the same path creates one.

The links live in the clicks service; the portal asks its links API server-to-server
(``AFFLUX_CLICKS_URL``, with the admin token), so a link made here meets exactly the
destination rules of ``POST /v1/links`` (the campaign's allowed domains), and its
refusal reason is shown as the API words it. The form is a session's: same origin
and the session's CSRF token (``CsrfDep``). A creator may make a link only for a
campaign it belongs to (``afflux.payouts.belonging``).
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from afflux.payouts.belonging import (
    LinksUnavailable,
    clicks_client,
    creator_campaigns,
    creator_links,
    links_api,
)
from afflux.payouts.deps import DirectoryDep
from afflux.payouts.portal import html as h
from afflux.payouts.portal.creator_pages import respond
from afflux.payouts.portal.guard import creator_viewer, not_found
from afflux.payouts.settings import PayoutsSettings
from afflux.shared.core.access import may_read_creator
from afflux.shared.io.http.principals import CsrfDep, csrf_token, form_fields

router = APIRouter(prefix="/portal/creators/{affiliate_id}/links", include_in_schema=False)


def _settings(request: Request) -> PayoutsSettings:
    settings: PayoutsSettings = request.app.state.settings
    return settings


def _page(
    affiliate_id: str,
    csrf: str,
    links: list[dict[str, Any]],
    campaigns: list[str],
    message: str = "",
    destination: str = "",
) -> str:
    body = message
    body += (
        h.table(
            ("Campaign", "Tracking link", "Goes to", "Active"),
            [
                [
                    h.esc(link["campaign_id"]),
                    f'<a href="{h.esc(link["url"])}">{h.esc(link["url"])}</a>',
                    h.esc(link["destination_url"]),
                    "yes" if link["active"] else "no",
                ]
                for link in links
            ],
            cls="links",
        )
        if links
        else '<p id="no-links">No links yet.</p>'
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
    return respond(
        f"Links of {affiliate_id}", _page(affiliate_id, csrf, links, campaigns), affiliate_id, csrf
    )


@router.post("", response_class=HTMLResponse)
async def create_link(
    request: Request,
    principal: CsrfDep,
    directory: DirectoryDep,
    affiliate_id: str,
) -> Response:
    csrf = csrf_token(request)
    if not may_read_creator(principal, affiliate_id):
        return not_found(f"creator {affiliate_id}", csrf)
    fields = await form_fields(request)
    campaign, destination = fields.get("campaign_id", ""), fields.get("destination_url", "")
    try:
        settings = _settings(request)
        links = await creator_links(settings, affiliate_id)
        campaigns = creator_campaigns(directory, affiliate_id, links)
        if campaign not in campaigns or campaign not in directory:
            problem = f"campaign_id: you do not belong to campaign {campaign!r}"
        else:
            url, headers = links_api(settings)
            body = {
                "affiliate_id": affiliate_id,
                "campaign_id": campaign,
                "destination_url": destination,
            }
            async with clicks_client() as http:
                answer = await http.post(url, json=body, headers=headers)
            if answer.status_code == 201:
                return RedirectResponse(request.url.path, status_code=303)
            problem = (
                "; ".join(
                    f"{d.get('field') or 'request'}: {d.get('reason')}"
                    for d in answer.json().get("detail", [])
                )
                or f"the clicks service answered {answer.status_code}"
            )
    except (LinksUnavailable, httpx.HTTPError) as exc:
        links, campaigns, problem = [], [], f"links cannot be made now: {exc}"
    message = f'<p class="error" id="link-refused">Not created: {h.esc(problem)}</p>'
    page = _page(affiliate_id, csrf, links, campaigns, message, destination)
    response = respond(f"Links of {affiliate_id}", page, affiliate_id, csrf)
    response.status_code = 422
    return response
