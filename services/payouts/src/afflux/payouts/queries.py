"""What the payouts API reads, as plain functions of the store and the campaign view.

Each takes what it touches; a missing creator or campaign is a 404 ``Problem``
naming the field. The figures themselves come from the pure read models in
afflux.payouts.views.
"""

from __future__ import annotations

from typing import Any

from afflux.payouts import views
from afflux.payouts.store import LedgerStore
from afflux.shared.core.commission import Line
from afflux.shared.core.periods import period_of
from afflux.shared.core.terms import Period as PlanPeriod
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.http.problems import Problem

CountsByCreator = dict[tuple[str, str], views.Counts]


def known_campaign(directory: CampaignDirectory, campaign: str | None) -> None:
    """404 on ``campaign_id`` unless ``campaign`` is None or in the campaign view."""
    if campaign is not None and campaign not in directory:
        raise Problem(404, "campaign_id", f"unknown campaign {campaign!r}")


async def creator_lines(store: LedgerStore, affiliate: str, campaign: str | None) -> list[Line]:
    """Every ledger line of ``affiliate`` (in ``campaign`` only, when given); 404 without
    a ledger for the creator."""
    cps = await store.campaign_periods(affiliate)
    if not cps:
        raise Problem(404, "affiliate_id", f"no ledger for creator {affiliate!r}")
    lines: list[Line] = []
    for cid, period in cps:
        if campaign is None or cid == campaign:
            lines += [x for x in await store.lines(cid, period) if x.affiliate_id == affiliate]
    return lines


async def creator_payouts(
    store: LedgerStore, affiliate: str, campaign: str | None
) -> list[dict[str, Any]]:
    """The payouts recorded for ``affiliate`` (in ``campaign`` only, when given)."""
    return [
        p
        for p in await store.payouts()
        if p["affiliate_id"] == affiliate and (campaign is None or p["campaign_id"] == campaign)
    ]


async def counts_for(
    store: LedgerStore, directory: CampaignDirectory, campaign: str | None, period: str | None
) -> CountsByCreator:
    """(campaign, affiliate) -> counts over the matching campaign-periods of known campaigns."""
    out: CountsByCreator = {}
    for cid, p in await store.campaign_periods():
        if (campaign is not None and cid != campaign) or (period is not None and p != period):
            continue
        if cid not in directory:
            continue
        stored, clicks = await store.period_state(cid, p)
        per_affiliate: dict[str, views.Counts] = {}
        currency = directory.latest(cid).terms.currency
        views.tally(stored, clicks, await store.lines(cid, p), currency, per_affiliate)
        for affiliate, counts in per_affiliate.items():
            key = (cid, affiliate)
            out[key] = views.combine([out[key], counts]) if key in out else counts
    return out


def current_period(directory: CampaignDirectory, campaign: str | None, at: int) -> str:
    """The period ``at`` falls in under the campaign's plan (a month without a campaign)."""
    plan_period: PlanPeriod = "month"
    if campaign is not None and campaign in directory:
        plan_period = directory.at(campaign, at).terms.plan.period
    return period_of(at, plan_period)
