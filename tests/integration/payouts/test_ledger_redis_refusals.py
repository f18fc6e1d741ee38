"""The ledger consumer when Redis answers but refuses its writes, on a Redis of its own:
nothing it was given is dead-lettered or skipped, and once Redis takes writes again the
ledger holds every posting.

- A key of another type at one of a step's keys (written there by something else) failed
  the step half-way: the period's facts were marked applied, their postings were not, and
  the item-by-item retry skipped them as known. 400 of 700 commissions were lost, with no
  dead letter.
- At the memory limit, the Redis ``afflux up`` runs (6.2) reports OOM inside a script as a
  plain error: the consumer took it for a refusal of the items, dead-lettered them, and
  exited on the offsets' script.
- A batch under way while the ledger was cleared (a rebuild, or Redis emptied) stored its
  offsets in the cleared ledger, and the replay started there.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from ledger_stack import campaign_terms, conversion
from redis.asyncio import Redis
from tests.integration.payouts.test_ledger_poison import ledger_consumer

from afflux.cli.embedded import start_redis
from afflux.cli.processes import Child, free_port
from afflux.cli.scenario_checks import read_topic
from afflux.payouts.batch import Batch, LedgerReset
from afflux.payouts.consumer import LedgerConsumer
from afflux.payouts.keys import Keys
from afflux.payouts.store import LedgerStore
from afflux.shared.core.terms import TermsVersion
from afflux.shared.events import CampaignTermsPublished, ConversionAttributed, DeadLetter
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.kafka import new_producer
from afflux.shared.io.redis_client import KeyOfAnotherType, compare_and_set
from afflux.shared.ledger_facts import conversion_fact
from afflux.shared.wire import encode

pytestmark = pytest.mark.integration

NOV_15 = 1_794_700_800_000  # 2026-11-15T00:00:00Z
NOW = NOV_15 + 3_600_000
CREATORS = ("anna", "ben", "cleo")


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A Redis of the module's own: its memory limit is changed here."""
    work = tmp_path_factory.mktemp("ledger-refusals")
    port = free_port()
    server: Child = start_redis(port, work / "data", work)
    try:
        yield port
    finally:
        server.stop()


@pytest.fixture
async def redis(own_redis: int) -> AsyncIterator[Redis[bytes]]:
    client: Redis[bytes] = Redis(port=own_redis)
    try:
        yield client
    finally:
        await client.config_set("maxmemory", 0)
        await client.aclose()  # type: ignore[attr-defined]


def _terms(campaign: str) -> TermsVersion:
    return TermsVersion(version=1, effective_from=0, published_at=0, terms=campaign_terms(campaign))


def _conversion(campaign: str, n: int, creator: str) -> ConversionAttributed:
    return conversion(campaign, f"{campaign}-{n}", creator)


def _record(offset: int, key: str, value: bytes) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        "conversions", 0, offset, NOW, 0, key.encode(), value, None, len(key), len(value), []
    )


@dataclass
class Ledger:
    run: str
    campaign: str
    keys: Keys
    redis: Redis[bytes]
    consumer: LedgerConsumer
    records: list[ConsumerRecord[bytes, bytes]]

    def key(self, name: str) -> str:
        return self.keys.period(self.campaign, "2026-11", name)

    async def apply(self) -> None:
        await self.consumer._apply({TopicPartition("conversions", 0): self.records})

    async def posted(self) -> dict[str, int]:
        """Each creator's commission in the journal."""
        out: dict[str, int] = {}
        for creator in CREATORS:
            journal = self.key(f"journal:{creator}")
            if await self.redis.type(journal) != b"zset":  # none, or the planted string
                continue
            for raw in await self.redis.zrange(journal, 0, -1):
                out[creator] = out.get(creator, 0) + int(json.loads(raw)["amount_minor"])
        return out

    async def stored_offset(self) -> bytes | None:
        value: bytes | None = await self.redis.hget(
            self.keys.ledger("positions"), "o:conversions|0"
        )
        return value

    async def letters(self, infra: Any) -> list[DeadLetter]:
        return [
            e
            for e in await read_topic(infra.kafka_bootstrap, "afflux.dlq", idle_s=1.0)
            if isinstance(e, DeadLetter) and (e.key or "").startswith(self.run)
        ]


