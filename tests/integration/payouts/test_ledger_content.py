"""Content and its stats through the ledger consumer, from a real broker into a real
Redis: engagement pay follows the latest snapshot (a drop is a correction naming what it
corrects, a stale snapshot changes nothing), and stats of an unknown content or dated in
the future are dead-lettered with the reason while the rest is applied."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord
from redis.asyncio import Redis

from afflux.cli.scenario_checks import read_topic
from afflux.payouts.consumer import LedgerConsumer
from afflux.payouts.keys import Keys
from afflux.payouts.metrics import PayoutsMetrics
from afflux.payouts.store import LedgerStore
from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.engagement import TAKEN_OVER, ContentState
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import (
    CampaignTermsPublished,
    ContentPublished,
    ContentReleased,
    ContentStats,
    ConversionAttributed,
    DeadLetter,
    Envelope,
)
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.kafka import new_producer
from afflux.shared.wire import encode

pytestmark = pytest.mark.integration

NOV_15 = 1_794_700_800_000  # 2026-11-15T00:00:00Z
HOUR = 3_600_000


def _directory(*campaigns: str) -> CampaignDirectory:
    directory = CampaignDirectory()
    for campaign in campaigns:
        terms = CampaignTerms.model_validate(
            {
                "campaign_id": campaign,
                "merchant_id": "m",
                "currency": "EUR",
                "lock_days": 30,
                "plan": {
                    "engagement": {"values": {"like_minor": "1"}, "minimum_interactions": 100}
                },
            }
        )
        directory.apply(
            CampaignTermsPublished(
                event_id=f"t-{campaign}",
                occurred_at=0,
                campaign_id=campaign,
                versions=(TermsVersion(version=1, effective_from=0, published_at=0, terms=terms),),
            )
        )
    return directory


def _stats(content: str, n: int, as_of: int, likes: int) -> ContentStats:
    return ContentStats(
        event_id=f"{content}-s{n}",
        occurred_at=as_of,
        content_id=content,
        platform="tiktok",
        as_of=as_of,
        views=0,
        impressions=0,
        likes=likes,
        comments=0,
        shares=0,
        saves=0,
        followers=100_000,
    )


async def _produced(bootstrap: str, events: Sequence[tuple[str, Envelope | bytes]]) -> list[Any]:
    """Send ``events`` (key, event or raw value) to partition 0 of ``content``; the records
    as consumed."""
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        sent = [
            await producer.send_and_wait(
                "content",
                e if isinstance(e, bytes) else encode(e),
                key=k.encode(),
                partition=0,
            )
            for k, e in events
        ]
    finally:
        await producer.stop()
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await reader.start()
    tp = TopicPartition("content", 0)
    try:
        reader.assign([tp])
        reader.seek(tp, sent[0].offset)
        wanted = {m.offset for m in sent}
        records: list[ConsumerRecord[bytes, bytes]] = []
        deadline = time.monotonic() + 30
        while wanted - {r.offset for r in records} and time.monotonic() < deadline:
            for batch in (await reader.getmany(tp, timeout_ms=250)).values():
                records += [r for r in batch if r.offset in wanted]
    finally:
        await reader.stop()
    return sorted(records, key=lambda r: r.offset)


async def _consume(
    infra: Any,
    group: str,
    store: LedgerStore,
    directory: CampaignDirectory,
    producer: Any,
    records: list[Any],
) -> None:
    """``records`` of ``content`` partition 0 applied by a consumer of their own."""
    consumer = LedgerConsumer(
        bootstrap=infra.kafka_bootstrap,
        group_id=group,
        instance_id=None,
        store=store,
        directory=directory,
        producer=producer,
        metrics=PayoutsMetrics(),
    )
    await consumer._apply({TopicPartition("content", 0): records})


def test_engagement_pay_follows_the_latest_snapshot_through_the_consumer(infra: Any) -> None:
    run = uuid.uuid4().hex[:8]
    campaign, content, prefix = f"camp-{run}", f"c-{run}", f"afx:test:{run}:"
    key = f"tiktok:{content}"
    published = ContentPublished(
        event_id=f"{content}-pub",
        occurred_at=NOV_15,
        content_id=content,
        platform="tiktok",
        affiliate_id="anna",
        campaign_id=campaign,
        kind="video",
        url=f"https://tiktok.com/@anna/video/{content}",
        published_at=NOV_15,
    )
    future = int(time.time() * 1000) + 10 * 60_000  # beyond the 5-minute clock skew
    negative = encode(_stats(content, 9, NOV_15 + HOUR, 1)).replace(b'"likes":1', b'"likes":-1')
    first: list[tuple[str, Envelope | bytes]] = [
        (key, published),
        (f"{key}-{run}-poison", b"not json"),
        (key, _stats(content, 1, NOV_15 + HOUR, 300)),
        (f"tiktok:unknown-{run}", _stats(f"unknown-{run}", 1, NOV_15 + HOUR, 10)),
        (f"{key}-{run}-negative", negative),
    ]
    second: list[tuple[str, Envelope | bytes]] = [
        (key, _stats(content, 3, NOV_15 + 3 * HOUR, 250)),  # fake likes removed
        (key, _stats(content, 2, NOV_15 + 2 * HOUR, 999)),  # late: older than the latest
        (key, _stats(content, 4, future, 5_000)),
    ]

    async def scenario() -> tuple[list[dict[str, Any]], ContentState | None, list[DeadLetter]]:
        redis: Redis[bytes] = Redis.from_url(infra.redis_url, db=3)
        producer = new_producer(infra.kafka_bootstrap)
        await producer.start()
        try:
            for batch in (first, second):
                records = await _produced(infra.kafka_bootstrap, batch)
                # A new consumer and store per batch: the second finds the content's
                # period in Redis, not in the first one's memory.
                await _consume(
                    infra,
                    f"g-{run}",
                    LedgerStore(redis, Keys(prefix)),
                    _directory(campaign),
                    producer,
                    records,
                )
            store = LedgerStore(redis, Keys(prefix))
            journal = await redis.zrange(f"{prefix}{{p:{campaign}|2026-11}}:journal:anna", 0, -1)
            state = await store.content_state(key)
        finally:
            await producer.stop()
            await redis.aclose()  # type: ignore[attr-defined]
        letters = [
            e
            for e in await read_topic(infra.kafka_bootstrap, "afflux.dlq", idle_s=1.0)
            if isinstance(e, DeadLetter) and e.source_topic == "content" and run in (e.key or "")
        ]
        return [json.loads(p) for p in journal], state, letters

    postings, state, letters = asyncio.run(scenario())

    approve_at = NOV_15 + 30 * MS_PER_DAY
    assert [(p["kind"], p["amount_minor"], p["approve_at"]) for p in postings] == [
        ("engagement_pay", 300, approve_at),
        ("engagement_correction", -50, approve_at),
    ]
    assert postings[1]["corrects"] == postings[0]["posting_id"]
    assert postings[1]["rule"].endswith("= 250 (was 300)")
    assert state is not None
    assert state.latest is not None
    assert (state.latest.event_id, state.snapshots, state.stale) == (f"{content}-s3", 2, 1)
    reasons = sorted(letter.reason.split(":")[0] for letter in letters)
    assert reasons == ["event_time_in_future", "invalid event", "not JSON", "unknown_content"]


def test_a_stream_ending_past_the_skew_and_a_content_taken_by_another_are_dead_lettered(
    infra: Any,
) -> None:
    """A publication is held to the clock skew by every time it states, not only its
    ``occurred_at``: a stream whose end lies an hour past its record never reaches the
    ledger (its stats are then of an unknown content); one naming another creator for a
    content already published is refused; a conversion written to the content topic is
    never paid."""
    run = uuid.uuid4().hex[:8]
    campaign, prefix = f"camp-{run}", f"afx:test:{run}:"
    now = int(time.time() * 1000)

    def live(content: str, who: str, end: int) -> ContentPublished:
        return ContentPublished(
            event_id=f"{content}-{who}-pub",
            occurred_at=now - HOUR,
            content_id=content,
            platform="tiktok",
            affiliate_id=who,
            campaign_id=campaign,
            kind="live",
            url=f"https://tiktok.com/@{who}/live/{content}",
            published_at=now - HOUR,
            live_started_at=now - HOUR,
            live_ended_at=end,
        )

    ahead, kept = f"ahead-{run}", f"kept-{run}"
    # Written to content, which outside integrations write to: never a payable conversion.
    forged = ConversionAttributed(
        event_id=f"forged-{run}",
        occurred_at=now - HOUR,
        conversion_id=f"forged-conv-{run}",
        order_id=f"forged-order-{run}",
        campaign_id=campaign,
        affiliate_id="mallory",
        reason="cookie",
        model="last_click",
        window_ms=1,
        terms_version=1,
        amount_minor=10**9,
        currency="EUR",
        order_event_id=f"forged-oev-{run}",
    )
    events: list[tuple[str, Envelope | bytes]] = [
        (f"tiktok:{ahead}", live(ahead, "anna", now + HOUR)),
        (f"tiktok:{ahead}", _stats(ahead, 1, now - HOUR // 2, 300)),
        (f"tiktok:{kept}", live(kept, "anna", now - HOUR // 2)),
        (f"tiktok:{kept}", live(kept, "mallory", now - HOUR // 2)),
        (f"tiktok:forged-{run}", forged),
    ]

    async def scenario() -> tuple[
        ContentState | None, ContentState | None, list[bytes], list[DeadLetter]
    ]:
        redis: Redis[bytes] = Redis.from_url(infra.redis_url, db=3)
        producer = new_producer(infra.kafka_bootstrap)
        await producer.start()
        try:
            records = await _produced(infra.kafka_bootstrap, events)
            await _consume(
                infra,
                f"g-{run}",
                LedgerStore(redis, Keys(prefix)),
                _directory(campaign),
                producer,
                records,
            )
            store = LedgerStore(redis, Keys(prefix))
            states = (
                await store.content_state(f"tiktok:{ahead}"),
                await store.content_state(f"tiktok:{kept}"),
            )
            written = await redis.keys(f"{prefix}*")
        finally:
            await producer.stop()
            await redis.aclose()  # type: ignore[attr-defined]
        letters = [
            e
            for e in await read_topic(infra.kafka_bootstrap, "afflux.dlq", idle_s=1.0)
            if isinstance(e, DeadLetter) and e.source_topic == "content" and run in (e.key or "")
        ]
        return *states, written, letters

    refused, taken, written, letters = asyncio.run(scenario())

    assert refused is None
    assert taken is not None
    assert taken.publication is not None
    assert taken.publication.affiliate_id == "anna"
    reasons = sorted(letter.reason.split(":")[0] for letter in letters)
    assert reasons == [
        "content_identity_changed",
        "event_time_in_future",
        "unknown_content",
        "wrong_topic",
    ]
    assert [k for k in written if b"mallory" in k] == []  # the forged sale paid nobody


def test_a_release_stamped_past_the_skew_on_the_topic_is_dead_lettered_and_holds_the_content(
    infra: Any,
) -> None:
    """A ``ContentReleased`` written straight to the topic (the HTTP route stamps its own)
    an hour after its record's timestamp is refused like a publication or snapshot so
    stamped (``event_time_in_future``), as the attribution worker and the oracle leave
    it out: the creator's content stays held, and a release within the skew frees it."""
    run = uuid.uuid4().hex[:8]
    campaign, content, prefix = f"camp-{run}", f"rel-{run}", f"afx:test:{run}:"
    key = f"tiktok:{content}"
    now = int(time.time() * 1000)
    published = ContentPublished(
        event_id=f"{content}-pub",
        occurred_at=now - HOUR,
        content_id=content,
        platform="tiktok",
        affiliate_id="anna",
        campaign_id=campaign,
        kind="video",
        url=f"https://tiktok.com/@anna/video/{content}",
        published_at=now - HOUR,
        reported_by="creator",
    )

    def release(n: int, at: int) -> ContentReleased:
        return ContentReleased(
            event_id=f"{content}-rel{n}",
            occurred_at=at,
            content_id=content,
            platform="tiktok",
            released_by="merchant:m",
        )

    async def scenario(
        events: list[tuple[str, Envelope | bytes]], redis: Redis[bytes], producer: Any
    ) -> ContentState | None:
        records = await _produced(infra.kafka_bootstrap, events)
        await _consume(
            infra,
            f"g-{run}",
            LedgerStore(redis, Keys(prefix)),
            _directory(campaign),
            producer,
            records,
        )
        return await LedgerStore(redis, Keys(prefix)).content_state(key)

    async def both() -> tuple[ContentState | None, ContentState | None, list[DeadLetter]]:
        redis: Redis[bytes] = Redis.from_url(infra.redis_url, db=3)
        producer = new_producer(infra.kafka_bootstrap)
        await producer.start()
        try:
            ahead = await scenario(
                [(key, published), (key, release(1, now + HOUR))], redis, producer
            )
            within = await scenario([(key, release(2, now))], redis, producer)
        finally:
            await producer.stop()
            await redis.aclose()  # type: ignore[attr-defined]
        letters = [
            e
            for e in await read_topic(infra.kafka_bootstrap, "afflux.dlq", idle_s=1.0)
            if isinstance(e, DeadLetter) and e.source_topic == "content" and run in (e.key or "")
        ]
        return ahead, within, letters

    ahead, within, letters = asyncio.run(both())

    assert ahead is not None
    assert (ahead.released, ahead.awaits_release) == (None, True)
    assert within is not None
    assert (within.released, within.awaits_release) == (f"{content}-rel2", False)
    assert [letter.reason.split(":")[0] for letter in letters] == ["event_time_in_future"]


