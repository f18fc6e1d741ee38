"""Read events back from topics, as a platform team's consumer would."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer

from afflux.shared.events import AnyEvent
from afflux.shared.wire import UndecodableRecord, decode_record


async def read_events(
    bootstrap: str,
    topic: str,
    *,
    until: Callable[[list[AnyEvent]], bool] = lambda _: False,
    timeout_s: float = 30.0,
    settle_s: float = 0.0,
) -> list[AnyEvent]:
    """Every event on ``topic`` from the beginning, read until ``until`` holds or time runs out.

    With ``settle_s`` the read goes on that long after ``until`` first holds, so a
    duplicate that would follow shows up in the result.
    """
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    events: list[AnyEvent] = []
    deadline = time.monotonic() + timeout_s
    satisfied_at: float | None = None
    try:
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            for records in batches.values():
                for record in records:
                    try:
                        events.extend(decode_record(record.value))
                    except UndecodableRecord:
                        continue
            if satisfied_at is None and until(events):
                satisfied_at = time.monotonic()
            if satisfied_at is not None and time.monotonic() - satisfied_at >= settle_s:
                break
    finally:
        await consumer.stop()
    return events


def read_events_sync(bootstrap: str, topic: str, **kwargs: object) -> list[AnyEvent]:
    return asyncio.run(read_events(bootstrap, topic, **kwargs))  # type: ignore[arg-type]
