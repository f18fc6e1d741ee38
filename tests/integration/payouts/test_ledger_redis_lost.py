"""Redis lost its data under a running payouts service (restarted empty, a lost volume):
the ledger replays its topics from the start, payout runs wait until it has, and the
payout records come back from the ``payouts`` topic, so nothing paid is paid again.

Before, the consumer replayed with nothing to stop a payout run meanwhile (a half-replayed
ledger holds sales without the refunds that reduced them), and the payout records, which
no topic was read back for, were gone for good: the next run paid every creator again.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from ledger_stack import LedgerStack, applied_orders, conversion, running_payouts, until
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from afflux.cli.scenario_checks import read_topic
from afflux.payouts.compaction import ledger_behind
from afflux.payouts.consumer import TOPICS, LedgerConsumer
from afflux.payouts.keys import Keys
from afflux.payouts.metrics import PayoutsMetrics
from afflux.payouts.store import LedgerStore
from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.events import PayoutIssued
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.kafka import new_producer
from afflux.shared.topics import CONVERSIONS
from afflux.shared.wire import encode

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CAMPAIGN = "lost-shop"
ADMIN_TOKEN = "ledger-redis-lost-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CREATORS = [f"creator-{n}" for n in range(4)]
ORDERS = [(f"o-{n}", CREATORS[n % len(CREATORS)]) for n in range(40)]  # 10 sales each


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LedgerStack]:
    work: Path = tmp_path_factory.mktemp("ledger-redis-lost")
    with running_payouts(work, CAMPAIGN, {"AFFLUX_ADMIN_TOKEN": ADMIN_TOKEN}) as stack:
        yield stack


async def _produce(bootstrap: str) -> None:
    long_approved = int(time.time() * 1000) - 90 * MS_PER_DAY  # past the 30-day lock
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        for order, creator in ORDERS:
            event = conversion(CAMPAIGN, order, creator, at=long_approved)
            await producer.send_and_wait(CONVERSIONS.name, encode(event), key=order.encode())
    finally:
        await producer.stop()


def _run(ledger: LedgerStack) -> httpx.Response:
    return httpx.post(
        f"{ledger.url}/v1/payouts/run", json={"campaign_id": CAMPAIGN}, headers=ADMIN, timeout=30
    )


def _payouts_on_topic(ledger: LedgerStack) -> list[PayoutIssued]:
    events = asyncio.run(read_topic(ledger.bootstrap, "payouts", idle_s=1.0))
    return [e for e in events if isinstance(e, PayoutIssued)]


def _paid(redis: Redis[bytes]) -> dict[str, int]:
    return {
        creator: int(redis.hget(f"afx:pay:{{a:{creator}}}:paid", "EUR") or 0)
        for creator in CREATORS
    }


def test_payouts_are_not_paid_again_after_redis_lost_its_data(ledger: LedgerStack) -> None:
    redis: Redis[bytes] = Redis.from_url(ledger.redis_url)
    asyncio.run(_produce(ledger.bootstrap))
    until(lambda: len(applied_orders(ledger.redis_url, CAMPAIGN)) == len(ORDERS), 60, "applied")

    first = _run(ledger)

    assert first.status_code == 200, first.text
    paid = {r["affiliate_id"]: r for r in first.json()["results"] if r["status"] == "paid"}
    assert sorted(paid) == CREATORS
    assert {r["amount_minor"] for r in paid.values()} == {10_000}  # 10 x 10 % of 100.00
    until(lambda: len(_payouts_on_topic(ledger)) == len(CREATORS), 30, "payouts announced")
    before = _paid(redis)
    assert before == dict.fromkeys(CREATORS, 10_000)

    redis.flushall()  # Redis restarted empty: ledger, positions and payout records gone

    # The replay may be done before a run gets in; if not, the run is refused, never paid.
    during = _run(ledger)
    assert during.status_code in (200, 503), during.text
    if during.status_code == 200:
        assert all(r["status"] != "paid" for r in during.json()["results"]), during.text
    until(lambda: len(applied_orders(ledger.redis_url, CAMPAIGN)) == len(ORDERS), 90, "replayed")
    until(lambda: _paid(redis) == before, 60, "payout records written back from the topic")
    until(ledger.healthy, 60, "ledger ready")
    until(lambda: _run(ledger).status_code == 200, 60, "payout runs taken again")

    again = _run(ledger)

    assert again.status_code == 200, again.text
    assert [r["status"] for r in again.json()["results"] if r["status"] == "paid"] == []
    assert _paid(redis) == before
    assert len(_payouts_on_topic(ledger)) == len(CREATORS)  # nobody paid twice
    redis.close()


def test_a_new_ledger_generation_holds_payout_runs_until_the_replay_reaches_the_ends(
    ledger: LedgerStack,
) -> None:
    """From the step that starts a generation (no window in which another consumer
    replays while runs are open) until the replay reaches the topics' ends then."""

    async def scenario() -> list[str]:
        client: AsyncRedis[bytes] = AsyncRedis.from_url(ledger.redis_url)
        store = LedgerStore(client, Keys(f"afx:test:{uuid.uuid4().hex[:8]}:"))
        try:
            await store.join_generation()
            said = [str(store.started_generation), await ledger_behind(store)]
            said.append(str(await store.hold_until_replayed({"conversions|0": 5})))
            said.append(str(await store.hold_until_replayed({"conversions|0": 9})))
            said.append(await ledger_behind(store))
            await client.hset(store.keys.ledger("positions"), "o:conversions|0", 5)
            said.append(await ledger_behind(store))
            other = LedgerStore(client, store.keys)  # a second consumer joins it
            await other.join_generation()
            said.append(str(other.started_generation))
            return said
        finally:
            await client.aclose()  # type: ignore[attr-defined]

    started, pending, marked, kept, waiting, done, second = asyncio.run(scenario())

    assert started == "True"
    assert pending == "the ledger's replay has not read the topics' ends yet"
    assert (marked, kept) == ("True", "False")
    assert waiting == (
        "the rebuilt ledger has not replayed its topics yet (conversions|0 by 5 records)"
    )
    assert done == ""
    assert second == "False"


