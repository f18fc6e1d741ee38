"""The ledger's engagement pay equals the batch reference's, to the cent, for seeded
content streams (late, repeated and shrinking snapshots, the same as_of twice, holds
and releases, stats of unknown content, every cap binding), placed by the real ledger
consumer and applied by the real store on Redis in batches of random sizes, with
restarts (a new consumer and store that know only what Redis holds) and replayed
batches between them."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import pytest
from redis.asyncio import Redis

from afflux.oracle.commission import posted_amounts, reference_from_events, target_amounts
from afflux.oracle.content_scenarios import (
    CAMPAIGNS,
    CREATORS,
    START,
    batches,
    content_versions,
    random_content_stream,
)
from afflux.payouts.consumer import LedgerConsumer, Rejected
from afflux.payouts.keys import Keys
from afflux.payouts.metrics import PayoutsMetrics
from afflux.payouts.store import Batch, LedgerStore
from afflux.shared.core.journal.records import Posting, posting_from_json
from afflux.shared.events import (
    CampaignTermsPublished,
    ContentPublished,
    ContentReleased,
    ContentStats,
    Envelope,
)
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.kafka import new_producer

pytestmark = pytest.mark.integration

SEEDS = range(12)


READ_AT = START + 400 * 86_400_000


def _directory() -> CampaignDirectory:
    directory = CampaignDirectory()
    for campaign, versions in content_versions().items():
        directory.apply(
            CampaignTermsPublished(
                event_id=f"t-{campaign}", occurred_at=0, campaign_id=campaign, versions=versions
            )
        )
    return directory


def _consumer(
    redis: Redis[bytes], keys: Keys, directory: CampaignDirectory, infra: Any
) -> LedgerConsumer:
    return LedgerConsumer(
        bootstrap=infra.kafka_bootstrap,
        group_id="engagement-differential",
        instance_id=None,
        store=LedgerStore(redis, keys),
        directory=directory,
        producer=new_producer(infra.kafka_bootstrap),  # never started: nothing dead-lettered
        metrics=PayoutsMetrics(),
        # Read after every time the scenarios state (content times are held to the clock).
        clock=lambda: READ_AT,
    )


async def _placed(consumer: LedgerConsumer, events: list[Envelope]) -> Batch:
    """The batch a poll of ``events`` makes; what the consumer refuses is left out."""
    batch = Batch()
    for event in events:
        assert isinstance(event, ContentPublished | ContentStats | ContentReleased)
        try:
            await consumer._content_checked(event, event.occurred_at)
            batch.merge(consumer.place([event]))
        except Rejected:
            continue
    return batch


def _by_creator(amounts: Iterable[tuple[str, int]]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for creator, amount in amounts:
        out[creator] += amount
    return {creator: amount for creator, amount in out.items() if amount != 0}


async def _postings(redis: Redis[bytes], keys: Keys, campaign: str, period: str) -> list[Posting]:
    out: list[Posting] = []
    for creator in CREATORS:
        members = await redis.zrange(keys.period(campaign, period, f"journal:{creator}"), 0, -1)
        out += [posting_from_json(json.loads(m)) for m in members]
    return out


@pytest.mark.parametrize("seed", SEEDS)
def test_engagement_pay_in_the_ledger_equals_the_reference(seed: int, infra: Any) -> None:
    rng = random.Random(seed * 7919)
    events = random_content_stream(seed)
    directory = _directory()
    keys = Keys(f"afx:test:{uuid.uuid4().hex[:8]}:")

    async def scenario() -> dict[tuple[str, str], list[Posting]]:
        redis: Redis[bytes] = Redis.from_url(infra.redis_url, db=3)
        try:
            consumer = _consumer(redis, keys, directory, infra)
            for batch in batches(rng, events):
                if rng.random() < 0.2:  # a restart: only Redis remembers
                    consumer = _consumer(redis, keys, directory, infra)
                placed = await _placed(consumer, batch)
                await consumer.store.apply(placed, directory.versions, lambda _: "EUR")
                if rng.random() < 0.15:  # the same batch again (a crash before its offsets)
                    await consumer.store.apply(placed, directory.versions, lambda _: "EUR")
            return {
                (campaign, period): await _postings(redis, keys, campaign, period)
                for campaign in CAMPAIGNS
                for period in ("2026-11", "2026-12")
            }
        finally:
            await redis.aclose()  # type: ignore[attr-defined]

    journal = asyncio.run(scenario())
    reference = reference_from_events(events, content_versions())
    for where, postings in journal.items():
        assert posted_amounts(postings) == target_amounts(reference.get(where, ())), where
        # and to whom: a content taken over from a squatter pays its author
        assert _by_creator((p.affiliate_id, p.amount_minor) for p in postings) == _by_creator(
            (line.affiliate_id, line.pays_minor) for line in reference.get(where, ())
        ), where
    # The stream exercises what it is for.
    assert sum(len(p) for p in journal.values()) > 0
