"""What the payouts API reads from the journal (key layout in ``keys``), each read indexed.

Every function takes the ``LedgerStore`` and reads its Redis; none scans facts
or line records. Costs, with c = the creator's campaign-periods:

- ``creator_sums``: per campaign-period the first posting (for its currency), then
  one script reading the ``sums`` fields and the approval times after ``as_of``
  (``ZRANGEBYSCORE`` on ``due:<a>``, ``HMGET`` of their amounts) at one instant
  (``period_figures``): O(c + pending approval times), in two round trips.
- ``postings_page``: ``ZRANGEBYSCORE`` on ``journal:<a>`` from the cursor's seq,
  one campaign-period after the other until the page is full: O(c + log n + page).
- ``period_postings``: every posting of the creator in one period's
  campaign-periods: O(c + that period's postings).
- ``period_counters``: the ``kpis`` and ``clicks`` hashes of one campaign-period:
  O(counters), independent of how many facts the period holds.

A compacted campaign-period (``snapshots``) has no journal: the posting reads take
the creator's postings from its snapshot (read in the same round trip), the sums
its currency and, for an ``as_of`` before its latest approval, its pending part.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from afflux.payouts import snapshots
from afflux.payouts.keys import creator_index_pair, creator_index_range
from afflux.payouts.period_figures import period_figures
from afflux.payouts.store import LedgerStore
from afflux.payouts.views import PeriodSums
from afflux.shared.core.journal.records import Posting
from afflux.shared.core.terms import TermsVersion

CampaignPeriod = tuple[str, str]


def _pairs(raw: set[bytes] | list[bytes]) -> list[CampaignPeriod]:
    out = []
    for member in raw:
        cid, _, period = member.decode().partition("|")
        out.append((cid, period))
    return sorted(out)


async def creator_periods(store: LedgerStore, affiliate: str) -> list[CampaignPeriod]:
    """The creator's campaign-periods, sorted (empty: no ledger for the creator)."""
    low, high = creator_index_range(affiliate)
    async with store.redis.pipeline(transaction=False) as pipe:
        pipe.zrangebylex(store.keys.creator_index(affiliate), low, high)
        # A ledger written before the creator index kept a set per creator.
        pipe.smembers(store.keys.creator(affiliate, "cps"))
        indexed, legacy = await pipe.execute()
    pairs = {creator_index_pair(member) for member in indexed}
    return sorted(pairs | set(_pairs(legacy)))


async def all_periods(store: LedgerStore) -> list[CampaignPeriod]:
    raw: set[bytes] = await store.redis.smembers(store.keys.ledger("cps"))
    return _pairs(raw)


async def campaign_periods(store: LedgerStore, campaign: str) -> list[str]:
    raw: set[bytes] = await store.redis.smembers(store.keys.campaign(campaign, "periods"))
    return sorted(p.decode() for p in raw)


async def creator_sums(
    store: LedgerStore, affiliate: str, cps: Sequence[CampaignPeriod], as_of: int
) -> list[PeriodSums]:
    """The creator's running sums per campaign-period that holds a posting of theirs."""
    k = store.keys
    async with store.redis.pipeline(transaction=False) as pipe:
        for cid, period in cps:
            pipe.hmget(
                k.period(cid, period, "sums"), [f"total|{affiliate}", f"reversed|{affiliate}"]
            )
            pipe.zrange(k.period(cid, period, f"journal:{affiliate}"), 0, 0)
        answers = await pipe.execute()
    found: list[tuple[CampaignPeriod, str]] = []
    for n, cp in enumerate(cps):
        first = answers[2 * n + 1]
        if first:  # the currency is the period's, on every posting
            found.append((cp, orjson.loads(first[0])["currency"]))
    # The sums and the pending part of each period at one instant (``period_figures``).
    figures = await period_figures(
        store, [(cid, period, affiliate) for (cid, period), _ in found], as_of
    )
    out = {
        cp: PeriodSums(currency, f.total, f.reversed, f.pending)
        for (cp, currency), f in zip(found, figures, strict=True)
        if f.compacted_approved_by is None
    }
    # A compacted period has no journal: its currency and pending part from the snapshot
    # (so too one compacted after its journal was read: its schedule is gone).
    bare = [(n, cp) for n, cp in enumerate(cps) if cp not in out]
    compacted = await snapshots.compacted_sums(store, affiliate, [cp for _, cp in bare], as_of)
    for n, cp in bare:
        if cp in compacted:
            total, reversed_ = answers[2 * n]
            currency, waiting = compacted[cp]
            out[cp] = PeriodSums(currency, int(total or 0), int(reversed_ or 0), waiting)
    return [out[cp] for cp in cps if cp in out]


