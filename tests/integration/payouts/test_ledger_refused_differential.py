"""A poll whose campaign-periods are partly refused (a creator past the largest amount,
a stored record that cannot be read) is applied around the refusal: the periods and
creators it did not refuse in one batch, the suspects one by one. Against a real Redis
and broker, over random polls, that ends exactly where applying every item of each
poll one by one (the ledger's path before) ends: the same postings per creator, the
same running sums, the same offsets and the same items dead-lettered."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import Counter
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from ledger_app import directory_of, first_version
from ledger_stack import conversion, renewal_of
from redis.asyncio import Redis

from afflux.cli.scenario_checks import read_topic
from afflux.payouts.consumer import LedgerConsumer
from afflux.payouts.keys import Keys
from afflux.payouts.metrics import PayoutsMetrics
from afflux.payouts.store import Batch, LedgerStore
from afflux.shared.events import DeadLetter
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.kafka import new_producer
from afflux.shared.wire import encode_packed

pytestmark = pytest.mark.integration

DAY = 86_400_000
OCT_1 = 1_790_812_800_000  # 2026-10-01T00:00:00Z
NOV_1 = 1_793_491_200_000  # 2026-11-01T00:00:00Z
SALE = 4 * 10**14  # a creator's third sale in a period takes it past 10^15
CREATORS = ("anna", "ben", "cy", "dora", "ed")
Poll = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


def _directory(campaigns: list[str]) -> CampaignDirectory:
    return directory_of(
        first_version(
            {
                "campaign_id": campaign,
                "merchant_id": "m",
                "currency": "EUR",
                "plan": {
                    "sale": {"rate": {"fixed_minor": SALE}},
                    "recurring": {"rate": {"fixed_minor": SALE // 2}, "max_renewals": 12},
                },
            }
        )
        for campaign in campaigns
    )


def _polls(seed: int, campaigns: list[str], tag: str, renewals: bool) -> list[Poll]:
    """90 sales of five creators in the campaigns' October and November (and, with
    ``renewals``, a first renewal of a third of October's, in November, among them),
    packed one to three a record, in polls of one to twelve records over two
    partitions."""
    rng = random.Random(seed)
    sales = [
        conversion(
            rng.choice(campaigns),
            f"order-{n}",
            rng.choice(CREATORS),
            rng.choice((OCT_1, NOV_1)) + rng.randrange(0, 20 * DAY),
        )
        for n in range(90)
    ]
    if renewals:
        for first in [s for s in sales if s.occurred_at < NOV_1][::3]:
            at = rng.randrange(sales.index(first) + 1, len(sales) + 1)
            renewed = first.occurred_at + 30 * DAY
            sales.insert(at, renewal_of(first, f"order-{1000 + len(sales)}", renewed))
    records: list[ConsumerRecord[bytes, bytes]] = []
    offsets = Counter[int]()
    while sales:
        size = rng.randint(1, 3)
        packed, sales = sales[:size], sales[size:]
        partition = rng.randrange(2)
        value, key = encode_packed(packed), f"{tag}-{packed[0].order_id}"
        records.append(
            ConsumerRecord(
                "conversions",
                partition,
                offsets[partition],
                0,
                0,
                key.encode(),
                value,
                None,
                len(key),
                len(value),
                [],
            )
        )
        offsets[partition] += 1
    polls: list[Poll] = []
    while records:
        size = rng.randint(1, 12)
        chunk, records = records[:size], records[size:]
        poll: Poll = {}
        for record in chunk:
            poll.setdefault(TopicPartition("conversions", record.partition), []).append(record)
        polls.append(poll)
    return polls


async def _one_by_one(consumer: LedgerConsumer, poll: Poll) -> None:
    """Every item of the poll applied alone, then the poll's offsets: the path every
    failed poll took before."""
    batch, items = Batch(), []
    for records in poll.values():
        for record in records:
            items += await consumer.placed(record, batch)
    for tp, records in poll.items():
        batch.offsets[f"{tp.topic}|{tp.partition}"] = records[-1].offset + 1
    await consumer._apply_one_by_one(items, batch)


async def _ledger(
    redis: Redis[bytes], store: LedgerStore, prefix: str, campaigns: list[str]
) -> dict[str, Any]:
    journals: dict[str, list[tuple[str, int]]] = {}
    for campaign in campaigns:
        for period in ("2026-10", "2026-11"):
            for creator in CREATORS:
                key = f"{prefix}{{p:{campaign}|{period}}}:journal:{creator}"
                postings = [json.loads(p) for p in await redis.zrange(key, 0, -1)]
                journals[f"{campaign} {period} {creator}"] = sorted(
                    (p["order_id"], p["amount_minor"]) for p in postings
                )
    sums = {c: (await store.creator_sums.balance(c, OCT_1)).total for c in CREATORS}
    return {"journals": journals, "sums": sums, "offsets": await store.offsets()}


class Killed(BaseException):
    """The process dying where it stands: no handler of the consumer's catches it."""


