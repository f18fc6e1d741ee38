"""What the webhook sender cannot use is dead-lettered item by item, and never stops it.

A conversion dated in the year 10000, written straight to the topic, decoded: building
its delivery's timestamp raised, the exception left the intake, and the payouts process
exited, then again on every restart (the batch was never committed). A packed record
with one bad item was skipped whole: its good conversion, in the ledger, never reached
an endpoint, and nothing was dead-lettered for it.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis
from aiokafka.structs import ConsumerRecord
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from test_webhooks import Program, conversion, directory_of, harness, new_program, until
from webhook_receiver import Receiver

from afflux.cli.embedded import start_redis
from afflux.cli.processes import free_port
from afflux.cli.scenario_checks import read_topic
from afflux.payouts.webhooks.intake import Intake, decoded_items
from afflux.payouts.webhooks.metrics import WebhookMetrics
from afflux.payouts.webhooks.policy import Endpoint
from afflux.payouts.webhooks.redis_store import WebhookStore
from afflux.payouts.webhooks.routing import jobs_for
from afflux.shared.events import ConversionAttributed, DeadLetter
from afflux.shared.io.kafka import new_producer
from afflux.shared.io.redis_client import BusyScriptError
from afflux.shared.topics import CONVERSIONS, DLQ
from afflux.shared.wire import encode

pytestmark = pytest.mark.integration

YEAR_10000 = 253_402_300_800_000


def _value(event: ConversionAttributed, **changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(encode(event))
    value.update(changes)
    return value


async def _send(bootstrap: str, values: list[bytes]) -> set[tuple[int, int]]:
    """Writes ``values`` and answers where they landed (partition, offset)."""
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        placed = set()
        for value in values:
            meta = await producer.send_and_wait(CONVERSIONS.name, value, key=b"k")
            placed.add((meta.partition, meta.offset))
        return placed
    finally:
        await producer.stop()


async def _letters(
    bootstrap: str, consumer: str, sent: set[tuple[int, int]] | None = None
) -> list[DeadLetter]:
    """The sender's dead letters (for the records this test wrote, when ``sent``), once
    each: a batch read again (a rebalance before its commit) sends the same letters again,
    under the same derived ids. The topic is shared with the session's other tests, whose
    hostile records a new consumer group reads too."""
    found = await read_topic(bootstrap, DLQ.name, idle_s=1.0)
    mine = {
        e.event_id: e
        for e in found
        if isinstance(e, DeadLetter)
        and e.consumer == consumer
        and (sent is None or (e.source_partition, e.source_offset) in sent)
    }
    return list(mine.values())


async def test_bad_items_are_dead_lettered_and_the_good_ones_delivered(infra: Any) -> None:
    program = new_program(creators=1)
    receiver = Receiver()
    async with harness(infra, program, receiver) as h:
        await h.register("affiliate", program.creators[0], "/creator", ["conversion.attributed"])
        far = _value(conversion(program, 0), occurred_at=YEAR_10000)
        packed = [_value(conversion(program, 1)), {"type": "Bogus"}]
        sent = await _send(
            infra.kafka_bootstrap,
            [json.dumps(far).encode(), json.dumps(packed).encode(), encode(conversion(program, 2))],
        )
        wanted = {conversion(program, n).event_id for n in (1, 2)}
        await until(
            lambda: receiver.events("/creator") == {"conversion.attributed": wanted},
            60,
            "the packed record's good item and the later conversion delivered",
        )
        letters = await _letters(infra.kafka_bootstrap, h.settings.webhooks_group_id, sent)
        reasons = sorted(letter.reason for letter in letters)
        assert len(reasons) == 2, reasons
        assert "event time must be at most 253402300799999" in reasons[0] + reasons[1]
        assert any("Bogus" in r or "type" in r for r in reasons), reasons


async def test_an_event_whose_delivery_cannot_be_built_is_reported_the_rest_routed(
    infra: Any,
) -> None:
    """Past the decoder (an event made in this process, or a bound loosened later): one
    event whose body raises is reported by index, the others get their jobs."""
    program: Program = new_program(creators=1)
    async with harness(infra, program, Receiver()) as h:
        await h.register("affiliate", program.creators[0], "/c", ["conversion.attributed"])
        good = conversion(program, 0)
        far = conversion(program, 1).model_copy(update={"occurred_at": YEAR_10000})
        routed = await jobs_for(h.store, directory_of(program), [far, good], now=0)
        assert [n for n, _ in routed.failed] == [0]
        assert isinstance(routed.failed[0][1], ValueError)
        assert [job.event_id for job in routed.jobs] == [good.event_id]


def test_a_packed_record_is_read_item_by_item() -> None:
    good = encode(conversion(new_program(creators=1), 0))
    record: ConsumerRecord[bytes, bytes] = ConsumerRecord(
        CONVERSIONS.name, 0, 7, 0, 0, b"k", b"[" + good + b', {"type": "Bogus"}, 3]', None, 0, 0, []
    )
    items, refused = decoded_items({"tp": [record]})  # type: ignore[dict-item]
    assert [(i.index, i.event.event_id) for i in items] == [(0, json.loads(good)["event_id"])]
    assert [r.index for r in refused] == [1, 2]
    assert "must be a JSON object" in refused[1].reason


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A Redis of this test's own: a script keeps it busy for seconds."""
    port = free_port()
    child = start_redis(port, tmp_path / "data", tmp_path / "logs")
    try:
        yield f"redis://127.0.0.1:{port}/0", port
    finally:
        child.stop()


