"""Poison on the ``links`` topic or in Redis never stops a link restore: a bad record is
skipped (logged, counted, dead-lettered) and the good links are restored and redirect;
a stored link that cannot be read is dropped and restored from the topic."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from fastapi import FastAPI
from redis.asyncio import Redis

from afflux.clicks.app import create_app
from afflux.clicks.link_log import CONSUMER, read_links
from afflux.clicks.links import decode_link
from afflux.shared.core.terms import CampaignTerms
from afflux.shared.io.kafka import new_producer, stop_consumer, topic_partitions
from afflux.shared.topics import DLQ, LINKS

from .conftest import ADMIN, clicks_settings, client_for, create_link, unique, wait_for_campaign

pytestmark = pytest.mark.integration

DEEP = b"[" * 100_000 + b"]" * 100_000
NOT_JSON = b"{not json at all"


@pytest.fixture
async def app(infra: Any, campaign: CampaignTerms, tmp_path: Path) -> AsyncIterator[FastAPI]:
    """A clicks app of its own Redis prefix, so wiping its links touches no other test."""
    settings = clicks_settings(infra, tmp_path, clicks_redis_prefix=unique("poison"))
    clicks = create_app(settings)
    async with clicks.router.lifespan_context(clicks):
        await wait_for_campaign(clicks, campaign.campaign_id)
        yield clicks


async def produce_poison(bootstrap: str) -> set[tuple[int, int, str]]:
    """A 100,000-deep value and a non-JSON one on every partition of the links topic:
    (partition, offset, expected error class) of each."""
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        placed = set()
        for partition in sorted(await producer.partitions_for(LINKS.name)):
            for value, error_class in ((DEEP, "NestedTooDeep"), (NOT_JSON, "JSONDecodeError")):
                sent = await producer.send_and_wait(
                    LINKS.name, value, key=unique("poison").encode(), partition=partition
                )
                placed.add((partition, sent.offset, error_class))
        return placed
    finally:
        await producer.stop()


async def wipe(redis: Redis[bytes], prefix: str) -> None:
    """Redis loses every link of ``prefix`` (and the key saying it holds them all)."""
    keys = [key async for key in redis.scan_iter(match=f"{prefix}:*", count=1_000)]
    assert keys
    await redis.delete(*keys)


async def dead_letters(bootstrap: str, wanted: set[tuple[int, int]]) -> dict[Any, Any]:
    """The clicks service's dead letters of the links records ``wanted`` (partition, offset),
    read from the dead-letter topic until each is there."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=50
    )
    await consumer.start()
    found: dict[tuple[int, int], dict[str, Any]] = {}
    try:
        partitions = await topic_partitions(consumer, DLQ.name)
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, 0)
        async with asyncio.timeout(30):
            while not wanted <= found.keys():
                batches = await consumer.getmany(timeout_ms=200, max_records=10_000)
                for records in batches.values():
                    for record in records:
                        letter = json.loads(record.value or b"{}")
                        where = (letter.get("source_partition"), letter.get("source_offset"))
                        if (
                            letter.get("consumer") == CONSUMER
                            and letter.get("source_topic") == LINKS.name
                            and where in wanted
                        ):
                            found[where] = letter
    finally:
        await stop_consumer(consumer)
    return found


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text ``text``; 0 when absent."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and line.split(" ")[0] == f"{name}{{{wanted}}}":
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_restore_skips_a_poison_link_record_and_restores_the_rest(
    infra: Any, app: FastAPI, campaign: CampaignTerms
) -> None:
    async with client_for(app) as http:
        before = await create_link(http, campaign.campaign_id, "https://shop.example.com/before")
        poison = await produce_poison(infra.kafka_bootstrap)
        after = await create_link(http, campaign.campaign_id, "https://shop.example.com/after")

        await wipe(app.state.redis, app.state.store.prefix)
        app.state.cache.clear()

        # The redirect waits for the restore, which passes over every poison record.
        for link in (before, after):
            answer = await http.get(f"/c/{link['code']}")
            assert answer.status_code == 302, answer.text
            assert answer.headers["location"].startswith(f"{link['destination_url']}?afx_click=")
        assert app.state.restorer.ready.is_set()
        assert await app.state.store.is_complete()
        listed = await http.get(
            "/v1/links", params={"affiliate_id": after["affiliate_id"]}, headers=ADMIN
        )
        assert [link["code"] for link in listed.json()["links"]] == [after["code"]]

        letters = await dead_letters(infra.kafka_bootstrap, {(p, o) for p, o, _ in poison})
        for partition, offset, error_class in poison:
            letter = letters[(partition, offset)]
            assert letter["error_class"] == error_class
            assert letter["reason"]
        deep = next(letters[(p, o)] for p, o, c in poison if c == "NestedTooDeep")
        assert "nested deeper than 32 levels" in deep["reason"]

        partitions = len({p for p, _, _ in poison})
        text = (await http.get("/metrics")).text
        unreadable = "afflux_clicks_links_unreadable_total"
        assert metric(text, unreadable, source="topic", reason="too_deep") >= partitions
        assert metric(text, unreadable, source="topic", reason="not_json") >= partitions
        assert metric(text, "afflux_dlq_total", topic=LINKS.name, reason="too_deep") >= partitions


