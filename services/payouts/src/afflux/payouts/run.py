"""Payout runs: pay every creator whose approved, unpaid balance reaches the minimum.

Idempotent per creator, campaign and period: the payout is recorded once
(HSETNX) under that slot; ``PayoutIssued`` carries an id derived from the slot,
so a run that is repeated, or retried after the broker failed, re-sends the
same event and finance systems dedupe it. What a later clawback takes back
shows as a negative approved balance and is netted in the next payout.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from aiokafka import AIOKafkaProducer

from afflux.payouts.metrics import PayoutsMetrics
from afflux.payouts.store import LedgerStore
from afflux.shared.core.commission import Line
from afflux.shared.core.ids import derived_id
from afflux.shared.core.periods import period_of
from afflux.shared.events import PayoutIssued
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.kafka import send_event
from afflux.shared.topics import PAYOUTS


async def run_payouts(
    store: LedgerStore,
    directory: CampaignDirectory,
    producer: AIOKafkaProducer,
    *,
    as_of: int,
    period: str | None,
    metrics: PayoutsMetrics,
) -> list[dict[str, Any]]:
    lines: dict[tuple[str, str], list[Line]] = defaultdict(list)
    for cid, p in await store.campaign_periods():
        for line in await store.lines(cid, p):
            lines[(line.affiliate_id, cid)].append(line)
    paid: dict[tuple[str, str], int] = defaultdict(int)
    for record in await store.payouts():
        paid[(record["affiliate_id"], record["campaign_id"])] += int(record["amount_minor"])
    results = []
    for (affiliate, cid), owned in sorted(lines.items()):
        if cid not in directory:
            continue
        terms = directory.at(cid, as_of).terms
        name = period or period_of(as_of, terms.plan.period)
        slot = f"{affiliate}|{cid}|{name}"
        approved = sum(x.amount_minor for x in owned if x.approve_at <= as_of)
        due = approved - paid[(affiliate, cid)]
        result: dict[str, Any] = {
            "affiliate_id": affiliate,
            "campaign_id": cid,
            "currency": terms.currency,
            "period": name,
            "amount_minor": due,
            "payout_id": None,
        }
        existing = await store.payout(slot)
        if existing is not None:
            result |= {"status": "already_paid", "amount_minor": existing["amount_minor"]}
            result["payout_id"] = existing["payout_id"]
            if not existing.get("emitted"):
                await _emit(store, producer, slot, existing)
        elif due <= 0:
            result["status"] = "nothing_due"
        elif due < max(1, terms.min_payout_minor):
            result["status"] = "below_minimum"
        else:
            ids = tuple(x.line_id for x in owned if x.approve_at <= as_of)
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
            if await store.record_payout(slot, record):
                await _emit(store, producer, slot, record)
                result |= {"status": "paid", "payout_id": record["payout_id"]}
            else:  # a concurrent run recorded it first
                result["status"] = "already_paid"
        metrics.payouts.labels(result["status"]).inc()
        results.append(result)
    return results


async def _emit(
    store: LedgerStore, producer: AIOKafkaProducer, slot: str, record: dict[str, Any]
) -> None:
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
    await store.mark_emitted(slot, record)
