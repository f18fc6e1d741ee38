"""A creator's money: ``GET /v1/creators/{id}/balance``, ``/ledger`` and ``/statement``
(admin or that creator's key: ``CreatorReader``). Narrowed to a ``campaign_id`` the
creator has no part in, the 404 of an unknown campaign (``creators_campaign``).

Read costs (c = the creator's campaign-periods): balance O(currencies + approval
times after ``as_of``), from the creator's running sums (``creator_balance``);
ledger page O(c + log n + page); statement O(c + the period's postings).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from afflux.payouts import params, payout_records, reads, views
from afflux.payouts.deps import ClockDep, CreatorReader, DirectoryDep, ReplayedDep, StoreDep
from afflux.payouts.errors import ERROR_RESPONSES
from afflux.payouts.models import BalanceAnswer, LedgerAnswer, StatementAnswer
from afflux.payouts.queries import (
    creator_periods,
    creators_campaign,
    creators_current_period,
    cursor_within,
    decode_cursor,
    encode_cursor,
    limit,
    period_of_any,
    period_of_campaign,
)

# A half-replayed ledger is not answered from (deps.replayed): 503 until it has replayed.
router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES, dependencies=[ReplayedDep])


@router.get("/creators/{affiliate_id}/balance", response_model=BalanceAnswer)
async def balance(
    _: CreatorReader, store: StoreDep, clock: ClockDep, affiliate_id: str, as_of: str | None = None
) -> dict[str, Any]:
    at = params.as_of(as_of, clock())
    if await store.creator_sums.known(affiliate_id):
        sums = views.currency_sums(await store.creator_sums.balance(affiliate_id, at))
    else:  # no posting yet, or a ledger written before the creator's running sums
        cps = await creator_periods(store, affiliate_id)
        sums = await reads.creator_sums(store, affiliate_id, cps, at)
    paid = await payout_records.paid_of(store, affiliate_id)
    return {"affiliate_id": affiliate_id, "as_of": at, "balances": views.balances(sums, paid)}


@router.get("/creators/{affiliate_id}/ledger", response_model=LedgerAnswer)
async def ledger(
    reader: CreatorReader,
    store: StoreDep,
    directory: DirectoryDep,
    clock: ClockDep,
    affiliate_id: str,
    campaign_id: str | None = None,
    period: str | None = None,
    as_of: str | None = None,
    cursor: str | None = None,
    limit_: Annotated[str | None, Query(alias="limit")] = None,
) -> dict[str, Any]:
    at = params.as_of(as_of, clock())
    await creators_campaign(store, directory, reader, affiliate_id, campaign_id)
    wanted = params.period(period)
    period_of_campaign(directory, campaign_id, wanted, at)
    after = decode_cursor(cursor, directory, campaign_id, wanted)
    size = limit(limit_)
    cps = await creator_periods(store, affiliate_id, campaign_id, wanted)
    if not cps and campaign_id is None:
        period_of_any(directory, (c for c, _ in await creator_periods(store, affiliate_id)), wanted)
    cursor_within(after, cps)
    postings, following = await reads.postings_page(store, affiliate_id, cps, after, size)
    return {
        "affiliate_id": affiliate_id,
        "as_of": at,
        "campaign_id": campaign_id,
        "period": wanted,
        "postings": [views.posting_view(p, at) for p in postings],
        "lines": views.line_views(postings, at),
        "next_cursor": encode_cursor(following),
    }


@router.get("/creators/{affiliate_id}/statement", response_model=StatementAnswer)
async def statement(
    reader: CreatorReader,
    store: StoreDep,
    directory: DirectoryDep,
    clock: ClockDep,
    affiliate_id: str,
    campaign_id: str | None = None,
    period: str | None = None,
    as_of: str | None = None,
) -> dict[str, Any]:
    at = params.as_of(as_of, clock())
    await creators_campaign(store, directory, reader, affiliate_id, campaign_id)
    period_of_campaign(directory, campaign_id, params.period(period), at)
    everywhere = await creator_periods(store, affiliate_id, campaign_id)
    period_of_any(directory, (c for c, _ in everywhere), params.period(period))
    wanted = params.period(period) or creators_current_period(
        directory, campaign_id, (cid for cid, _ in everywhere), at
    )
    cps = [(cid, p) for cid, p in everywhere if p == wanted]
    postings = await reads.period_postings(store, affiliate_id, cps)
    campaigns = sorted({cid for cid, _ in everywhere})
    return {
        "affiliate_id": affiliate_id,
        "campaign_id": campaign_id,
        "period": wanted,
        "as_of": at,
        "postings": [views.posting_view(p, at) for p in postings],
        "lines": views.line_views(postings, at),
        "totals": views.totals(postings, at),
        "payouts": await payout_records.records_named(store, affiliate_id, campaigns, wanted),
        "overrides_on_commission": await reads.overrides_on(
            store, affiliate_id, cps, lambda c: directory.versions(c) if c in directory else ()
        ),
    }
