"""A creator's money: ``GET /v1/creators/{id}/balance``, ``/ledger`` and ``/statement``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from afflux.payouts import params, views
from afflux.payouts.deps import ClockDep, DirectoryDep, StoreDep
from afflux.payouts.errors import ERROR_RESPONSES
from afflux.payouts.models import BalanceAnswer, LedgerAnswer, StatementAnswer
from afflux.payouts.queries import creator_lines, creator_payouts, current_period, known_campaign

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)


@router.get("/creators/{affiliate_id}/balance", response_model=BalanceAnswer)
async def balance(
    store: StoreDep, clock: ClockDep, affiliate_id: str, as_of: str | None = None
) -> dict[str, Any]:
    at = params.as_of(as_of, clock())
    lines = await creator_lines(store, affiliate_id, None)
    paid = await creator_payouts(store, affiliate_id, None)
    return {"affiliate_id": affiliate_id, "as_of": at, "balances": views.balances(lines, paid, at)}


@router.get("/creators/{affiliate_id}/ledger", response_model=LedgerAnswer)
async def ledger(
    store: StoreDep,
    directory: DirectoryDep,
    clock: ClockDep,
    affiliate_id: str,
    campaign_id: str | None = None,
    as_of: str | None = None,
) -> dict[str, Any]:
    at = params.as_of(as_of, clock())
    known_campaign(directory, campaign_id)
    lines = await creator_lines(store, affiliate_id, campaign_id)
    ordered = sorted(lines, key=lambda x: (x.occurred_at, x.line_id))
    return {
        "affiliate_id": affiliate_id,
        "as_of": at,
        "lines": [views.line_view(x, at) for x in ordered],
    }


@router.get("/creators/{affiliate_id}/statement", response_model=StatementAnswer)
async def statement(
    store: StoreDep,
    directory: DirectoryDep,
    clock: ClockDep,
    affiliate_id: str,
    campaign_id: str | None = None,
    period: str | None = None,
    as_of: str | None = None,
) -> dict[str, Any]:
    at = params.as_of(as_of, clock())
    known_campaign(directory, campaign_id)
    wanted = params.period(period) or current_period(directory, campaign_id, at)
    lines = [x for x in await creator_lines(store, affiliate_id, campaign_id) if x.period == wanted]
    paid = [
        p for p in await creator_payouts(store, affiliate_id, campaign_id) if p["period"] == wanted
    ]
    totals: dict[str, int] = {}
    for line in lines:
        totals[line.currency] = totals.get(line.currency, 0) + line.amount_minor
    return {
        "affiliate_id": affiliate_id,
        "period": wanted,
        "as_of": at,
        "lines": [
            views.line_view(x, at) for x in sorted(lines, key=lambda x: (x.occurred_at, x.line_id))
        ],
        "totals": [{"currency": c, "amount_minor": a} for c, a in sorted(totals.items())],
        "payouts": paid,
    }
