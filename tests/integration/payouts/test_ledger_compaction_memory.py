"""What compaction saves, on the ledger benchmark's workload (``afflux bench ledger``:
events of four campaigns, a creator per 20 events, 28 days, seed 2026) in a plain Redis:
every creator paid what it was approved, every period compacted two years on; bytes per
posting and per active creator (``MEMORY USAGE`` of every ledger key) before and after,
printed (``pytest -s``), and every creator's postings read the same from the snapshots.

The suite runs 4,000 events; docs/payouts.md's figures are the benchmark's 40,000
(``AFFLUX_COMPACTION_EVENTS=40000``), which take minutes on two cores.
"""

from __future__ import annotations

import gc
import os
from typing import Any

import pytest
from redis.asyncio import Redis

from afflux.bench.ledger import START_MS, apply_polls, generate, new_consumer, to_polls, to_records
from afflux.bench.ledger_checks import memory_by_kind
from afflux.payouts import payout_records, reads, run
from afflux.payouts.compaction import compact_pass
from afflux.payouts.keys import Keys
from afflux.payouts.store import LedgerStore
from afflux.shared.core.clock import MS_PER_DAY

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EVENTS = int(os.environ.get("AFFLUX_COMPACTION_EVENTS", "4000"))
CREATORS, DAYS, SEED = EVENTS // 20, 28, 2026
# Past every period's close: its end + window + lock + the default grace (400 days).
LATER = START_MS + 2 * 365 * MS_PER_DAY


async def _journals(redis: Redis[bytes]) -> tuple[int, int]:
    """Postings and creators with postings, counted from every ``journal:<a>`` key."""
    postings = 0
    creators: set[str] = set()
    async for key in redis.scan_iter(match="afx:pay:*:journal:*", count=1000):
        postings += await redis.zcard(key)
        creators.add(key.decode().rpartition(":journal:")[2])
    return postings, len(creators)


async def _bytes_by_name(redis: Redis[bytes]) -> dict[str, int]:
    """``MEMORY USAGE`` per key name (``snapshot``, ``kpis``, ``journal``, ...)."""
    out: dict[str, int] = {}
    async for key in redis.scan_iter(match="afx:pay:*", count=1000):
        name = key.decode().rpartition("}:")[2].partition(":")[0]
        out[name] = out.get(name, 0) + int(await redis.memory_usage(key, samples=0) or 0)
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


async def test_compaction_memory_on_the_bench_workload(plain_redis: Any) -> None:
    _, port = plain_redis
    redis: Redis[bytes] = Redis.from_url(f"redis://127.0.0.1:{port}/0")
    await redis.flushdb()
    threshold = gc.get_threshold()
    consumer = new_consumer(LedgerStore(redis))
    try:
        events = generate(EVENTS, CREATORS, DAYS, SEED)
        await apply_polls(consumer, to_polls(to_records(events, 2), 2_000))
    finally:
        gc.set_threshold(*threshold)  # the consumer's collector policy, not the test run's
        gc.unfreeze()
        await consumer.producer.stop()
    store = consumer.store
    try:
        postings, active = await _journals(redis)
        before = sum((await memory_by_kind(redis, Keys())).values())
        names_before = await _bytes_by_name(redis)
        cps = await reads.all_periods(store)
        by_creator = sorted({a for a, _ in (await run.approved_by_creator(store, cps, 0))[1]})
        statements = {
            a: await reads.period_postings(store, a, await reads.creator_periods(store, a))
            for a in by_creator
        }
        approved, _ = await run.approved_by_creator(store, cps, LATER)
        for (affiliate, cid), amount in sorted(approved.items()):
            record = {
                "payout_id": f"payout-{affiliate}-{cid}",
                "affiliate_id": affiliate,
                "campaign_id": cid,
                "currency": "EUR",
                "period": "2027-02",
                "amount_minor": amount,
                "as_of": LATER,
                "line_ids": [],
            }
            assert await payout_records.record(store, record, 0) == payout_records.RECORDED

        outcomes = await compact_pass(store, consumer.directory.versions, LATER)
        after = sum((await memory_by_kind(redis, Keys())).values())
        names_after = await _bytes_by_name(redis)

        assert all(o.compacted for o in outcomes), [o for o in outcomes if not o.compacted]
        assert sum(o.postings for o in outcomes) == postings
        for a, expected in statements.items():
            cps_of = await reads.creator_periods(store, a)
            assert await reads.period_postings(store, a, cps_of) == expected, a
        print(
            f"\n{EVENTS} events, {postings} postings, {active} creators with postings, "
            f"{len(outcomes)} campaign-periods compacted\n"
            f"ledger bytes: {before:,} -> {after:,}\n"
            f"bytes per posting: {before / postings:,.0f} -> {after / postings:,.0f}\n"
            f"bytes per active creator: {before / active:,.0f} -> {after / active:,.0f}\n"
            f"the compacted periods' own keys: {sum(o.bytes_before for o in outcomes):,} -> "
            f"{sum(o.bytes_after for o in outcomes):,}\n"
            f"by key, before: {names_before}\nby key, after: {names_after}"
        )
        assert after < before / 2
    finally:
        await redis.aclose()  # type: ignore[attr-defined]
