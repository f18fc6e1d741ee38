"""The ledger consumer against a real Redis and broker: when applying a batch raises
anything but a Redis outage, it applies the batch item by item, dead-letters the item
that fails, and stores the offsets past all of them; a failed apply writes nothing."""

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
from afflux.shared.wire import encode, encode_packed

pytestmark = pytest.mark.integration

OCT_15 = 1_792_022_400_000  # 2026-10-15T00:00:00Z
NOV_15 = 1_794_700_800_000  # 2026-11-15T00:00:00Z


def _directory(campaign: str) -> CampaignDirectory:
    terms = CampaignTerms.model_validate(
        {
            "campaign_id": campaign,
            "merchant_id": "m",
            "currency": "EUR",
            "plan": {"sale": {"rate": {"percent": "10"}}},
        }
    )
    directory = CampaignDirectory()
    directory.apply(
        CampaignTermsPublished(
            event_id="t",
            occurred_at=0,
            campaign_id=campaign,
            versions=(TermsVersion(version=1, effective_from=0, published_at=0, terms=terms),),
        )
    )
    return directory


def _conversion(campaign: str, n: int, at: int, amount: int = 10_000) -> ConversionAttributed:
    return ConversionAttributed(
        event_id=f"ev-{n}",
        occurred_at=at,
        conversion_id=f"conv-{n}",
        order_id=f"order-{n}",
        campaign_id=campaign,
        affiliate_id="anna",
        reason="cookie",
        model="last_click",
        window_ms=1,
        terms_version=1,
        amount_minor=amount,
        currency="EUR",
        order_event_id=f"oev-{n}",
    )


def _record(offset: int, key: str, value: bytes) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        "conversions", 0, offset, 0, 0, key.encode(), value, None, len(key), len(value), []
    )


def test_an_item_that_breaks_the_batch_is_dead_lettered_and_the_rest_applied(
    infra: Any,
) -> None:
    run = uuid.uuid4().hex[:8]
    campaign = f"camp-{run}"
    prefix = f"afx:test:{run}:"

    async def scenario() -> tuple[dict[str, int], list[bytes], list[bytes], list[DeadLetter]]:
        redis: Redis[bytes] = Redis.from_url(infra.redis_url, db=3)
        producer = new_producer(infra.kafka_bootstrap)
        await producer.start()
        store = LedgerStore(redis, Keys(prefix))
        consumer = LedgerConsumer(
            bootstrap=infra.kafka_bootstrap,
            group_id=f"g-{run}",
            instance_id=None,
            store=store,
            directory=_directory(campaign),
            producer=producer,
            metrics=PayoutsMetrics(),
        )
        try:
            # A stored line of October that cannot be read: any batch touching October fails.
            await redis.hset(f"{prefix}{{p:{campaign}|2026-10}}:lines", "corrupt", "{not json")
            october = encode(_conversion(campaign, 1, OCT_15))
            packed = encode_packed(
                [_conversion(campaign, 2, NOV_15), _conversion(campaign, 3, NOV_15 + 1)]
            )
            tp = TopicPartition("conversions", 0)
            await consumer._apply(
                {tp: [_record(100, f"poison-{run}-oct", october), _record(101, run, packed)]}
            )
            offsets = await store.offsets()
            nov = await redis.zrange(f"{prefix}{{p:{campaign}|2026-11}}:journal:anna", 0, -1)
            octo = await redis.zrange(f"{prefix}{{p:{campaign}|2026-10}}:journal:anna", 0, -1)
        finally:
            await producer.stop()
            await redis.aclose()  # type: ignore[attr-defined]
        letters = [
            e
            for e in await read_topic(infra.kafka_bootstrap, "afflux.dlq", idle_s=1.0)
            if isinstance(e, DeadLetter) and e.key == f"poison-{run}-oct"
        ]
        return offsets, nov, octo, letters

    offsets, november, october, letters = asyncio.run(scenario())

    assert offsets == {"conversions|0": 102}  # past every record, the failed one too
    assert {json.loads(posting)["order_id"] for posting in november} == {"order-2", "order-3"}
    assert october == []  # the failed apply wrote nothing
    (letter,) = letters
    assert letter.source_offset == 100
    assert letter.error_class == "JSONDecodeError"
    assert "failed" in letter.reason
