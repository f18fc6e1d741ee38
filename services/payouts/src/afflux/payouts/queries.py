"""What the payouts API answers, as plain functions of the store and the campaign view.

Each takes what it touches; a missing creator or campaign is a 404 ``Problem``
naming the field. The Redis reads are in afflux.payouts.reads, the figures come
from the pure read models in afflux.payouts.views.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Sequence
from typing import Any

from afflux.payouts import reads, views
from afflux.payouts.reads import CampaignPeriod, Position
from afflux.payouts.store import LedgerStore
from afflux.shared.core.access import Principal
from afflux.shared.core.periods import (
    CADENCE_NAMES,
    cadence_of,
    is_period_of,
    period_bounds,
    period_of,
)
from afflux.shared.core.terms import Period as PlanPeriod
from afflux.shared.core.terms import names_creator
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.http.problems import Problem
from afflux.shared.wire import check_bounds

CountsByCreator = dict[tuple[str, str], views.Counts]
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# The longest cursor ``encode_cursor`` makes is about 3,300 characters: a campaign id of
# 200 characters, each escaped in the JSON as up to 12 (a surrogate pair), a period and
# a seq, in base64. Anything longer is not one of ours and is refused before decoding.
MAX_CURSOR_CHARS = 4096
MAX_SEQ = 2**63 - 1  # a journal seq is a Redis score: a huge one is not ours either


def unknown_campaign(campaign: str) -> Problem:
    """The one 404 of a campaign that is unknown or not the asker's (same body, same
    headers: which of the two it is must not show)."""
    return Problem(404, "campaign_id", f"unknown campaign {campaign!r}")


def unknown_creator(affiliate: str) -> Problem:
    """The one 404 of a creator without postings in what was asked (any at all, or in
    the campaign or period asked) or not the asker's (see above). It said "no ledger for
    creator", which a dashboard read as an unknown creator when the creator only had
    nothing in the period asked."""
    return Problem(404, "affiliate_id", f"no postings of creator {affiliate!r} in what was asked")


def known_campaign(directory: CampaignDirectory, campaign: str | None) -> None:
    """404 on ``campaign_id`` unless ``campaign`` is None or in the campaign view."""
    if campaign is not None and campaign not in directory:
        raise unknown_campaign(campaign)


async def creators_campaign(
    store: LedgerStore,
    directory: CampaignDirectory,
    reader: Principal,
    affiliate: str,
    campaign: str | None,
) -> None:
    """A creator's figures narrowed to ``campaign``: 404 on ``campaign_id`` (the very
    answer of an unknown campaign) unless it is None, or known and, to anyone but admin
    (the creator's own key), one the creator has a part in: a version of its terms names
    it (``names_creator``: a coupon, survey handle, window, agency membership) or its ledger
    holds a period of it (an agency's overrides too). Checked before the creator's ledger
    is: otherwise a real campaign answered an empty ledger, a statement whose period
    showed the campaign's cadence, or KPIs' "no ledger", where a made-up one got this
    404."""
    known_campaign(directory, campaign)
    if campaign is None or reader.is_admin:
        return
    # Any version: a future one that drops a coupon must not hide it before it starts.
    if any(names_creator(v.terms, affiliate) for v in directory.versions(campaign)):
        return
    if not any(cid == campaign for cid, _ in await reads.creator_periods(store, affiliate)):
        raise unknown_campaign(campaign)


async def creator_periods(
    store: LedgerStore, affiliate: str, campaign: str | None = None, period: str | None = None
) -> list[CampaignPeriod]:
    """The creator's campaign-periods (only ``campaign``'s, ``period``, when given);
    404 on ``affiliate_id`` without a ledger for the creator."""
    cps = await reads.creator_periods(store, affiliate)
    if not cps:
        raise unknown_creator(affiliate)
    return [
        (cid, p)
        for cid, p in cps
        if (campaign is None or cid == campaign) and (period is None or p == period)
    ]


def limit(value: str | None) -> int:
    """A page size from 1 to 1000 (default 100); 422 on ``limit`` otherwise."""
    if value is None or value == "":
        return DEFAULT_LIMIT
    # int() raises past 4,300 digits (leading zeros count): only the significant ones are read.
    digits = value.lstrip("0")
    numeral = value.isascii() and value.isdigit() and len(digits) <= len(str(MAX_LIMIT))
    if not numeral or not 1 <= int(digits or "0") <= MAX_LIMIT:
        raise Problem(422, "limit", f"not a whole number from 1 to {MAX_LIMIT}: {value[:20]!r}")
    return int(digits)


def encode_cursor(position: Position | None) -> str | None:
    if position is None:
        return None
    data = json.dumps([position.campaign_id, position.period, position.seq]).encode()
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def decode_cursor(
    value: str | None,
    directory: CampaignDirectory | None = None,
    campaign: str | None = None,
    period_asked: str | None = None,
) -> Position | None:
    """The position a ``next_cursor`` names; 422 on ``cursor`` for anything else: one
    whose campaign is not in ``directory`` or whose period is not a period (of that
    campaign's cadence: a week of a monthly campaign holds nothing), or one of
    another query than this (another ``campaign`` or period than ``period_asked``).
    A page of an unknown campaign or a period such as ``2026-13`` used to answer an
    empty last page, which a client could not tell from the end of the ledger.

    Bounded before the parser sees it: at most ``MAX_CURSOR_CHARS`` characters, and
    nesting, number lengths as a record's (``check_bounds``). A cursor of 5,000 nested
    brackets made the JSON parser raise RecursionError, answered 500."""
    if value is None or value == "":
        return None
    try:
        if len(value) > MAX_CURSOR_CHARS:
            raise ValueError
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        check_bounds(raw)  # UndecodableRecord is a ValueError
        cid, period, seq = json.loads(raw)
        if not (isinstance(cid, str) and isinstance(period, str) and type(seq) is int):
            raise ValueError
        if not 0 <= seq <= MAX_SEQ:
            raise ValueError
        period_bounds(period)  # BadPeriod is a ValueError
        if directory is not None and (
            cid not in directory or not is_period_of(directory.versions(cid), period)
        ):
            raise ValueError
        if campaign not in (None, cid) or period_asked not in (None, period):
            raise ValueError
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise Problem(422, "cursor", "not a cursor this API answered") from None
    return Position(cid, period, seq)


def period_of_campaign(
    directory: CampaignDirectory, campaign: str | None, period: str | None, at_ms: int | None
) -> None:
    """422 ``period`` when ``campaign`` was never paid by ``period``'s cadence (a month of
    a weekly campaign holds nothing): answered 200 with no lines, while a payout run of
    the same period and campaign is a 422 naming the cadence."""
    if campaign is None or period is None or campaign not in directory:
        return
    versions = directory.versions(campaign)
    if is_period_of(versions, period):
        return
    if at_ms is None:  # a read without an as_of: the latest terms say the cadence
        cadence = directory.latest(campaign).terms.plan.period
        example = ""
    else:
        cadence = directory.at(campaign, at_ms).terms.plan.period
        example = f", such as {period_of(at_ms, cadence)}"
    raise Problem(
        422,
        "period",
        f"{period!r} is {CADENCE_NAMES[cadence_of(period)]}, but campaign {campaign} is paid"
        f" by the {cadence}: name {CADENCE_NAMES[cadence]}{example}",
    )


def period_of_any(
    directory: CampaignDirectory, campaigns: Iterable[str], period: str | None
) -> None:
    """422 ``period`` when none of ``campaigns`` (a creator's, without a campaign filter)
    was ever paid by ``period``'s cadence: a weekly-only creator's month answered no
    lines, read as nothing earned. Nothing to say without a period or campaigns."""
    known = [c for c in campaigns if c in directory]
    if period is None or not known:
        return
    if any(is_period_of(directory.versions(c), period) for c in known):
        return
    cadence: PlanPeriod = "week" if cadence_of(period) == "month" else "month"
    raise Problem(
        422,
        "period",
        f"{period!r} is {CADENCE_NAMES[cadence_of(period)]}, but none of the creator's"
        f" campaigns is paid by the {cadence_of(period)}: name {CADENCE_NAMES[cadence]}",
    )


def cursor_within(after: Position | None, cps: Sequence[tuple[str, str]]) -> None:
    """422 ``cursor`` unless the cursor names one of the reader's campaign-periods ``cps``,
    as every cursor the ledger answered does: one naming another brand's campaign was
    answered 200 or 422 by that campaign's cadence, telling a creator that it exists and
    how it pays. The same answer as for a cursor naming no campaign at all."""
    if after is not None and (after.campaign_id, after.period) not in set(cps):
        raise Problem(422, "cursor", "not a cursor this API answered")


async def counts_for(
    store: LedgerStore, directory: CampaignDirectory, campaign: str | None, period: str | None
) -> CountsByCreator:
    """(campaign, affiliate) -> counts over the matching campaign-periods of known
    campaigns, from their KPI counters and click tallies."""
    if campaign is not None:
        cps = [(campaign, p) for p in await reads.campaign_periods(store, campaign)]
    else:
        cps = await reads.all_periods(store)
    return await _tally(store, directory, [(c, p) for c, p in cps if period in (None, p)])


async def creator_counts(
    store: LedgerStore,
    directory: CampaignDirectory,
    affiliate: str,
    campaign: str | None,
    period: str | None,
) -> list[views.Counts]:
    """The creator's counts per campaign (only ``campaign``'s, in ``period``, when
    given), read from the creator's own campaign-periods (the creator index): a
    network's other creators add nothing to the cost. 404 on ``affiliate_id`` without
    any."""
    cps = await creator_periods(store, affiliate, campaign, period)
    mine = [c for (_, a), c in (await _tally(store, directory, cps)).items() if a == affiliate]
    if not mine:
        raise unknown_creator(affiliate)
    return mine


async def _tally(
    store: LedgerStore, directory: CampaignDirectory, cps: list[CampaignPeriod]
) -> CountsByCreator:
    """(campaign, affiliate) -> counts over the campaign-periods ``cps`` of known campaigns."""
    out: CountsByCreator = {}
    for cid, p in cps:
        if cid not in directory:
            continue
        kpis, clicks = await reads.period_counters(store, cid, p)
        per_affiliate: dict[str, views.Counts] = {}
        terms = directory.latest(cid).terms
        views.tally(kpis, clicks, terms.currency, per_affiliate, campaign_id=cid, emv=terms.emv)
        for affiliate, counts in per_affiliate.items():
            key = (cid, affiliate)
            out[key] = views.combine([out[key], counts]) if key in out else counts
    return out


async def contents_for(
    store: LedgerStore,
    cps: list[CampaignPeriod],
    directory: CampaignDirectory,
    affiliate: str | None = None,
) -> list[dict[str, Any]]:
    """One row per content published in the campaign-periods ``cps`` of known campaigns
    (only ``affiliate``'s, when given), with its period: views.content_rows."""
    rows: list[dict[str, Any]] = []
    for cid, p in cps:
        if cid not in directory:
            continue
        states = await store.content_states(cid, p)
        if affiliate is not None:
            states = [
                s for s in states if s.publication and s.publication.affiliate_id == affiliate
            ]
        if not states:
            continue
        kpis, clicks = await reads.period_counters(store, cid, p)
        terms = directory.latest(cid).terms
        revenue, tagged = views.stream_revenue(kpis), views.content_clicks(clicks)
        if any(s.publication and s.publication.kind == "live" for s in states):
            # A stream lasts at most a day: the sales it won after its period's end are
            # counted in the next period, and are its revenue all the same.
            end = period_bounds(p)[1]
            later, _ = await reads.period_counters(
                store, cid, period_of(end, directory.at(cid, end).terms.plan.period)
            )
            for key, amount in views.stream_revenue(later).items():
                revenue[key] = revenue.get(key, 0) + amount
        for row in views.content_rows(states, revenue, terms.emv, tagged):
            rows.append({**row, "period": p, "currency": terms.currency})
    return rows


def current_period(directory: CampaignDirectory, campaign: str | None, at: int) -> str:
    """The period ``at`` falls in under the campaign's plan (a month without a campaign)."""
    plan_period: PlanPeriod = "month"
    if campaign is not None and campaign in directory:
        plan_period = directory.at(campaign, at).terms.plan.period
    return period_of(at, plan_period)


def creators_current_period(
    directory: CampaignDirectory, campaign: str | None, campaigns: Iterable[str], at: int
) -> str:
    """A creator statement's period when none is asked: ``campaign``'s current one, else
    the current week when every campaign the creator has a ledger in is paid by the week
    (a month showed such a creator an empty statement while money was pending), else the
    current month."""
    if campaign is not None:
        return current_period(directory, campaign, at)
    cadences = {directory.at(c, at).terms.plan.period for c in campaigns if c in directory}
    return period_of(at, "week" if cadences == {"week"} else "month")