class KillingStore(LedgerStore):
    """The real store, dying at chosen calls of ``apply`` (counted across restarts in
    ``calls``): before it writes, or after it wrote and before it answers."""

    def __init__(self, redis: Redis[bytes], keys: Keys, deaths: dict[int, bool], calls: list[int]):
        super().__init__(redis, keys)
        self.deaths, self.calls = deaths, calls

    async def apply(self, *args: Any, **kwargs: Any) -> Any:
        self.calls[0] += 1
        after = self.deaths.get(self.calls[0])
        if after is False:
            raise Killed
        applied = await super().apply(*args, **kwargs)
        if after:
            raise Killed
        return applied


def _unapplied(poll: Poll, stored: dict[str, int]) -> Poll:
    """The records of ``poll`` at or after the offsets the ledger stored: what a restarted
    consumer reads again."""
    left = {
        tp: [r for r in records if r.offset >= stored.get(f"{tp.topic}|{tp.partition}", 0)]
        for tp, records in poll.items()
    }
    return {tp: records for tp, records in left.items() if records}


@pytest.mark.parametrize(
    ("seed", "renewals", "kills"),
    [
        *((n, False, False) for n in range(6)),
        *((n, True, False) for n in range(3)),
        *((n, n % 2 == 1, True) for n in range(4)),
    ],
)
def test_a_poll_applied_around_its_refusals_ends_as_one_applied_item_by_item(
    infra: Any, seed: int, renewals: bool, kills: bool
) -> None:
    """With ``kills``, the consumer applying around refusals also dies at random
    applies (before or after the write) and restarts from the offsets in Redis with
    nothing cached; it still ends where the item-by-item path ends."""
    run = uuid.uuid4().hex[:8]
    campaigns = [f"shop-{run}", f"mall-{run}"]
    rng = random.Random(seed)
    deaths = {n: rng.random() < 0.5 for n in range(3, 400, 1) if rng.random() < 0.12}
    died = [0]

    async def scenario(tag: str, around: bool) -> tuple[dict[str, Any], int]:
        prefix = f"afx:test:{run}:{tag}:"
        redis: Redis[bytes] = Redis.from_url(infra.redis_url, db=3)
        producer = new_producer(infra.kafka_bootstrap)
        await producer.start()
        calls = [0]

        def start() -> tuple[LedgerStore, LedgerConsumer]:
            store = KillingStore(redis, Keys(prefix), deaths if kills and around else {}, calls)
            return store, LedgerConsumer(
                bootstrap=infra.kafka_bootstrap,
                group_id=f"g-{run}-{tag}",
                instance_id=None,
                store=store,
                directory=_directory(campaigns),
                producer=producer,
                metrics=PayoutsMetrics(),
            )

        store, consumer = start()
        try:
            # One period whose stored state cannot be read: every item of it is refused.
            await redis.hset(f"{prefix}{{p:{campaigns[1]}|2026-10}}:lines", "bad", "{not json")
            for poll in _polls(seed, campaigns, f"{run}-{tag}", renewals):
                if not around:
                    await _one_by_one(consumer, poll)
                    continue
                while left := _unapplied(poll, await store.offsets()):
                    try:
                        await consumer._apply(left)
                    except Killed:
                        died[0] += 1
                        store, consumer = start()  # a new process: nothing cached
            ledger = await _ledger(redis, store, prefix, campaigns)
        finally:
            await producer.stop()
            await redis.aclose()  # type: ignore[attr-defined]
        return ledger, sum(ledger["sums"][c].get("EUR", 0) for c in CREATORS)

    around, total = asyncio.run(scenario("a", around=True))
    item_by_item, _ = asyncio.run(scenario("b", around=False))
    letters = Counter[tuple[str, str, str]]()
    for letter in asyncio.run(read_topic(infra.kafka_bootstrap, "afflux.dlq", idle_s=3.0)):
        if isinstance(letter, DeadLetter) and letter.key.startswith(f"{run}-"):
            tag, _, order = letter.key.removeprefix(f"{run}-").partition("-")
            item = letter.reason.partition(":")[0]
            letters[(tag, f"{order} {item}", letter.error_class)] += 1

    assert around == item_by_item
    assert total > 0
    assert (died[0] > 0) is kills
    paid_renewals = {
        order
        for postings in around["journals"].values()
        for order, _ in postings
        if int(order.removeprefix("order-")) >= 1000
    }
    assert bool(paid_renewals) is renewals
    refused = {(key, cls) for (tag, key, cls) in letters if tag == "a"}
    assert refused == {(key, cls) for (tag, key, cls) in letters if tag == "b"}
    assert {cls for _, cls in refused} == {"CreatorSumOutOfRange", "JSONDecodeError"}