def _busy_for(port: int, seconds: float) -> None:
    """Run a script that answers nothing for ``seconds``: past 50 ms Redis answers every
    other client BUSY."""
    client = sync_redis.Redis(port=port)
    client.config_set("lua-time-limit", 50)
    spin = (
        "local s = redis.call('TIME'); local t0 = s[1] * 1000000 + s[2]; while true do"
        " local n = redis.call('TIME'); if n[1] * 1000000 + n[2] - t0 > tonumber(ARGV[1])"
        " then break end end; return 1"
    )
    try:
        client.eval(spin, 0, int(seconds * 1e6))
    finally:
        client.close()


async def test_a_busy_redis_is_waited_for_not_taken_for_bad_events(
    infra: Any, own_redis: tuple[str, int]
) -> None:
    """A long script makes Redis answer BUSY for a while: the batch is scheduled once it
    is back. It was taken for events no delivery could be made of: each dead-lettered,
    the batch committed, the deliveries lost."""
    url, port = own_redis
    redis: Redis[bytes] = Redis.from_url(url)
    program = new_program(creators=1)
    store = WebhookStore(redis)
    await store.add(
        Endpoint("ep-1", "affiliate", program.creators[0], "http://127.0.0.1:9/x",
                 ("conversion.attributed",), "s" * 32, 0)
    )  # fmt: skip
    group = f"webhooks-{uuid.uuid4().hex[:8]}"
    intake = Intake(
        bootstrap=infra.kafka_bootstrap,
        group_id=group,
        store=store,
        directory=directory_of(program),
        metrics=WebhookMetrics(CollectorRegistry()),
        clock=lambda: int(time.time() * 1000),
        wake=asyncio.Event(),
    )
    records = [
        ConsumerRecord(CONVERSIONS.name, 0, n, 0, 0, b"k", encode(conversion(program, n)),
                       None, 0, 0, [])
        for n in range(3)
    ]  # fmt: skip
    await intake.producer.start()
    busy = threading.Thread(target=_busy_for, args=(port, 1.5))
    try:
        busy.start()
        await asyncio.sleep(0.3)  # past the script's 50 ms: BUSY to everyone else
        await intake._schedule({"tp": records})  # type: ignore[dict-item]
    finally:
        busy.join()
        await intake.producer.stop()
    assert await store.pending() == 3
    assert await _letters(infra.kafka_bootstrap, group) == []
    await redis.aclose()


async def test_a_busy_reply_is_raised_as_its_own_class(own_redis: tuple[str, int]) -> None:
    """Every consumer's "Redis away" test (``REDIS_DOWN``, ``redis_away``) knows it, alone
    or in a pipeline: as a plain ResponseError the ledger dead-lettered each item of the
    batch that met it."""
    url, port = own_redis
    redis: Redis[bytes] = Redis.from_url(url)
    busy = threading.Thread(target=_busy_for, args=(port, 1.0))
    busy.start()
    try:
        await asyncio.sleep(0.3)
        with pytest.raises(BusyScriptError):
            await redis.set("k", "v")
        pipe = redis.pipeline(transaction=False)
        pipe.get("k")
        with pytest.raises(BusyScriptError):
            await pipe.execute()
        await pipe.reset()
    finally:
        busy.join()
        await redis.aclose()
