"""Report pages: ``GET /reports/campaigns/{id}`` and ``GET /reports/creators/{id}``.

The addresses the CLI and earlier links hand out: each answers the portal's page of the
same figures (afflux.payouts.portal): a campaign's KPIs for a period with its charts,
top creators and payouts, or a creator's KPIs per campaign with charts. A campaign's
page answers only to admin or its merchant, a creator's only to admin or that creator
(a key, or the session of /login). docs/portal.md.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from afflux.payouts.deps import (
    CampaignReader,
    ClockDep,
    CreatorReader,
    DirectoryDep,
    ReplayedDep,
    StoreDep,
)
from afflux.payouts.portal import brand_pages, creator_pages

ReportId = Annotated[str, Path(min_length=1, max_length=200)]
PeriodQuery = Annotated[str | None, Query(max_length=20)]

router = APIRouter(tags=["reports"], dependencies=[ReplayedDep])


@router.get(
    "/reports/campaigns/{campaign_id}",
    response_class=HTMLResponse,
    summary="HTML report of a campaign: KPIs, charts, top creators (period=YYYY-MM or YYYY-Www)",
)
async def campaign_report(
    _: CampaignReader,
    request: Request,
    store: StoreDep,
    directory: DirectoryDep,
    clock: ClockDep,
    campaign_id: ReportId,
    period: PeriodQuery = None,
) -> Response:
    return await brand_pages.campaign_page(request, store, directory, clock, campaign_id, period)


@router.get(
    "/reports/creators/{affiliate_id}",
    response_class=HTMLResponse,
    summary="HTML report of a creator: KPIs and charts per campaign (period optional)",
)
async def creator_report(
    _: CreatorReader,
    request: Request,
    store: StoreDep,
    directory: DirectoryDep,
    clock: ClockDep,
    affiliate_id: ReportId,
    period: PeriodQuery = None,
) -> Response:
    return await creator_pages.kpis_page(request, store, directory, clock, affiliate_id, period)
