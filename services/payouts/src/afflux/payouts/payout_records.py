"""Payout records in the creator's slot: ``{a:<id>}:payouts`` ("campaign|period" ->
record JSON) and ``{a:<id>}:paid`` (currency -> paid in all).

A payout is recorded once per creator, campaign and payout period (``HSETNX``), and
the same script adds it to the creator's paid total, so the record and the total
never disagree: both keys share the creator's hash slot, and one script is atomic
on a Redis Cluster as on a plain Redis.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from afflux.payouts.store import LedgerStore

_RECORD_ONCE = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('HINCRBY', KEYS[2], ARGV[3], ARGV[4])
  return 1
end
return 0
"""


def slot(campaign: str, period: str) -> str:
    return f"{campaign}|{period}"


async def record(store: LedgerStore, payout: dict[str, Any]) -> bool:
    """Record ``payout`` unless its creator, campaign and period has one; False then."""
    a = payout["affiliate_id"]
    done = await store.redis.eval(  # type: ignore[no-untyped-call]
        _RECORD_ONCE,
        2,
        store.keys.creator(a, "payouts"),
        store.keys.creator(a, "paid"),
        slot(payout["campaign_id"], payout["period"]),
        json.dumps(payout),
        payout["currency"],
        int(payout["amount_minor"]),
    )
    return bool(done)


async def mark_emitted(store: LedgerStore, payout: dict[str, Any]) -> None:
    """The record once its ``PayoutIssued`` is on the topic (the paid total stays)."""
    await store.redis.hset(
        store.keys.creator(payout["affiliate_id"], "payouts"),
        slot(payout["campaign_id"], payout["period"]),
        json.dumps({**payout, "emitted": True}),
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
