"""The orders service dead-letters a bad ``campaigns`` record (consumer ``orders.campaigns``);
a letter the producer or broker refuses for itself, which no retry would cure, is logged
and counted (``afflux_orders_campaign_dead_letters_unsent_total``, alert
AffluxDeadLettersUnsent), and the campaign follower goes on with the records after it."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from afflux.orders.app import dead_letters_to
from afflux.orders.metrics import OrdersMetrics
from afflux.orders.terms_publisher import TermsPublisher
from afflux.shared.core.terms import CampaignTerms
from afflux.shared.events import CampaignTermsPublished
from afflux.shared.io.background import cancel_and_wait
from afflux.shared.io.campaign_publish import publish_terms
from afflux.shared.io.campaign_view import CampaignDirectory, follow_campaigns
from afflux.shared.io.kafka import new_producer, partition_for, stop_consumer
from afflux.shared.topics import CAMPAIGNS
from afflux.shared.wire import decode_record

pytestmark = pytest.mark.integration

# Not JSON, and its letter (the value repeated) far over the small producer's limit below.
LARGE_NOT_JSON = b"{" + b"x" * 200_000
SMALL_REQUESTS = 50_000


async def bad_record_before_terms(
    bootstrap: str, campaign_prefix: str, bad_value: bytes
) -> tuple[CampaignTerms, int, int]:
    """A new campaign's terms published right after a bad record ``bad_value``: the bad
    record goes first on the partition the campaign's terms are published to, so the
    follower reads the campaign only after it has dealt with the bad record. The terms,
    and the bad record's partition and offset."""
    terms = CampaignTerms.model_validate(
        {
            "campaign_id": f"{campaign_prefix}-{uuid.uuid4().hex[:8]}",
            "merchant_id": "merchant-a",
            "currency": "EUR",
            "plan": {"sale": {"rate": {"percent": "10"}}},
        }
    )
    plain = new_producer(bootstrap)
    await plain.start()
    try:
        partitions = len(await plain.partitions_for(CAMPAIGNS.name))
        partition = partition_for(terms.campaign_id.encode(), partitions)
        bad = await plain.send_and_wait(
            CAMPAIGNS.name, bad_value, key=b"not-a-campaign", partition=partition
        )
    finally:
        await plain.stop()
    await publish_terms(bootstrap, [(terms, 0)])
    return terms, partition, bad.offset


async def until_followed(
    directory: CampaignDirectory, follower: asyncio.Task[None], campaign_id: str
) -> None:
    """Wait (30 s at most) until the follower has read the campaign, failing at once if
    the follower stopped."""
    async with asyncio.timeout(30):
        while campaign_id not in directory:
            assert not follower.done(), follower
            await asyncio.sleep(0.05)


async def test_a_campaign_dead_letter_refused_for_itself_is_counted_and_the_follower_goes_on(
    infra: Any, caplog: pytest.LogCaptureFixture
) -> None:
    terms, partition, offset = await bad_record_before_terms(
        infra.kafka_bootstrap, "after-refused-letter", LARGE_NOT_JSON
    )

    metrics = OrdersMetrics()
    directory = CampaignDirectory()
    small = new_producer(infra.kafka_bootstrap, max_request_size=SMALL_REQUESTS)
    await small.start()
    caplog.set_level(logging.ERROR, logger="afflux.shared.io.kafka")
    follower = asyncio.create_task(
        follow_campaigns(
            directory, infra.kafka_bootstrap, on_bad_record=dead_letters_to(small, metrics)
        )
    )
    try:
        await until_followed(directory, follower, terms.campaign_id)
        assert directory.latest(terms.campaign_id).terms == terms

        refused = f"({CAMPAIGNS.name}[{partition}]@{offset}) refused, not sent"
        assert any(refused in record.getMessage() for record in caplog.records)
        unsent = metrics.registry.get_sample_value(
            "afflux_orders_campaign_dead_letters_unsent_total", {"topic": CAMPAIGNS.name}
        )
        # At least ours: the session's campaigns topic may hold other large bad records.
        assert unsent is not None
        assert unsent >= 1
    finally:
        await cancel_and_wait([follower])  # before its producer stops
        await small.stop()