@dataclass(frozen=True)
class Position:
    """Where a page of the creator's journal ends: after ``seq`` in ``(campaign, period)``."""

    campaign_id: str
    period: str
    seq: int


async def postings_page(
    store: LedgerStore,
    affiliate: str,
    cps: Sequence[CampaignPeriod],
    after: Position | None,
    limit: int,
) -> tuple[list[Posting], Position | None]:
    """Up to ``limit`` postings of the creator in (campaign, period, seq) order after
    ``after``; and where the next page starts (None when nothing follows)."""
    out: list[Posting] = []
    for cid, period in cps:
        seq = 0
        if after is not None:
            if (cid, period) < (after.campaign_id, after.period):
                continue
            if (cid, period) == (after.campaign_id, after.period):
                seq = after.seq
        want = limit + 1 - len(out)  # one more than the page, to know whether any follows
        out += await snapshots.postings_after(store, cid, period, affiliate, seq, want)
        if len(out) > limit:
            last = out[limit - 1]
            return out[:limit], Position(last.campaign_id, last.period, last.seq)
    return out, None


async def period_postings(
    store: LedgerStore, affiliate: str, cps: Sequence[CampaignPeriod]
) -> list[Posting]:
    """Every posting of the creator in ``cps``, in (campaign, period, seq) order (of a
    compacted period, from its snapshot)."""
    return await snapshots.postings_in(store, affiliate, cps)


async def period_counters(
    store: LedgerStore, campaign: str, period: str
) -> tuple[dict[str, str], dict[str, str]]:
    """A campaign-period's KPI counters and click tallies."""
    k = store.keys
    async with store.redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(k.period(campaign, period, "kpis"))
        pipe.hgetall(k.period(campaign, period, "clicks"))
        kpis, clicks = await pipe.execute()
    return _text(kpis), _text(clicks)


async def period_creator_sums(
    store: LedgerStore, cps: Sequence[CampaignPeriod]
) -> list[dict[str, int]]:
    """Per campaign-period: creator -> the sum of their postings (the ``sums`` hash)."""
    async with store.redis.pipeline(transaction=False) as pipe:
        for cid, period in cps:
            pipe.hgetall(store.keys.period(cid, period, "sums"))
        answers: list[dict[bytes, bytes]] = await pipe.execute()
    out = []
    for raw in answers:
        totals = {}
        for name, value in raw.items():
            kind, _, affiliate = name.decode().partition("|")
            if kind == "total":
                totals[affiliate] = int(value)
        out.append(totals)
    return out


async def overrides_on(
    store: LedgerStore,
    affiliate: str,
    cps: Sequence[CampaignPeriod],
    versions: Callable[[str], Sequence[TermsVersion]],
) -> list[dict[str, Any]]:
    """What agencies earn on the creator's lines in ``cps``: the period's
    ``override_on|<creator>|<agency>`` counters (afflux.shared.core.journal.period), for
    every agency the campaign's terms ever named."""
    asked: list[tuple[str, list[str]]] = []
    async with store.redis.pipeline(transaction=False) as pipe:
        for cid, period in cps:
            agencies = sorted(
                {
                    m.agency_id
                    for v in versions(cid)
                    if v.terms.overrides is not None
                    for m in v.terms.overrides.agencies.values()
                }
            )
            if agencies:
                asked.append((cid, agencies))
                fields = [f"override_on|{affiliate}|{a}" for a in agencies]
                pipe.hmget(store.keys.period(cid, period, "kpis"), fields)
        answers = await pipe.execute() if asked else []
    totals: dict[tuple[str, str], int] = {}
    for (cid, agencies), values in zip(asked, answers, strict=True):
        for agency, value in zip(agencies, values, strict=True):
            if value is not None:
                totals[(cid, agency)] = totals.get((cid, agency), 0) + int(value)
    return [
        {"campaign_id": cid, "agency_id": agency, "amount_minor": amount}
        for (cid, agency), amount in sorted(totals.items())
        if amount
    ]


def _text(raw: dict[bytes, bytes]) -> dict[str, str]:
    return {name.decode(): value.decode() for name, value in raw.items()}
