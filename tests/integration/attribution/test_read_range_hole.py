"""The read-back of skipped records (afflux.attribution.gaps) over a hole in the log,
offsets that hold no record as a broker killed mid-write can leave: it returns what
is there and never waits for the missing offsets (which would end in its TimeoutError
after about 15 s without an answer)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from log_holes import write_after_hole

from afflux.attribution.gaps import log_end, read_range
from afflux.shared.io.kafka import new_producer

pytestmark = pytest.mark.integration

TOPIC = "hole-read-back"


async def log_with_a_hole(bootstrap: str) -> None:
    """Offsets 0 and 3, 4 hold records; 1 and 2 hold none."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(TOPIC, 1, 1)])
    finally:
        await admin.close()
    await send_one(bootstrap, b"r0")
    await write_after_hole(bootstrap, TOPIC, 0, b"k", b"r3", hole=2)
    await send_one(bootstrap, b"r4")


async def send_one(bootstrap: str, value: bytes) -> None:
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        await (await producer.send(TOPIC, value, key=b"k", partition=0))
    finally:
        await producer.stop()


def test_reading_back_over_a_hole_returns_what_the_log_holds_at_once(
    private_broker: tuple[str, Path],
) -> None:
    bootstrap, _ = private_broker
    asyncio.run(log_with_a_hole(bootstrap))
    only_hole = asyncio.run(read_range(bootstrap, TOPIC, 0, 1, 3))
    around = asyncio.run(read_range(bootstrap, TOPIC, 0, 0, 5))
    assert only_hole == []
    assert [(r.offset, r.value) for r in around] == [(0, b"r0"), (3, b"r3"), (4, b"r4")]


def test_the_log_end_asked_of_the_broker_is_past_the_last_record(
    private_broker: tuple[str, Path],
) -> None:
    bootstrap, _ = private_broker
    if not asyncio.run(_has_topic(bootstrap)):
        asyncio.run(log_with_a_hole(bootstrap))
    assert asyncio.run(log_end(bootstrap, TOPIC, 0)) == 5


async def _has_topic(bootstrap: str) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return TOPIC in await admin.list_topics()
    finally:
        await admin.close()


async def test_asking_a_stalled_broker_for_a_log_end_gives_up_within_seconds() -> None:
    """A broker that takes connections and never answers (stopped, or its host stalled)."""
    held: list[asyncio.StreamWriter] = []

    async def silent(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    started = asyncio.get_running_loop().time()
    try:
        with pytest.raises((TimeoutError, KafkaError)):
            await log_end(f"127.0.0.1:{port}", TOPIC, 0, timeout_s=1.0)
        assert asyncio.get_running_loop().time() - started < 20
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()
