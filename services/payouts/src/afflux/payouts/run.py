"""Payout runs: pay every creator whose approved, unpaid balance reaches the minimum.

Creators are found from the ledger's campaign-periods (``{ledger}:cps``, or the
campaign's ``periods``) and each period's ``sums`` hash; what a creator has
approved in a campaign is, over its periods, the sum of their postings less
those approved only after ``as_of``; what was paid, the sum of their payout
records in the campaign.

Idempotent per creator, campaign and payout period: the payout is recorded once
(with the paid total, in the creator's slot, see ``payout_records``), and only if
what the creator was paid in the campaign is still what the run read: two runs at
once, even under different payout period names, pay an approved balance once;
``PayoutIssued`` carries an id derived from the slot, so a run that is repeated,
or retried after the broker failed, re-sends the same event and finance systems
dedupe it. Its ``line_ids`` are the lines of the creator in the campaign with a
posting approved at ``as_of`` (read from the journal only for the creators paid).
What a later clawback takes back shows as a negative approved balance and is
netted in the next payout. A run as of an earlier time than now pays, per creator and
campaign, the smaller of what was approved then and what is approved now, less what
was paid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer

from afflux.payouts import payout_records, reads
from afflux.payouts.approved import approved_by_creator
from afflux.payouts.compaction import ledger_behind
from afflux.payouts.metrics import PayoutsMetrics
from afflux.payouts.store import LedgerStore
from afflux.shared.core.ids import derived_id
from afflux.shared.core.money import MAX_AMOUNT_MINOR
from afflux.shared.core.payout_minimum import minimum_met
from afflux.shared.core.periods import payout_period
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.kafka import send_event
from afflux.shared.topics import PAYOUTS

MAX_ATTEMPTS = 5


async def run_payouts(
    store: LedgerStore,
    directory: CampaignDirectory,
    producer: AIOKafkaProducer,
    *,
    as_of: int,
    period: str | None,
    campaign: str | None = None,
    metrics: PayoutsMetrics,
    now: int | None = None,
) -> list[dict[str, Any]]:
    """Pay every creator due in every campaign (or ``campaign``); ``LedgerNotReady``
    while the ledger is rebuilt or its replay has not reached the topics' ends: a
    half-replayed ledger may hold a sale but not yet the refund (on another topic) that
    reduced it before approval, and would pay it. And before the campaign terms are
    loaded: a run would pay nobody, or only the campaigns loaded so far."""
    waiting = await ledger_behind(store)
    if waiting:
        raise LedgerNotReady(waiting)
    generation: bytes | None = await store.redis.get(store.keys.ledger("generation"))
    if not directory.ready.is_set():
        raise LedgerNotReady("the campaign terms are not loaded yet")
    if campaign is not None:
        cps = [(campaign, p) for p in await reads.campaign_periods(store, campaign)]
    else:
        cps = [cp for cp in await reads.all_periods(store) if cp[0] in directory]
    approved, periods = await approved_by_creator(store, cps, as_of)
    if now is not None and as_of < now:
        # A run as of an earlier time pays at most what is approved now: a clawback
        # dated after ``as_of`` that an earlier run already netted is counted in what was
        # paid, and a run as of before it paid the clawed-back money again.
        approved_now, _ = await approved_by_creator(store, cps, now)
        approved = {
            owner: min(amount, approved_now.get(owner, 0)) for owner, amount in approved.items()
        }
    records: dict[str, dict[str, dict[str, Any]]] = {}
    results = []
    for affiliate, cid in sorted(approved):
        if affiliate not in records:
            records[affiliate] = await payout_records.records_of(store, affiliate)
        owner = CreatorDue(affiliate, cid, approved[(affiliate, cid)], periods[(affiliate, cid)])
        try:
            await _emit_unsent(store, producer, records[affiliate], cid)
            result = await _pay(
                store,
                directory,
                producer,
                owner,
                records,
                as_of=as_of,
                period=period,
                ledger=generation,
            )
        except NotAnnounced as stopped:
            # Recorded, its event not taken: every later payout's event would wait out the
            # same timeout. The run stops here; the next one announces what was recorded.
            if stopped.recorded is not None:
                metrics.payouts.labels("paid").inc()
                results.append(stopped.recorded)
            raise RunStopped(results, stopped.cause) from None
        metrics.payouts.labels(result["status"]).inc()
        results.append(result)
    return results


@dataclass(frozen=True)
class CreatorDue:
    affiliate: str
    campaign: str
    approved: int
    periods: list[reads.CampaignPeriod]


async def _pay(
    store: LedgerStore,
    directory: CampaignDirectory,
    producer: AIOKafkaProducer,
    owner: CreatorDue,
    records: dict[str, dict[str, dict[str, Any]]],
    *,
    as_of: int,
    period: str | None,
    ledger: bytes | None = None,
) -> dict[str, Any]:
    """One creator's payout in one campaign: approved minus paid, recorded only if the
    paid total is still what it was read as (else read again and decide again), and the
    ledger is still the generation ``ledger`` the run began on."""
    affiliate, cid = owner.affiliate, owner.campaign
    terms = directory.at(cid, as_of).terms
    # The period asked for, when it is of the campaign's cadence; else its own at as_of.
    name = payout_period(period, as_of, terms.plan.period)
    for _ in range(MAX_ATTEMPTS):
        mine = records[affiliate]
        paid_before = payout_records.paid_by_campaign(mine).get(cid, 0)
        # A payout is an amount like any other: at most the largest afflux carries. What
        # is due beyond it is paid by the run of a later payout period.
        due = min(owner.approved - paid_before, MAX_AMOUNT_MINOR)
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
                await _announce(store, producer, existing)
            return result
        if due <= 0:
            return result | {"status": "nothing_due"}
        postings = None
        if due < max(1, terms.min_payout_minor):
            versions = directory.versions(cid)
            if len({v.terms.min_payout_minor for v in versions}) == 1:
                return result | {"status": "below_minimum"}
            # Below the minimum at the run, which may have been raised since: each
            # minimum holds the money approved while it was in force.
            postings = await reads.period_postings(store, affiliate, owner.periods)
            approved = [(p.approve_at, p.amount_minor) for p in postings if p.approve_at <= as_of]
            if not minimum_met(versions, approved, paid_before, as_of):
                return result | {"status": "below_minimum"}
        if postings is None:
            postings = await reads.period_postings(store, affiliate, owner.periods)
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
        # Redis lost its data while the run went on (restarted empty: the client reconnects
        # without an error): the creator's records read as none, and the approved total
        # read before would be paid again. Checked here, before each payout.
        now: bytes | None = await store.redis.get(store.keys.ledger("generation"))
        if now != ledger:
            raise LedgerNotReady(
                "the ledger was cleared during the run (the payouts made before stand)"
            )
        outcome = await payout_records.record(store, record, paid_before)
        if outcome == payout_records.RECORDED:
            mine[payout_records.slot(cid, name)] = record
            paid = result | {"status": "paid", "payout_id": record["payout_id"]}
            try:
                await _emit(store, producer, record)
            except Unanswered as exc:
                raise NotAnnounced(paid | {"announced": False}, exc) from exc
            return paid
        # Another run paid this creator meanwhile (this period, or another period's
        # name): read what it recorded, then decide again.
        records[affiliate] = await payout_records.records_of(store, affiliate)
    raise PayoutConflict(affiliate, cid)


async def _emit_unsent(
    store: LedgerStore,
    producer: AIOKafkaProducer,
    records: dict[str, dict[str, Any]],
    campaign: str,
) -> None:
    """Send the events of the creator's payouts in ``campaign`` recorded but never sent
    (the broker failed, or the run died, after recording): a run under a later period's
    name counts them as paid, so without this nobody would ever hear of them."""
    for record in list(records.values()):
        if record.get("campaign_id") == campaign and not record.get("emitted"):
            await _announce(store, producer, record)
            record["emitted"] = True


async def _announce(store: LedgerStore, producer: AIOKafkaProducer, record: dict[str, Any]) -> None:
    """``_emit`` of a payout recorded by an earlier run: NotAnnounced (nothing newly
    recorded) when the broker does not take it."""
    try:
        await _emit(store, producer, record)
    except Unanswered as exc:
        raise NotAnnounced(None, exc) from exc


class LedgerNotReady(Exception):
    """No payout run now: the reason (a rebuild, its replay, the campaign terms)."""


class NotAnnounced(Exception):
    """A payout's event not sent or not marked sent (``cause``); ``recorded``: the result
    of the payout this run recorded just before (None when the event was of an earlier
    run's)."""

    def __init__(self, recorded: dict[str, Any] | None, cause: Unanswered) -> None:
        super().__init__(str(cause))
        self.recorded = recorded
        self.cause = cause


class RunStopped(Exception):
    """The run stopped at a payout event the broker did not take: ``results`` are the
    payouts decided before it (and the one recorded then, marked ``announced: false``)."""

    def __init__(self, results: list[dict[str, Any]], cause: Unanswered) -> None:
        what = "not sent" if cause.who == BROKER else "sent but not marked sent"
        error = cause.error
        super().__init__(f"a payout event was {what} ({type(error).__name__}: {error})")
        self.results = results
        self.unanswered = cause.who  # whom to wait for: BROKER or REDIS


class PayoutConflict(Exception):
    """Other runs kept paying the same creator while this one decided: run again."""

    def __init__(self, affiliate: str, campaign: str) -> None:
        super().__init__(f"payout of {affiliate!r} in {campaign!r} kept changing; run again")


BROKER, REDIS = "the broker", "Redis"


class Unanswered(Exception):
    """A payout's event not sent (``who``: the broker) or not marked sent (Redis)."""

    def __init__(self, who: str, error: Exception) -> None:
        super().__init__(f"{who}: {type(error).__name__}: {error}")
        self.who = who
        self.error = error


async def _emit(store: LedgerStore, producer: AIOKafkaProducer, record: dict[str, Any]) -> None:
    try:  # a record the event cannot be made of (damaged) stops the run the same way
        event = payout_records.event_of(record)
        await send_event(producer, PAYOUTS.name, record["affiliate_id"], event)
    except Exception as exc:
        raise Unanswered(BROKER, exc) from exc
    try:
        await payout_records.mark_emitted(store, record)
    except Exception as exc:  # sent; the next run sends it again under the same id
        raise Unanswered(REDIS, exc) from exc
