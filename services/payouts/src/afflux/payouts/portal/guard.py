"""Who is looking at a portal page, and what a page answers when they may not.

A browser without a session is sent to ``/login`` (and back to the page after it); a
principal who may not see a creator or a campaign gets the same 404 page as for one
that does not exist, so ids cannot be probed. The rules are afflux.shared.core.access.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from afflux.payouts.portal.html import HEADERS, esc, page, url
from afflux.shared.core.access import Principal, may_read_campaign, may_read_creator
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.http.principals import csrf_token, current_principal
from afflux.shared.io.http.problems import Problem


class Refused(Exception):
    """Raised inside a page: the response to send instead (login or not found)."""

    def __init__(self, response: Response) -> None:
        super().__init__("refused")
        self.response = response


def not_found(what: str, csrf: str = "") -> HTMLResponse:
    body = f'<p class="error" id="not-found">Not found: {esc(what)}.</p>'
    return HTMLResponse(page("Not found", body, csrf=csrf), status_code=404, headers=HEADERS)


async def viewer(request: Request) -> tuple[Principal, str]:
    """The principal and the CSRF token for the page's forms; ``Refused`` (a redirect
    to the login form) without a session."""
    try:
        principal = await current_principal(request)
    except Problem as problem:
        if problem.status != 401:
            raise
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise Refused(RedirectResponse(url("/login", next=target), status_code=303)) from None
    return principal, csrf_token(request)


async def creator_viewer(request: Request, affiliate_id: str) -> tuple[Principal, str]:
    principal, csrf = await viewer(request)
    if not may_read_creator(principal, affiliate_id):
        raise Refused(not_found(f"creator {affiliate_id}", csrf))
    return principal, csrf


async def campaign_viewer(
    request: Request, directory: CampaignDirectory, campaign_id: str
) -> tuple[Principal, str]:
    principal, csrf = await viewer(request)
    merchant = directory.latest(campaign_id).terms.merchant_id if campaign_id in directory else None
    if not may_read_campaign(principal, merchant) or merchant is None:
        raise Refused(not_found(f"campaign {campaign_id}", csrf))
    return principal, csrf