async def test_a_dead_letter_refused_for_itself_is_counted_and_the_letters_after_it_are_sent(
    infra: Any, app: FastAPI, campaign: CampaignTerms
) -> None:
    """A producer whose size limit the deep record's letter exceeds refuses that letter
    for itself, which no retry cures: it is counted as unsent, and the restore, the
    redirects and the smaller letters after it go on."""
    restorer = app.state.restorer
    small = new_producer(infra.kafka_bootstrap, max_request_size=50_000)
    await small.start()
    try:
        async with client_for(app) as http:
            link = await create_link(http, campaign.campaign_id, "https://shop.example.com/big")
            poison = await produce_poison(infra.kafka_bootstrap)
            # The restore at start-up and its letters are over: what is counted below is
            # the next restore's.
            await asyncio.wait_for(restorer.ready.wait(), 30)
            await restorer.close()
            text = (await http.get("/metrics")).text
            deep_sent = metric(text, "afflux_dlq_total", topic=LINKS.name, reason="too_deep")
            restorer.producer = small

            await wipe(app.state.redis, app.state.store.prefix)
            app.state.cache.clear()
            answer = await http.get(f"/c/{link['code']}")
            assert answer.status_code == 302, answer.text
            assert await app.state.store.is_complete()

            small_ones = {(p, o) for p, o, c in poison if c == "JSONDecodeError"}
            letters = await dead_letters(infra.kafka_bootstrap, small_ones)
            assert {letter["error_class"] for letter in letters.values()} == {"JSONDecodeError"}

            partitions = len({p for p, _, _ in poison})
            unsent = "afflux_clicks_dead_letters_unsent_total"
            async with asyncio.timeout(30):
                while True:
                    text = (await http.get("/metrics")).text
                    if metric(text, unsent, topic=LINKS.name) >= partitions:
                        break
                    await asyncio.sleep(0.1)
            assert (
                metric(text, "afflux_dlq_total", topic=LINKS.name, reason="too_deep") == deep_sent
            )
    finally:
        await restorer.close()  # before its producer stops
        await small.stop()


async def test_a_stored_link_that_cannot_be_read_is_restored_from_the_topic(
    app: FastAPI, campaign: CampaignTerms
) -> None:
    redis: Redis[bytes] = app.state.redis
    store = app.state.store
    async with client_for(app) as http:
        clicked = await create_link(http, campaign.campaign_id, "https://shop.example.com/deep")
        fetched = await create_link(http, campaign.campaign_id, "https://shop.example.com/text")
        await redis.set(f"{store.prefix}:link:{clicked['code']}", DEEP)
        await redis.set(f"{store.prefix}:link:{fetched['code']}", NOT_JSON)
        app.state.cache.clear()

        answer = await http.get(f"/c/{clicked['code']}")
        assert answer.status_code == 302, answer.text
        assert answer.headers["location"].startswith("https://shop.example.com/deep?afx_click=")
        stored = await redis.get(f"{store.prefix}:link:{clicked['code']}")
        assert decode_link(stored).code == clicked["code"]

        # The admin API says "being restored" (never 404 or 500), then answers the link.
        got = await http.get(f"/v1/links/{fetched['code']}", headers=ADMIN)
        for _ in range(100):
            assert got.status_code == 503, got.text
            assert "being restored" in got.json()["detail"][0]["reason"]
            await asyncio.sleep(0.1)
            got = await http.get(f"/v1/links/{fetched['code']}", headers=ADMIN)
            if got.status_code == 200:
                break
        assert got.status_code == 200, got.text
        assert got.json()["destination_url"] == "https://shop.example.com/text"

        text = (await http.get("/metrics")).text
        unreadable = "afflux_clicks_links_unreadable_total"
        assert metric(text, unreadable, source="redis", reason="too_deep") == 1
        assert metric(text, unreadable, source="redis", reason="not_json") == 1


async def test_a_restore_that_read_the_topic_before_a_link_was_dropped_leaves_redis_incomplete(
    infra: Any, app: FastAPI, campaign: CampaignTerms
) -> None:
    """Its read may lack the dropped link's record: marking Redis complete would leave that
    link answering 404; the restorer reads the topic again instead."""
    store = app.state.store
    await asyncio.wait_for(app.state.restorer.ready.wait(), 30)
    drops = store.drops
    read_before = await read_links(infra.kafka_bootstrap)
    async with client_for(app) as http:
        link = await create_link(http, campaign.campaign_id, "https://shop.example.com/late")
        await app.state.redis.set(f"{store.prefix}:link:{link['code']}", DEEP)
        assert await store.lookup(link["code"]) == (False, None)  # dropped

        await store.restore(read_before.links.values(), drops_before=drops)
        assert not await store.is_complete()

        await app.state.restorer()
        assert await store.is_complete()
        assert (await http.get(f"/c/{link['code']}")).status_code == 302