async def test_a_sent_campaign_dead_letter_is_counted_for_the_dead_letter_alert(
    infra: Any,
) -> None:
    """afflux_dlq, the counter every service's dead letters share (alert
    AffluxDeadLetters), counts the campaigns letters too: a bad terms record is news."""
    terms, _, _ = await bad_record_before_terms(
        infra.kafka_bootstrap, "after-sent-letter", b"{not json"
    )

    metrics = OrdersMetrics()
    directory = CampaignDirectory()
    producer = new_producer(infra.kafka_bootstrap)
    await producer.start()
    follower = asyncio.create_task(
        follow_campaigns(
            directory, infra.kafka_bootstrap, on_bad_record=dead_letters_to(producer, metrics)
        )
    )
    try:
        await until_followed(directory, follower, terms.campaign_id)
        sent = {
            sample.labels["reason"]: sample.value
            for family in metrics.registry.collect()
            if family.name == "afflux_dlq"
            for sample in family.samples
            if sample.name == "afflux_dlq_total" and sample.labels["topic"] == CAMPAIGNS.name
        }
        assert sum(sent.values()) >= 1, sent
        assert all(" " not in reason for reason in sent), sent  # a class name, bounded
    finally:
        await cancel_and_wait([follower])
        await producer.stop()


async def _records_after(
    bootstrap: str, partition: int, offset: int, key: bytes
) -> list[bytes | None]:
    """The values of ``key``'s records on ``partition`` after ``offset``, to the end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(CAMPAIGNS.name, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset + 1)
        end = (await consumer.end_offsets([tp]))[tp]
        values: list[bytes | None] = []
        while await consumer.position(tp) < end:
            batch = await consumer.getmany(tp, timeout_ms=1000)
            values += [r.value for r in batch.get(tp, []) if r.key == key]
        return values
    finally:
        await stop_consumer(consumer)


async def test_a_tombstone_of_a_campaign_is_answered_with_its_whole_history_again(
    infra: Any,
) -> None:
    """The campaigns topic is compacted by campaign: a tombstone, refused by every reader,
    would in time delete every version before it, and every service starting after that
    would have no terms for the campaign (its pending money refused). The orders service
    publishes the history again after it, so compaction keeps it."""
    bootstrap = infra.kafka_bootstrap
    terms = CampaignTerms.model_validate(
        {
            "campaign_id": f"tombstoned-{uuid.uuid4().hex[:8]}",
            "merchant_id": "merchant-a",
            "currency": "EUR",
            "plan": {"sale": {"rate": {"percent": "10"}}},
        }
    )
    second = terms.model_copy(update={"cookie_window_days": 7})
    await publish_terms(bootstrap, [(terms, 0)], forward_only=False)
    await publish_terms(bootstrap, [(second, 1_000)], forward_only=False)
    key = terms.campaign_id.encode()
    plain = new_producer(bootstrap)
    await plain.start()
    try:
        tombstone = await plain.send_and_wait(CAMPAIGNS.name, None, key=key)
    finally:
        await plain.stop()

    metrics = OrdersMetrics()
    directory = CampaignDirectory()
    publisher = TermsPublisher(bootstrap)

    async def restore(campaign_id: str) -> None:
        if campaign_id in directory:
            await publisher.restore(campaign_id)

    producer = new_producer(bootstrap)
    await producer.start()
    follower = asyncio.create_task(
        follow_campaigns(
            directory, bootstrap, on_bad_record=dead_letters_to(producer, metrics, restore)
        )
    )
    try:
        async with asyncio.timeout(30):
            while not (
                after := await _records_after(bootstrap, tombstone.partition, tombstone.offset, key)
            ):
                assert not follower.done(), follower
                await asyncio.sleep(0.2)
        # Every orders service following the topic answers the tombstone: the package's
        # own orders app, when this worker started it, restores it too (each time whole).
        restored = [e for value in after for e in decode_record(value)]
        assert restored
        for again in restored:
            assert isinstance(again, CampaignTermsPublished)
            assert [v.terms for v in again.versions] == [terms, second]
            assert directory.versions(terms.campaign_id) == again.versions
    finally:
        await cancel_and_wait([follower])
        await producer.stop()
