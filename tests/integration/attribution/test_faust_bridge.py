"""The private Faust attributes the worker reads (afflux.attribution.faust_bridge) exist
and answer on a running app of the installed faust-streaming: an upgrade that renames
one fails here, naming the path, instead of leaving the safe time stuck."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import faust
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from afflux.attribution.faust_bridge import (
    PRIVATE_PATHS,
    FaustChanged,
    highwater,
    learn_partition_counts,
    missing_private_paths,
    partition_count,
    require_private_paths,
    shorten_fetch_wait,
)
from afflux.bench.feed import partition_of
from afflux.shared.io.kafka import new_producer
from afflux.shared.topics import CLICKS

pytestmark = pytest.mark.integration

PARTITIONS = 4  # the private broker's topics (conftest.py)
KEY = "bridge-visitor"


def probe_app(bootstrap: str, datadir: Path) -> tuple[faust.App, asyncio.Event]:
    """A Faust app configured like the worker's, with one agent on ``clicks``."""
    app = faust.App(
        "bridge-probe",
        broker=f"kafka://{bootstrap}",
        store="memory://",
        autodiscover=False,
        web_enabled=False,
        topic_allow_declare=False,
        topic_disable_leader=True,
        datadir=str(datadir),
        broker_session_timeout=6,
        broker_heartbeat_interval=1,
        consumer_auto_offset_reset="earliest",
    )
    topic = app.topic(CLICKS.name, key_serializer="raw", value_serializer="raw", internal=False)
    seen = asyncio.Event()

    @app.agent(topic, name="probe")
    async def probe(stream: Any) -> None:
        async for _ in stream:
            seen.set()

    return app, seen


async def answered_highwater(app: Any, p: int) -> tuple[int, int] | None:
    """The partition's high watermark once a fetch timed by the worker's wrapper (set
    up with the fetch wait, as the worker does) has answered for it."""
    await shorten_fetch_wait(app)
    for _ in range(100):
        known = highwater(app, CLICKS.name, p)
        if known is not None:
            return known
        await asyncio.sleep(0.1)
    return None


async def scenario(bootstrap: str, datadir: Path) -> dict[str, Any]:
    p = partition_of(KEY, PARTITIONS)
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(CLICKS.name, b"{}", key=KEY.encode(), partition=p)
    finally:
        await producer.stop()
    app, seen = probe_app(bootstrap, datadir)
    before_start = missing_private_paths(app)
    await app.start()
    try:
        await asyncio.wait_for(seen.wait(), timeout=60)
        # As the worker does at start: Apache Kafka names in metadata only the topics
        # asked for, so the producer learns a topic's size only when asked (or sent to).
        await learn_partition_counts(app, (CLICKS.name,))
        return {
            "before_start": before_start,
            "running": missing_private_paths(app, running=True),
            "highwater": await answered_highwater(app, p),
            "checked_at": int(time.time() * 1000),
            "partitions": partition_count(app, CLICKS.name),
        }
    finally:
        await app.stop()


def test_every_private_faust_path_exists_and_answers_on_a_running_app(
    private_broker: tuple[str, Path], tmp_path: Path
) -> None:
    bootstrap, _ = private_broker
    found = asyncio.run(scenario(bootstrap, tmp_path))
    assert found["before_start"] == []
    assert found["running"] == []
    high = found["highwater"]
    assert high is not None, "no fetch high watermark through app.consumer._thread"
    assert high[0] >= 1
    assert high[1] > 0
    # Dated by the fetch request the worker's own wrapper timed (time_fetches).
    assert high[1] <= found["checked_at"]
    assert found["partitions"] == PARTITIONS


def test_a_missing_private_path_is_named_and_stops_the_start() -> None:
    class Renamed:  # what an app looks like to the bridge after the attributes moved
        consumer = object()
        producer = object()

    missing = missing_private_paths(Renamed())  # type: ignore[arg-type]
    assert missing == [f"app.{path} ({purpose})" for purpose, path in PRIVATE_PATHS]
    with pytest.raises(FaustChanged, match=r"consumer\._thread\._ensure_consumer"):
        require_private_paths(Renamed())  # type: ignore[arg-type]


def test_the_admin_request_rebuild_sends_still_exists_on_aiokafka() -> None:
    # afflux attribution rebuild deletes the group through it (test_divergence.py runs it).
    assert callable(getattr(AIOKafkaAdminClient, "_send_request", None))