@pytest.fixture
async def ledger(redis: Redis[bytes], infra: Any) -> AsyncIterator[Ledger]:
    run = uuid.uuid4().hex[:8]
    campaign = f"shop-{run}"
    directory = CampaignDirectory()
    directory.apply(
        CampaignTermsPublished(
            event_id=f"t-{campaign}",
            occurred_at=0,
            campaign_id=campaign,
            versions=(_terms(campaign),),
        )
    )
    keys = Keys(f"afx:test:{run}:")
    producer = new_producer(infra.kafka_bootstrap)
    await producer.start()
    consumer = ledger_consumer(infra, run, LedgerStore(redis, keys), directory, producer)
    records = [
        _record(n, f"{run}-{n}", encode(_conversion(campaign, n, creator)))
        for n, creator in enumerate(CREATORS)
    ]
    try:
        yield Ledger(run, campaign, keys, redis, consumer, records)
    finally:
        await producer.stop()


EVERY_SALE = dict.fromkeys(CREATORS, 1000)  # 10 % of 100.00 each


async def test_a_key_of_another_type_holds_the_batch_back_and_loses_nothing(
    ledger: Ledger, infra: Any
) -> None:
    await ledger.redis.set(ledger.key("journal:ben"), "written by something else")

    await ledger.apply()

    assert await ledger.redis.smembers(ledger.key("events")) == set()  # nothing marked
    assert await ledger.posted() == {}
    assert await ledger.stored_offset() is None
    await ledger.redis.delete(ledger.key("journal:ben"))  # the operator removes it

    await ledger.apply()

    assert await ledger.posted() == EVERY_SALE
    assert await ledger.stored_offset() == b"3"
    assert await ledger.letters(infra) == []


async def test_a_redis_at_its_memory_limit_holds_the_batch_back_and_loses_nothing(
    ledger: Ledger, infra: Any
) -> None:
    used = int((await ledger.redis.info("memory"))["used_memory"])
    await ledger.redis.config_set("maxmemory", used)

    await ledger.apply()

    assert await ledger.posted() == {}
    assert await ledger.stored_offset() is None
    await ledger.redis.config_set("maxmemory", 0)

    await ledger.apply()

    assert await ledger.posted() == EVERY_SALE
    assert await ledger.stored_offset() == b"3"
    assert await ledger.letters(infra) == []


async def test_a_batch_under_way_when_the_ledger_is_cleared_stores_no_offsets(
    ledger: Ledger,
) -> None:
    store = ledger.consumer.store
    await store.join_generation()
    batch = Batch(offsets={"conversions|0": 3}, last={"conversions|0": "fingerprint"})
    for n, creator in enumerate(CREATORS):
        fact = conversion_fact(_conversion(ledger.campaign, n, creator))
        batch.conversions.append((ledger.campaign, "2026-11", fact))
    # Cleared after the batch checked the generation (FLUSHALL, or a rebuild's reset).
    await ledger.redis.delete(ledger.keys.ledger("generation"))

    with pytest.raises(LedgerReset):
        await store._apply(batch, lambda _: (_terms(ledger.campaign),), lambda _: "EUR")

    assert await ledger.stored_offset() is None  # the replay starts from the beginning


async def test_compare_and_set_checks_every_keys_type_before_its_first_write(
    redis: Redis[bytes],
) -> None:
    run = uuid.uuid4().hex[:8]
    version, first, wrong = (f"{{t{run}}}:{name}" for name in ("ver", "first", "wrong"))
    await redis.set(wrong, "a string")
    writes = [("HSET", first, "f", "1"), ("ZADD", wrong, 1, "m")]

    with pytest.raises(KeyOfAnotherType, match="holds a string, not a zset"):
        await compare_and_set(redis, version, None, b"v1", writes)

    assert (await redis.exists(first), await redis.get(version)) == (0, None)
    await redis.delete(wrong)
    assert await compare_and_set(redis, version, None, b"v1", writes)
    assert await redis.hget(first, "f") == b"1"
