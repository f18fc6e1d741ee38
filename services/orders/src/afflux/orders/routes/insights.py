"""``GET /v1/campaigns/{campaign_id}/insights?period=`` (admin): a campaign's
unattributed orders by reason, orders a late click re-decided, and assists per creator
with those that would have won (afflux.orders.insights), over one period.

The payouts portal reads it server-to-server for a brand's campaign page.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from afflux.orders.deps import AdminDep, DirectoryDep
from afflux.orders.errors import Rejected
from afflux.orders.insights import InsightStore, days_between
from afflux.shared.core.periods import BadPeriod, period_bounds
from afflux.shared.io.http.apidocs import problem

router = APIRouter()
MAX_DAYS = 31


class AssistRow(BaseModel):
    affiliate_id: str
    assists: int
    would_have_won: int


class InsightsAnswer(BaseModel):
    campaign_id: str
    period: str
    unattributed_by_reason: dict[str, int]
    late_clicks: dict[str, int]
    assists: list[AssistRow]


@router.get(
    "/v1/campaigns/{campaign_id}/insights",
    response_model=InsightsAnswer,
    responses={
        401: problem("missing or wrong admin token"),
        404: problem("unknown campaign"),
        422: problem("period is not YYYY-MM or YYYY-Www"),
    },
    summary="Unattributed orders by reason, late clicks and assists of one campaign-period",
)
async def campaign_insights(
    request: Request,
    _: AdminDep,
    directory: DirectoryDep,
    campaign_id: str,
    period: Annotated[str, Query(description="YYYY-MM or YYYY-Www")],
) -> dict[str, Any]:
    if campaign_id not in directory:
        raise Rejected(404, "campaign_id", f"unknown campaign {campaign_id!r}")
    try:
        start, end = period_bounds(period)
    except BadPeriod as exc:
        raise Rejected(422, "period", str(exc)) from None
    store: InsightStore = request.app.state.outcome_index.insights
    found = await store.counts(campaign_id, days_between(start, end)[:MAX_DAYS])
    assists = [
        {"affiliate_id": a, "assists": n, "would_have_won": found.would_have_won.get(a, 0)}
        for a, n in sorted(found.assists.items(), key=lambda item: (-item[1], item[0]))
    ]
    return {
        "campaign_id": campaign_id,
        "period": period,
        "unattributed_by_reason": found.unattributed,
        "late_clicks": found.late,
        "assists": assists,
    }
