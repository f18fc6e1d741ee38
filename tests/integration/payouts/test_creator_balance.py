"""A creator's running sums (what a balance reads) survive a crash between a period's
write and their sync: the postings wait in the period's outbox, and the next consumer
to join the ledger brings the sums up to them, once."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterable

import orjson
import pytest
from redis.asyncio import Redis
from tests.integration.payouts.test_journal_store import (
    _euro,
    _versions,
    postings_of,
    running_sums,
    sums_of,
)

from afflux.oracle.ledger_scenarios import CAMPAIGN, PERIOD, random_facts
from afflux.payouts.creator_balance import CreatorSums
from afflux.payouts.keys import Keys
from afflux.payouts.store import Batch, ClickItem, LedgerStore
from afflux.shared.io.redis_client import connect_ready

pytestmark = pytest.mark.integration


class CrashBeforeSync(Exception):
    """Where a consumer killed right after a period's write would stop."""


class SumsThatCrash(CreatorSums):
    async def sync(self, periods: Iterable[tuple[str, str]]) -> None:
        raise CrashBeforeSync


@pytest.fixture
async def redis(ledger_redis_url: str) -> AsyncIterator[Redis[bytes]]:
    client = await connect_ready(ledger_redis_url)
    try:
        yield client  # type: ignore[misc]  # a RedisCluster speaks the same commands
    finally:
        await client.aclose()  # type: ignore[union-attr]


def _batches(seed: int) -> tuple[list[Batch], set[str]]:
    facts = random_facts(random.Random(seed))
    first, second = Batch(), Batch()
    for n, c in enumerate(facts.conversions):
        (first if n % 2 else second).conversions.append((CAMPAIGN, PERIOD, c))
    for r in facts.refunds:
        second.refunds.append((CAMPAIGN, PERIOD, r))
    for click_id, creator, when in facts.clicks:
        first.clicks.append(ClickItem(CAMPAIGN, PERIOD, click_id, creator, when))
    creators = {c.affiliate_id for c in facts.conversions} | {k[1] for k in facts.clicks}
    return [first, second], creators


@pytest.mark.parametrize("seed", range(3))
async def test_sums_left_behind_by_a_crash_are_synced_once_by_the_next_consumer(
    redis: Redis[bytes], seed: int
) -> None:
    (first, second), creators = _batches(seed)
    crashed = LedgerStore(redis)
    await crashed.join_generation()
    await crashed.apply(first, _versions, _euro)
    crashed.creator_sums = SumsThatCrash(redis, Keys())
    with pytest.raises(CrashBeforeSync):
        await crashed.apply(second, _versions, _euro)
    postings = await postings_of(redis, CAMPAIGN, PERIOD, creators)
    assert await redis.hlen(Keys().period(CAMPAIGN, PERIOD, "outbox")) > 0
    behind = [
        c for c in creators if await running_sums(crashed, c, postings) != sums_of(c, postings)
    ]
    assert behind, "the crash left every creator's sums complete: nothing was tested"

    following = LedgerStore(redis)
    await following.join_generation()  # drains the outbox
    await following.join_generation()  # twice: a drained outbox adds nothing again

    assert await redis.hlen(Keys().period(CAMPAIGN, PERIOD, "outbox")) == 0
    for creator in creators:
        assert await running_sums(following, creator, postings) == sums_of(creator, postings)


@pytest.mark.parametrize("seed", range(3))
async def test_a_replay_that_posts_nothing_new_still_syncs_an_outbox_left_behind(
    redis: Redis[bytes], seed: int
) -> None:
    """Redis back from a kill without its last second (AOF everysec) may hold a period's
    write but not the sync after it: the consumer replays from the stored offsets, every
    fact is already applied, and the sums must come up to the outbox all the same."""
    (first, second), creators = _batches(seed)
    crashed = LedgerStore(redis)
    await crashed.apply(first, _versions, _euro)
    crashed.creator_sums = SumsThatCrash(redis, Keys())
    with pytest.raises(CrashBeforeSync):
        await crashed.apply(second, _versions, _euro)

    replaying = LedgerStore(redis)  # never joins: no drain at start
    applied = await replaying.apply(second, _versions, _euro)

    assert not any(applied.postings.values()), "the replay posted again"
    postings = await postings_of(redis, CAMPAIGN, PERIOD, creators)
    assert await redis.hlen(Keys().period(CAMPAIGN, PERIOD, "outbox")) == 0
    for creator in creators:
        assert await running_sums(replaying, creator, postings) == sums_of(creator, postings)