def test_the_brands_publication_takes_over_a_content_another_creator_squatted(
    infra: Any,
) -> None:
    """A creator's key publishes another author's post id first (a squat): held, it
    earns nothing. The author's own key cannot take it (dead-lettered), the brand's
    publication for the author does: the author is paid for the post's stats, the
    squat stays held for good where it was, and the squatter can no longer publish it.
    A release written before any publication fixes nothing (``unknown_content``), as the
    worker and the oracle leave it out."""
    run = uuid.uuid4().hex[:8]
    campaign, content, prefix = f"camp-{run}", f"sq-{run}", f"afx:test:{run}:"
    key = f"tiktok:{content}"

    def published(who: str, by: str | None, at: int, n: int) -> ContentPublished:
        return ContentPublished(
            event_id=f"{content}-pub{n}",
            occurred_at=at,
            content_id=content,
            platform="tiktok",
            affiliate_id=who,
            campaign_id=campaign,
            kind="video",
            url=f"https://tiktok.com/@anna/video/{content}",
            published_at=at,
            reported_by=by,  # type: ignore[arg-type]
        )

    squat = published("mallory", "creator", NOV_15 - 20 * MS_PER_DAY, 1)  # October
    early = ContentReleased(
        event_id=f"{content}-early-release",
        occurred_at=squat.published_at - HOUR,
        content_id=content,
        platform="tiktok",
        released_by="merchant:m",
    )
    events: list[tuple[str, Envelope | bytes]] = [
        (key, early),  # before any publication: refused
        (key, squat),
        (key, _stats(content, 1, NOV_15 - 19 * MS_PER_DAY, 200)),
        (key, published("anna", "creator", NOV_15, 2)),  # the author's own key: refused
        (key, published("anna", "merchant", NOV_15, 3)),  # the brand's: takes it over
        (key, _stats(content, 2, NOV_15 + HOUR, 300)),
        (key, published("mallory", "creator", NOV_15, 4)),  # the squatter again: refused
    ]

    async def scenario() -> tuple[
        ContentState | None, list[ContentState], list[bytes], list[DeadLetter]
    ]:
        redis: Redis[bytes] = Redis.from_url(infra.redis_url, db=3)
        producer = new_producer(infra.kafka_bootstrap)
        await producer.start()
        try:
            records = await _produced(infra.kafka_bootstrap, events)
            for n, record in enumerate(records):  # one batch each, a new consumer each
                if n == 3:  # the squat's route as written before it said it awaits release
                    route = await redis.hget(f"{prefix}{{ledger}}:content", key)
                    assert json.loads(route)[3] is True
                    legacy = json.dumps(json.loads(route)[:3])
                    await redis.hset(f"{prefix}{{ledger}}:content", key, legacy)
                await _consume(
                    infra,
                    f"g-{run}",
                    LedgerStore(redis, Keys(prefix)),
                    _directory(campaign),
                    producer,
                    [record],
                )
            store = LedgerStore(redis, Keys(prefix))
            now = await store.content_state(key)
            before = await store.content_states(campaign, "2026-10")
            journal = await redis.zrange(f"{prefix}{{p:{campaign}|2026-11}}:journal:anna", 0, -1)
            squatter = await redis.keys(f"{prefix}*journal:mallory")
        finally:
            await producer.stop()
            await redis.aclose()  # type: ignore[attr-defined]
        letters = [
            e
            for e in await read_topic(infra.kafka_bootstrap, "afflux.dlq", idle_s=1.0)
            if isinstance(e, DeadLetter) and e.source_topic == "content" and run in (e.key or "")
        ]
        return now, before, [*journal, *squatter], letters

    now, before, written, letters = asyncio.run(scenario())

    assert now is not None
    assert now.publication is not None
    assert (now.publication.affiliate_id, now.on_hold) == ("anna", False)
    assert now.latest is not None
    assert now.latest.likes == 300
    [held] = before  # where the squat put it: held for good, its figures dropped
    assert held.publication is not None
    assert held.publication.affiliate_id == "mallory"
    assert (held.held, held.latest) == (TAKEN_OVER, None)
    paid = [json.loads(p) for p in written if p.startswith(b"{")]
    assert [(p["affiliate_id"], p["amount_minor"]) for p in paid] == [("anna", 300)]
    assert not [w for w in written if not w.startswith(b"{")]  # no journal of the squatter
    reasons = [letter.reason.split(":")[0] for letter in letters]
    assert reasons == ["unknown_content", "content_identity_changed", "content_identity_changed"]


