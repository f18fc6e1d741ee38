"""Payout records in the creator's slot: ``{a:<id>}:payouts`` ("campaign|period" ->
record JSON) and ``{a:<id>}:paid`` (currency -> paid in all).

A payout is recorded once per creator, campaign and payout period (``HSETNX``), and
the same script adds it to the creator's paid total, so the record and the total
never disagree: both keys share the creator's hash slot, and one script is atomic
on a Redis Cluster as on a plain Redis.

The script also checks that what the creator was paid in the campaign is still what
the run read when it computed the amount due: two runs at once under different
payout period names would otherwise each pay the same approved balance (each its own
``HSETNX`` field). A run that finds the paid total moved reads again and decides
again.

Every payout is also on the ``payouts`` topic (``PayoutIssued``, kept forever), which
the ledger consumer reads like its other topics: a record Redis lost (restarted empty, a
lost volume) is written back from it (``restore``), with its paid total, so the next
run pays only what was not paid. A record that was never sent (the broker failed after
it was written, until a later run sends it) cannot be read back.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from afflux.shared.events import PayoutIssued

if TYPE_CHECKING:  # the store writes records back through ``restore``
    from afflux.payouts.store import LedgerStore

# 1 recorded; 0 this creator, campaign and period has a record; -1 the campaign's paid
# total is no longer ARGV[6] (another run paid since the caller read it).
_RECORD_ONCE = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
local paid = 0
local all = redis.call('HVALS', KEYS[1])
for i = 1, #all do
  local r = cjson.decode(all[i])
  if r['campaign_id'] == ARGV[5] then paid = paid + tonumber(r['amount_minor']) end
end
if paid ~= tonumber(ARGV[6]) then return -1 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[2], ARGV[3], ARGV[4])
return 1
"""
RECORDED, EXISTS, STALE = 1, 0, -1

# A record read back from the topic: written, with its paid total, only where the creator
# has none for that campaign and period (1), else nothing (0).
_RESTORE = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[2], ARGV[3], ARGV[4])
return 1
"""

# The record once sent, in place of the one ``_RECORD_ONCE`` wrote; where that one is gone
# (Redis lost it meanwhile) its paid total is added again with it.
_MARK_EMITTED = """
if redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('HINCRBY', KEYS[2], ARGV[3], ARGV[4])
end
return 1
"""


def slot(campaign: str, period: str) -> str:
    return f"{campaign}|{period}"


async def record(store: LedgerStore, payout: dict[str, Any], paid_before: int) -> int:
    """Record ``payout`` if its creator, campaign and period has none and the creator's
    paid total in the campaign is still ``paid_before``: ``RECORDED``, else ``EXISTS``
    or ``STALE``."""
    done = await store.redis.eval(  # type: ignore[no-untyped-call]
        _RECORD_ONCE, *_slot_args(store, payout), payout["campaign_id"], paid_before
    )
    return int(done)


async def mark_emitted(store: LedgerStore, payout: dict[str, Any]) -> None:
    """The record once its ``PayoutIssued`` is on the topic. Its paid total stays, or,
    where Redis lost the record between the run's write and this one, is written back
    with it: the payout was made and announced (as ``restore`` would from the topic,
    whose ``HSETNX`` then finds this record)."""
    await store.redis.eval(  # type: ignore[no-untyped-call]
        _MARK_EMITTED, *_slot_args(store, {**payout, "emitted": True})
    )


async def records_of(store: LedgerStore, affiliate: str) -> dict[str, dict[str, Any]]:
    """The creator's payout records by "campaign|period"."""
    raw: dict[bytes, bytes] = await store.redis.hgetall(store.keys.creator(affiliate, "payouts"))
    return {name.decode(): json.loads(value) for name, value in raw.items()}


async def records_named(
    store: LedgerStore, affiliate: str, campaigns: list[str], period: str
) -> list[dict[str, Any]]:
    """The creator's payout records of ``period`` in ``campaigns`` (one ``HMGET``)."""
    if not campaigns:
        return []
    raw: list[bytes | None] = await store.redis.hmget(
        store.keys.creator(affiliate, "payouts"), [slot(c, period) for c in campaigns]
    )
    return [json.loads(value) for value in raw if value is not None]


async def paid_of(store: LedgerStore, affiliate: str) -> dict[str, int]:
    """Currency -> what the creator was paid in all."""
    raw: dict[bytes, bytes] = await store.redis.hgetall(store.keys.creator(affiliate, "paid"))
    return {currency.decode(): int(value) for currency, value in raw.items()}


def paid_by_campaign(records: dict[str, dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for payout in records.values():
        out[payout["campaign_id"]] += int(payout["amount_minor"])
    return dict(out)


def _slot_args(store: LedgerStore, payout: dict[str, Any]) -> tuple[int | str, ...]:
    """The keys and the first arguments both scripts take: the creator's records and paid
    totals, then the record's field, the record, its currency and amount."""
    a = payout["affiliate_id"]
    return (
        2,
        store.keys.creator(a, "payouts"),
        store.keys.creator(a, "paid"),
        slot(payout["campaign_id"], payout["period"]),
        json.dumps(payout),
        payout["currency"],
        int(payout["amount_minor"]),
    )


def event_of(record: dict[str, Any]) -> PayoutIssued:
    """The ``PayoutIssued`` announcing the payout ``record`` holds (``from_event``'s inverse)."""
    return PayoutIssued(
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


def from_event(event: PayoutIssued) -> dict[str, Any]:
    """The record ``run`` wrote for the payout ``event`` announces, sent."""
    return {
        "payout_id": event.payout_id,
        "affiliate_id": event.affiliate_id,
        "campaign_id": event.campaign_id,
        "currency": event.currency,
        "period": event.period,
        "amount_minor": event.amount_minor,
        "as_of": event.occurred_at,
        "line_ids": list(event.line_ids),
        "emitted": True,
    }


async def restore(store: LedgerStore, payouts: list[dict[str, Any]]) -> int:
    """Write back the records of ``payouts`` their creators no longer have; how many."""
    if not payouts:
        return 0
    async with store.redis.pipeline(transaction=False) as pipe:
        for payout in payouts:
            pipe.eval(_RESTORE, *_slot_args(store, payout))
        return sum(int(n) for n in await pipe.execute())