async def _schedule(redis: Redis[bytes], due: str, amounts: str) -> dict[str, int]:
    """An approval schedule as stored: every member of ``due`` with its amount (none
    stored: nothing netted at that time yet)."""
    members = [m.decode() for m in await redis.zrange(due, 0, -1)]
    values = await redis.hmget(amounts, members) if members else []
    assert await redis.hlen(amounts) == sum(v is not None for v in values), (
        "an amount without its time"
    )
    return {m: int(v or 0) for m, v in zip(members, values, strict=True)}


@pytest.mark.parametrize("seed", range(3))
async def test_approval_schedules_hold_every_time_once_with_its_amount_whichever_store_wrote(
    redis: Redis[bytes], seed: int
) -> None:
    """The period's and the shard's schedules of a creator: every approval time of its
    postings, with their sum, when the facts come in many batches, from two stores that
    each remember the times they wrote, one of them starting over with an empty memory."""
    rng = random.Random(seed)
    facts = random_facts(rng)
    batches = [Batch() for _ in range(6)]
    for c in facts.conversions:
        rng.choice(batches[:4]).conversions.append((CAMPAIGN, PERIOD, c))
    for r in facts.refunds:
        rng.choice(batches[4:]).refunds.append((CAMPAIGN, PERIOD, r))
    for click_id, creator, when in facts.clicks:
        rng.choice(batches).clicks.append(ClickItem(CAMPAIGN, PERIOD, click_id, creator, when))
    creators = {c.affiliate_id for c in facts.conversions} | {k[1] for k in facts.clicks}
    stores = [LedgerStore(redis), LedgerStore(redis)]
    for n, batch in enumerate(batches):
        if n == 3:
            stores[0] = LedgerStore(redis)  # what the first remembered is gone
        await stores[n % 2].apply(batch, _versions, _euro)

    postings = await postings_of(redis, CAMPAIGN, PERIOD, creators)
    assert len({p.approve_at for p in postings}) > 1, "one approval time: nothing was tested"
    keys, sums = Keys(), stores[0].creator_sums
    for creator in creators:
        expected: dict[int, int] = {}
        for p in postings:
            if p.affiliate_id == creator:
                expected[p.approve_at] = expected.get(p.approve_at, 0) + p.amount_minor
        in_period = await _schedule(
            redis,
            keys.period(CAMPAIGN, PERIOD, f"due:{creator}"),
            keys.period(CAMPAIGN, PERIOD, f"dueamt:{creator}"),
        )
        in_shard = await _schedule(
            redis, f"{sums.shard(creator)}due:{creator}", f"{sums.shard(creator)}dueamt:{creator}"
        )
        assert in_period == {str(at): amount for at, amount in expected.items()}
        assert in_shard == {f"EUR|{at}": amount for at, amount in expected.items()}


class SumsWatched(CreatorSums):
    """Reads both creators' totals after each round of sync scripts, where another
    client's balance read could land."""

    seen: list[tuple[int, int]]

    async def _run_sync(self, payloads: dict[str, bytes]) -> None:
        await super()._run_sync(payloads)
        totals = [await self.balance(a, 0) for a in ("ana", "ben")]
        self.seen.append((totals[0].total.get("EUR", 0), totals[1].total.get("EUR", 0)))


async def test_a_reattributed_order_is_never_seen_credited_to_both_creators(
    redis: Redis[bytes],
) -> None:
    keys = Keys()
    outbox = keys.period(CAMPAIGN, PERIOD, "outbox")
    sums = SumsWatched(redis, keys)
    sums.seen = []
    await redis.hset(outbox, "1", orjson.dumps([["ana", "EUR", 1, 5, 1_000, 0]]))
    await sums.sync([(CAMPAIGN, PERIOD)])
    assert sums.seen == [(1_000, 0)]

    # One period write takes the order back from ana and credits it to ben.
    sums.seen = []
    entries = [["ana", "EUR", 2, 5, -1_000, 1_000], ["ben", "EUR", 3, 5, 1_000, 0]]
    await redis.hset(outbox, "2", orjson.dumps(entries))
    await sums.sync([(CAMPAIGN, PERIOD)])

    assert sums.seen == [(0, 0), (0, 1_000)]
