"""Payout runs: pay every creator whose approved, unpaid balance reaches the minimum.

Creators are found from the ledger's campaign-periods (``{ledger}:cps``, or the
campaign's ``periods``) and each period's ``sums`` hash; what a creator has
approved in a campaign is, over its periods, the sum of their postings less
those approved only after ``as_of``; what was paid, the sum of their payout
records in the campaign.

Idempotent per creator, campaign and payout period: the payout is recorded once
(HSETNX, with the paid total, in the creator's slot, see ``payout_records``);
``PayoutIssued`` carries an id derived from the slot, so a run that is repeated,
or retried after the broker failed, re-sends the same event and finance systems
dedupe it. Its ``line_ids`` are the lines of the creator in the campaign with a
posting approved at ``as_of`` (read from the journal only for the creators paid).
What a later clawback takes back shows as a negative approved balance and is
netted in the next payout.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from aiokafka import AIOKafkaProducer

from afflux.payouts import payout_records, reads
from afflux.payouts.metrics import PayoutsMetrics
from afflux.payouts.store import LedgerStore
from afflux.shared.core.ids import derived_id
from afflux.shared.core.periods import period_of
from afflux.shared.events import PayoutIssued
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.kafka import send_event
from afflux.shared.topics import PAYOUTS

Owner = tuple[str, str]  # affiliate, campaign


async def approved_by_creator(
    store: LedgerStore, cps: list[reads.CampaignPeriod], as_of: int
) -> tuple[dict[Owner, int], dict[Owner, list[reads.CampaignPeriod]]]:
    """Per creator and campaign: what their postings approved at ``as_of`` add up to,
    and the campaign-periods that hold them."""
    totals = await reads.period_creator_sums(store, cps)
    wanted = [(cid, p, a) for (cid, p), sums in zip(cps, totals, strict=True) for a in sorted(sums)]
    pending = await reads.pending_amounts(store, wanted, as_of)
    approved: dict[Owner, int] = defaultdict(int)
    periods: dict[Owner, list[reads.CampaignPeriod]] = defaultdict(list)
    by_cp = dict(zip(cps, totals, strict=True))
    for (cid, p, a), waiting in zip(wanted, pending, strict=True):
        approved[(a, cid)] += by_cp[(cid, p)][a] - waiting
        periods[(a, cid)].append((cid, p))
    return dict(approved), dict(periods)


async def run_payouts(
    store: LedgerStore,
    directory: CampaignDirectory,
    producer: AIOKafkaProducer,
    *,
    as_of: int,
    period: str | None,
    campaign: str | None = None,
    metrics: PayoutsMetrics,
) -> list[dict[str, Any]]:
    if campaign is not None:
        cps = [(campaign, p) for p in await reads.campaign_periods(store, campaign)]
    else:
        cps = [cp for cp in await reads.all_periods(store) if cp[0] in directory]
    approved, periods = await approved_by_creator(store, cps, as_of)
    records: dict[str, dict[str, dict[str, Any]]] = {}
    results = []
    for affiliate, cid in sorted(approved):
        if affiliate not in records:
            records[affiliate] = await payout_records.records_of(store, affiliate)
        mine = records[affiliate]
        terms = directory.at(cid, as_of).terms
        name = period or period_of(as_of, terms.plan.period)
        due = approved[(affiliate, cid)] - payout_records.paid_by_campaign(mine).get(cid, 0)
        result: dict[str, Any] = {
            "affiliate_id": affiliate,
            "campaign_id": cid,
            "currency": terms.currency,
            "period": name,
            "amount_minor": due,
            "payout_id": None,
        }
        existing = mine.get(payout_records.slot(cid, name))
        if existing is not None:
            result |= {"status": "already_paid", "amount_minor": existing["amount_minor"]}
            result["payout_id"] = existing["payout_id"]
            if not existing.get("emitted"):
                await _emit(store, producer, existing)
        elif due <= 0:
            result["status"] = "nothing_due"
        elif due < max(1, terms.min_payout_minor):
            result["status"] = "below_minimum"
        else:
            postings = await reads.period_postings(store, affiliate, periods[(affiliate, cid)])
            ids = dict.fromkeys(p.line_id for p in postings if p.approve_at <= as_of)
            record = {
                "payout_id": derived_id("payout", affiliate, cid, name),
                "affiliate_id": affiliate,
                "campaign_id": cid,
                "currency": terms.currency,
                "period": name,
                "amount_minor": due,
                "as_of": as_of,
                "line_ids": list(ids),
            }
            if await payout_records.record(store, record):
                mine[payout_records.slot(cid, name)] = record
                await _emit(store, producer, record)
                result |= {"status": "paid", "payout_id": record["payout_id"]}
            else:  # a concurrent run recorded it first
                result["status"] = "already_paid"
        metrics.payouts.labels(result["status"]).inc()
        results.append(result)
    return results


async def _emit(store: LedgerStore, producer: AIOKafkaProducer, record: dict[str, Any]) -> None:
    event = PayoutIssued(
        event_id=record["payout_id"],
        occurred_at=record["as_of"],
        payout_id=record["payout_id"],
        affiliate_id=record["affiliate_id"],
        campaign_id=record["campaign_id"],
        period=record["period"],
        amount_minor=record["amount_minor"],
        currency=record["currency"],
        line_ids=tuple(record["line_ids"]),
    )
    await send_event(producer, PAYOUTS.name, record["affiliate_id"], event)
    await payout_records.mark_emitted(store, record)