def test_another_campaigns_brand_cannot_take_over_a_creators_unreleased_content(
    infra: Any,
) -> None:
    """A creator's key publishes a content for campaign A, unreleased. A publication by
    campaign B's brand naming it, written to the topic, is dead-lettered: a takeover
    stays within the content's campaign. Campaign A's brand still takes it over."""
    run = uuid.uuid4().hex[:8]
    home, other, content = f"home-{run}", f"other-{run}", f"x-{run}"
    prefix, key = f"afx:test:{run}:", f"tiktok:{content}"

    def published(who: str, by: str, campaign: str, n: int) -> ContentPublished:
        return ContentPublished(
            event_id=f"{content}-pub{n}",
            occurred_at=NOV_15 + n * HOUR,
            content_id=content,
            platform="tiktok",
            affiliate_id=who,
            campaign_id=campaign,
            kind="video",
            url=f"https://tiktok.com/@anna/video/{content}",
            published_at=NOV_15 + n * HOUR,
            reported_by=by,  # type: ignore[arg-type]
        )

    events: list[tuple[str, Envelope | bytes]] = [
        (key, published("mallory", "creator", home, 1)),
        (key, published("bob", "merchant", other, 2)),  # another brand: refused
        (key, published("anna", "merchant", home, 3)),  # the content's brand: takes it
    ]

    async def scenario() -> tuple[list[ContentState | None], list[DeadLetter]]:
        redis: Redis[bytes] = Redis.from_url(infra.redis_url, db=3)
        producer = new_producer(infra.kafka_bootstrap)
        await producer.start()
        owners: list[ContentState | None] = []
        try:
            records = await _produced(infra.kafka_bootstrap, events)
            for record in records:
                await _consume(
                    infra,
                    f"g-{run}",
                    LedgerStore(redis, Keys(prefix)),
                    _directory(home, other),
                    producer,
                    [record],
                )
                owners.append(await LedgerStore(redis, Keys(prefix)).content_state(key))
        finally:
            await producer.stop()
            await redis.aclose()  # type: ignore[attr-defined]
        letters = [
            e
            for e in await read_topic(infra.kafka_bootstrap, "afflux.dlq", idle_s=1.0)
            if isinstance(e, DeadLetter) and e.source_topic == "content" and run in (e.key or "")
        ]
        return owners, letters

    owners, letters = asyncio.run(scenario())

    who = [
        (s.publication.affiliate_id, s.publication.campaign_id, s.on_hold)
        for s in owners
        if s is not None and s.publication is not None
    ]
    assert who == [
        ("mallory", home, True),
        ("mallory", home, True),  # the other brand's publication changed nothing
        ("anna", home, False),
    ]
    [letter] = letters
    assert letter.reason.startswith("content_identity_changed")
    assert other in letter.reason
