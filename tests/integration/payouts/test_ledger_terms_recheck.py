"""The ledger consumer against a real Redis and broker: a conversion read while the
process's campaign view is a fetch behind the topic (its campaign, or the terms version
the worker decided it under, published just before it) is held until the view caught up
and then posted, never dead-lettered while nothing is wrong with it; nor is it priced by
another terms version. A terms version that never arrives, or an unknown campaign in a
record older than the view's last catch-up, is dead-lettered as before."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from redis.asyncio import Redis

from afflux.cli.scenario_checks import read_topic
from afflux.payouts.consumer import LedgerConsumer
from afflux.payouts.keys import Keys
from afflux.payouts.metrics import PayoutsMetrics
from afflux.payouts.store import LedgerStore
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import CampaignTermsPublished, ConversionAttributed, DeadLetter
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.kafka import new_producer
from afflux.shared.io.terms_recheck import MARGIN_MS
from afflux.shared.wire import encode

pytestmark = pytest.mark.integration

NOV_15 = 1_794_700_800_000  # 2026-11-15T00:00:00Z
NOW = NOV_15 + 3_600_000


def _version(campaign: str, number: int, percent: str) -> TermsVersion:
    terms = CampaignTerms.model_validate(
        {
            "campaign_id": campaign,
            "merchant_id": "m",
            "currency": "EUR",
            "plan": {"sale": {"rate": {"percent": percent}}},
        }
    )
    return TermsVersion(version=number, effective_from=0, published_at=0, terms=terms)


def _published(campaign: str, versions: tuple[TermsVersion, ...]) -> CampaignTermsPublished:
    return CampaignTermsPublished(
        event_id=f"t-{campaign}-{len(versions)}",
        occurred_at=0,
        campaign_id=campaign,
        versions=versions,
    )


def _conversion(campaign: str, n: int, terms_version: int) -> ConversionAttributed:
    return ConversionAttributed(
        event_id=f"ev-{campaign}-{n}",
        occurred_at=NOV_15,
        conversion_id=f"conv-{campaign}-{n}",
        order_id=f"order-{n}",
        campaign_id=campaign,
        affiliate_id="anna",
        reason="cookie",
        model="last_click",
        window_ms=1,
        terms_version=terms_version,
        amount_minor=10_000,
        currency="EUR",
        order_event_id=f"oev-{n}",
    )


def _record(offset: int, key: str, value: bytes, ts: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        "conversions", 0, offset, ts, 0, key.encode(), value, None, len(key), len(value), []
    )


@pytest.mark.parametrize(
    "worker_clock_ms", [0, 2_000, -2_000], ids=["clocks agree", "2 s ahead", "2 s behind"]
)
def test_a_conversion_read_before_the_view_has_its_terms_is_posted_once_it_caught_up(
    infra: Any, worker_clock_ms: int
) -> None:
    """``worker_clock_ms``: how far the worker's host clock, which stamps the conversion
    records, is off the ledger's. At a 1 s margin, 2 s either way dead-lettered the
    conversions for good ("not ours" ahead, "the view had caught up" behind)."""
    run = uuid.uuid4().hex[:8]
    old, new = f"old-{run}", f"new-{run}"  # a campaign whose v2 is late; a late campaign
    v1, v2 = _version(old, 1, "10"), _version(old, 2, "20")
    prefix = f"afx:test:{run}:"
    directory = CampaignDirectory()
    directory.apply(_published(old, (v1,)))
    directory.mark_synced(NOW - 200)  # followed, a fetch behind

    async def view_catches_up() -> None:
        await asyncio.sleep(0.05)  # the consumer holds the conversions first
        directory.apply(_published(old, (v1, v2)))
        directory.apply(_published(new, (_version(new, 1, "10"),)))
        directory.mark_synced(NOW + MARGIN_MS + 1)

    async def scenario() -> tuple[dict[str, list[dict[str, Any]]], list[DeadLetter]]:
        redis: Redis[bytes] = Redis.from_url(infra.redis_url, db=3)
        producer = new_producer(infra.kafka_bootstrap)
        await producer.start()
        consumer = LedgerConsumer(
            bootstrap=infra.kafka_bootstrap,
            group_id=f"g-{run}",
            instance_id=None,
            store=LedgerStore(redis, Keys(prefix)),
            directory=directory,
            producer=producer,
            metrics=PayoutsMetrics(),
            clock=lambda: NOW,
        )
        stamped = NOW + worker_clock_ms
        records = [
            _record(0, f"{run}-v2", encode(_conversion(old, 1, 2)), stamped),
            _record(1, f"{run}-new", encode(_conversion(new, 2, 1)), stamped),
            _record(2, f"{run}-v3", encode(_conversion(old, 3, 3)), stamped),  # never published
            # An unknown campaign stamped long before the view's last catch-up: at once.
            _record(
                3,
                f"{run}-ghost",
                encode(_conversion(f"ghost-{run}", 4, 1)),
                NOW - MARGIN_MS - 5_000,
            ),
        ]
        try:
            catching_up = asyncio.ensure_future(view_catches_up())
            await consumer._apply({TopicPartition("conversions", 0): records})
            await catching_up
            postings = {
                campaign: [
                    json.loads(p)
                    for p in await redis.zrange(
                        f"{prefix}{{p:{campaign}|2026-11}}:journal:anna", 0, -1
                    )
                ]
                for campaign in (old, new)
            }
        finally:
            await producer.stop()
            await redis.aclose()  # type: ignore[attr-defined]
        letters = [
            e
            for e in await read_topic(infra.kafka_bootstrap, "afflux.dlq", idle_s=1.0)
            if isinstance(e, DeadLetter) and (e.key or "").startswith(run)
        ]
        return postings, letters

    postings, letters = asyncio.run(scenario())

    # Posted under the version the worker named: 20 % of 100.00, not v1's 10 %.
    assert [(p["order_id"], p["amount_minor"]) for p in postings[old]] == [("order-1", 2_000)]
    assert [(p["order_id"], p["amount_minor"]) for p in postings[new]] == [("order-2", 1_000)]
    reasons = {letter.key: letter.reason for letter in letters}
    assert set(reasons) == {f"{run}-v3", f"{run}-ghost"}
    assert reasons[f"{run}-v3"].startswith("unknown_terms_version")
    assert "has no terms" in reasons[f"{run}-ghost"]
