"""KPIs of campaigns and creators: ``GET /v1/kpis/...`` (rows and per-day series).

A campaign's answer only to admin or its merchant (``CampaignReader``), a creator's only
to admin or that creator (``CreatorReader``; narrowed to a campaign it has no part in,
the 404 of an unknown campaign: ``creators_campaign``); the list of creators to admin, or to a
merchant for one of its campaigns (``CampaignListReader``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from afflux.payouts import params, reads, views
from afflux.payouts.deps import (
    CampaignListReader,
    CampaignReader,
    CreatorReader,
    DirectoryDep,
    ReplayedDep,
    StoreDep,
)
from afflux.payouts.errors import ERROR_RESPONSES
from afflux.payouts.models import (
    ContentsAnswer,
    CreatorKpis,
    CreatorKpisList,
    KpiRow,
    SeriesAnswer,
)
from afflux.payouts.queries import (
    CountsByCreator,
    contents_for,
    counts_for,
    creator_counts,
    creator_periods,
    creators_campaign,
    known_campaign,
    period_of_campaign,
)
from afflux.payouts.store import LedgerStore
from afflux.shared.core.access import Principal
from afflux.shared.io.campaign_view import CampaignDirectory

# A half-replayed ledger is not answered from (deps.replayed): 503 until it has replayed.
router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES, dependencies=[ReplayedDep])


async def _counts(
    store: LedgerStore, directory: CampaignDirectory, campaign_id: str | None, period: str | None
) -> CountsByCreator:
    """The counts of ``campaign_id`` (404 unless known; every campaign when None) in
    ``period`` (422 unless a valid period; every period when absent)."""
    known_campaign(directory, campaign_id)
    # A week of a monthly campaign answered every figure 0, read as nothing happened.
    period_of_campaign(directory, campaign_id, params.period(period), None)
    return await counts_for(store, directory, campaign_id, params.period(period))


async def _of_creator(
    store: LedgerStore,
    directory: CampaignDirectory,
    reader: Principal,
    affiliate_id: str,
    campaign_id: str | None,
    period: str | None,
) -> list[views.Counts]:
    """The counts of one creator, per campaign (of ``campaign_id``: 404 unless one the
    creator has a part in, ``creators_campaign``; in ``period``), from the creator's own
    campaign-periods; 404 without any."""
    await creators_campaign(store, directory, reader, affiliate_id, campaign_id)
    wanted = params.period(period)
    period_of_campaign(directory, campaign_id, wanted, None)  # it answered 404 "no ledger"
    return await creator_counts(store, directory, affiliate_id, campaign_id, wanted)


@router.get("/kpis/campaigns/{campaign_id}", response_model=KpiRow)
async def campaign_kpis(
    _: CampaignReader,
    store: StoreDep,
    directory: DirectoryDep,
    campaign_id: str,
    period: str | None = None,
) -> dict[str, Any]:
    counts = await _counts(store, directory, campaign_id, period)
    total = views.combine(counts.values())
    total.currency = total.currency or directory.latest(campaign_id).terms.currency
    return {"campaign_id": campaign_id, "period": period, **views.kpi_row(total)}


@router.get("/kpis/campaigns/{campaign_id}/series", response_model=SeriesAnswer)
async def campaign_series(
    _: CampaignReader,
    store: StoreDep,
    directory: DirectoryDep,
    campaign_id: str,
    period: str | None = None,
) -> dict[str, Any]:
    counts = await _counts(store, directory, campaign_id, period)
    total = views.combine(counts.values())
    currency = directory.latest(campaign_id).terms.currency
    return {"campaign_id": campaign_id, "currency": currency, "buckets": views.series(total)}


@router.get(
    "/kpis/creators",
    response_model=CreatorKpisList,
    responses={403: ERROR_RESPONSES[401] | {"description": "a creator's key: not a lister"}},
)
async def creators_kpis(
    _: CampaignListReader,
    store: StoreDep,
    directory: DirectoryDep,
    campaign_id: str | None = None,
    period: str | None = None,
) -> dict[str, Any]:
    counts = await _counts(store, directory, campaign_id, period)
    by_creator: dict[tuple[str, str], list[views.Counts]] = {}
    for (cid, affiliate), c in counts.items():
        # Without a campaign the rows are per creator and currency (money never mixes).
        key = (affiliate, cid if campaign_id else c.currency)
        by_creator.setdefault(key, []).append(c)
    rows = []
    for (affiliate, _scope), parts in sorted(by_creator.items()):
        row = views.kpi_row(views.combine(parts))
        rows.append({"affiliate_id": affiliate, "campaign_id": campaign_id, **row})
    return {"campaign_id": campaign_id, "period": period, "creators": rows}


@router.get("/kpis/creators/{affiliate_id}", response_model=CreatorKpis)
async def creator_kpis(
    reader: CreatorReader,
    store: StoreDep,
    directory: DirectoryDep,
    affiliate_id: str,
    campaign_id: str | None = None,
    period: str | None = None,
) -> dict[str, Any]:
    per_currency: dict[str, list[views.Counts]] = {}
    for c in await _of_creator(store, directory, reader, affiliate_id, campaign_id, period):
        per_currency.setdefault(c.currency, []).append(c)
    rows = [
        {
            "affiliate_id": affiliate_id,
            "campaign_id": campaign_id,
            **views.kpi_row(views.combine(p)),
        }
        for _, p in sorted(per_currency.items())
    ]
    return {"affiliate_id": affiliate_id, "period": period, "creators": rows, **rows[0]}


@router.get("/kpis/creators/{affiliate_id}/series", response_model=SeriesAnswer)
async def creator_series(
    reader: CreatorReader,
    store: StoreDep,
    directory: DirectoryDep,
    affiliate_id: str,
    campaign_id: str | None = None,
    period: str | None = None,
) -> dict[str, Any]:
    per_currency: dict[str, list[views.Counts]] = {}
    for c in await _of_creator(store, directory, reader, affiliate_id, campaign_id, period):
        per_currency.setdefault(c.currency, []).append(c)
    # One series per currency, as the creator's KPI rows are: summed into one, a creator
    # of an EUR and a USD campaign saw 150.00 "EUR" for 100 EUR and 50 USD.
    series = [
        {"currency": currency, "buckets": views.series(views.combine(parts))}
        for currency, parts in sorted(per_currency.items())
    ]
    return {
        "affiliate_id": affiliate_id,
        "campaign_id": campaign_id,  # the filter applied, as the campaign's series says
        **series[0],
        "by_currency": series,
    }


@router.get("/kpis/campaigns/{campaign_id}/contents", response_model=ContentsAnswer)
async def campaign_contents(
    _: CampaignReader,
    store: StoreDep,
    directory: DirectoryDep,
    campaign_id: str,
    period: str | None = None,
) -> dict[str, Any]:
    """Every content published in the campaign (in ``period``): views, engagement,
    engagement rate, CTR, RPM, EMV per content."""
    known_campaign(directory, campaign_id)
    wanted = params.period(period)
    period_of_campaign(directory, campaign_id, wanted, None)
    cps = [
        (campaign_id, p)
        for p in await reads.campaign_periods(store, campaign_id)
        if wanted is None or p == wanted
    ]
    rows = await contents_for(store, cps, directory)
    return {"campaign_id": campaign_id, "period": period, "contents": rows}


@router.get("/kpis/creators/{affiliate_id}/contents", response_model=ContentsAnswer)
async def creator_contents(
    reader: CreatorReader,
    store: StoreDep,
    directory: DirectoryDep,
    affiliate_id: str,
    campaign_id: str | None = None,
    period: str | None = None,
) -> dict[str, Any]:
    """The creator's contents (of ``campaign_id``, in ``period``), as above."""
    await creators_campaign(store, directory, reader, affiliate_id, campaign_id)
    period_of_campaign(directory, campaign_id, params.period(period), None)
    cps = await creator_periods(store, affiliate_id, campaign_id, params.period(period))
    rows = await contents_for(store, cps, directory, affiliate_id)
    return {
        "affiliate_id": affiliate_id,
        "campaign_id": campaign_id,
        "period": period,
        "contents": rows,
    }
