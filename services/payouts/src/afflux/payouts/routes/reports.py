"""Report pages: ``GET /reports/campaigns/{id}`` and ``GET /reports/creators/{id}``.

Each page is static HTML with inline CSS and JavaScript (no CDN, nothing
fetched from elsewhere): the script reads the payouts JSON API of the same
origin (``/v1/kpis/...`` and ``/v1/kpis/.../series``) and draws the KPI table
and an SVG chart of clicks, conversions and commission over time. Query
parameters of the page (``period``, ``campaign_id``) are passed on to the API.
A campaign's page answers only to admin or its merchant, a creator's only to admin or
that creator (a key, or the session of /login). The Content-Security-Policy allows only
this page's own inline script and style (by hash) and requests to its own origin.
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache
from importlib import resources
from typing import Annotated, Literal

from fastapi import APIRouter, Path
from fastapi.responses import HTMLResponse

from afflux.payouts.deps import CampaignReader, CreatorReader

Kind = Literal["campaign", "creator"]
ReportId = Annotated[str, Path(min_length=1, max_length=200)]


def _asset(name: str) -> str:
    return (resources.files("afflux.payouts") / "report_assets" / name).read_text("utf-8")


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@cache
def _page() -> tuple[str, str]:
    """The HTML (same for every id: the script reads the id from the URL) and its CSP."""
    script, style = _asset("report.js"), _asset("report.css")
    html = _asset("report.html").replace("/*STYLE*/", style).replace("/*SCRIPT*/", script)
    csp = (
        f"default-src 'none'; script-src {_sha256(script)}; style-src {_sha256(style)}; "
        "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )
    return html, csp


def _respond() -> HTMLResponse:
    html, csp = _page()
    headers = {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }
    return HTMLResponse(html, headers=headers)


router = APIRouter(tags=["reports"])


@router.get(
    "/reports/campaigns/{campaign_id}",
    response_class=HTMLResponse,
    summary="HTML report of a campaign: KPI table and chart (period=YYYY-MM or YYYY-Www)",
)
async def campaign_report(_: CampaignReader, campaign_id: ReportId) -> HTMLResponse:
    return _respond()


@router.get(
    "/reports/creators/{affiliate_id}",
    response_class=HTMLResponse,
    summary="HTML report of a creator: KPI table and chart (campaign_id, period optional)",
)
async def creator_report(_: CreatorReader, affiliate_id: ReportId) -> HTMLResponse:
    return _respond()
