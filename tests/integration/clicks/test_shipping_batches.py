"""A steady trickle of clicks reaches the broker in a few packed records, not a record per
click: once caught up, the shipper gathers for its linger before the next batch."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from afflux.clicks.app import create_app
from afflux.shared.core.terms import CampaignTerms
from afflux.shared.io.kafka import topic_partitions
from afflux.shared.topics import CLICKS

from .conftest import click_id_of, clicks_settings, client_for, create_link, wait_for_campaign

pytestmark = pytest.mark.integration

CLICKS_SENT = 60
LINGER_MS = 500
PARTITIONS = 4  # a batch is at most one record per partition (far below 200 events each)


async def records_holding(bootstrap: str, click_ids: set[str]) -> set[tuple[int, int]]:
    """(partition, offset) of every record on the clicks topic holding one of ``click_ids``,
    once all of them were found."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None, fetch_max_wait_ms=10
    )
    await consumer.start()
    try:
        partitions = await topic_partitions(consumer, CLICKS.name)
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, 0)
        records: set[tuple[int, int]] = set()
        found: set[str] = set()
        deadline = time.monotonic() + 30
        while found != click_ids and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200, max_records=10_000)
            for tp, batch in batches.items():
                for record in batch:
                    parsed = json.loads(record.value or b"null")
                    for event in parsed if isinstance(parsed, list) else [parsed]:
                        if event.get("click_id") in click_ids:
                            found.add(event["click_id"])
                            records.add((tp.partition, record.offset))
        assert found == click_ids, f"{len(click_ids - found)} clicks never reached the topic"
        return records
    finally:
        await consumer.stop()


async def test_a_trickle_of_clicks_goes_out_in_a_few_records(
    infra: Any, campaign: CampaignTerms, tmp_path: Path
) -> None:
    settings = clicks_settings(infra, tmp_path / "data", clicks_linger_ms=LINGER_MS)
    app = create_app(settings)
    async with app.router.lifespan_context(app), client_for(app) as http:
        await wait_for_campaign(app, campaign.campaign_id)
        link = await create_link(http, campaign.campaign_id, "https://shop.example.com/")
        started = time.monotonic()
        sent: set[str] = set()
        for n in range(CLICKS_SENT):  # one at a time: each answered once it is on disk
            answer = await http.get(f"/c/{link['code']}?sub1={n}")
            assert answer.status_code == 302
            sent.add(click_id_of(answer.headers["location"]))
        took_s = time.monotonic() - started
        records = await records_holding(infra.kafka_bootstrap, sent)

    # Each batch waited the linger before it went, so there were at most this many (a few
    # while the clicks took a second or two); sending again right after each batch put a
    # click or two in each record.
    batches = took_s / (LINGER_MS / 1000) + 2
    assert len(records) <= PARTITIONS * batches, (len(records), took_s)