def test_a_rebuilds_mark_is_kept_by_the_generation_after_it(ledger: LedgerStack) -> None:
    async def scenario() -> str:
        client: AsyncRedis[bytes] = AsyncRedis.from_url(ledger.redis_url)
        store = LedgerStore(client, Keys(f"afx:test:{uuid.uuid4().hex[:8]}:"))
        try:
            await client.hset(store.keys.ledger("replay-until"), "conversions|1", 7)
            await store.join_generation()
            return await ledger_behind(store)
        finally:
            await client.aclose()  # type: ignore[attr-defined]

    assert asyncio.run(scenario()) == (
        "the rebuilt ledger has not replayed its topics yet (conversions|1 by 7 records)"
    )


def test_a_consumer_that_finds_the_mark_pending_reads_the_ends_itself(
    ledger: LedgerStack,
) -> None:
    """The consumer that started the generation died before it read the topics' ends:
    the next one to join reads them, or payout runs would wait for good."""

    async def scenario() -> tuple[bool, bool, dict[bytes, bytes]]:
        client: AsyncRedis[bytes] = AsyncRedis.from_url(ledger.redis_url)
        keys = Keys(f"afx:test:{uuid.uuid4().hex[:8]}:")
        producer = new_producer(ledger.bootstrap)
        await producer.start()
        try:
            await LedgerStore(client, keys).join_generation()  # then it died
            joining = LedgerConsumer(
                bootstrap=ledger.bootstrap,
                group_id=f"g-{uuid.uuid4().hex[:8]}",
                instance_id=None,
                store=LedgerStore(client, keys),
                directory=CampaignDirectory(),
                producer=producer,
                metrics=PayoutsMetrics(),
            )
            await joining.store.join_generation()
            await joining._hold_payout_runs_while_replaying()
            assert joining._replay_ends is not None
            await asyncio.wait_for(joining._replay_ends, 30)
            mark = await client.hgetall(keys.ledger("replay-until"))
            return joining.store.started_generation, await joining.store.replay_ends_pending(), mark
        finally:
            await producer.stop()
            await client.aclose()  # type: ignore[attr-defined]

    started, pending, mark = asyncio.run(scenario())

    assert (started, pending) == (False, False)
    assert b"pending" not in mark
    assert all(name.decode().split("|")[0] in TOPICS for name in mark)  # the ends it read
