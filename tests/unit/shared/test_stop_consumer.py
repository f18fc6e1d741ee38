"""A consumer whose fetch routine swallowed the first cancellation still stops."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from afflux.shared.io.kafka import stop_consumer

pytestmark = pytest.mark.unit


class _Fetcher:
    """aiokafka's fetcher in the state seen in the hung stop: its routine ignores
    ``ignored`` cancellations (one inner await swallowed it) and ends on the next."""

    def __init__(self, ignored: int) -> None:
        self.ignored = ignored
        self._fetch_task = asyncio.ensure_future(self._routine())

    async def _routine(self) -> None:
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if self.ignored == 0:
                    return
                self.ignored -= 1

    async def close(self) -> None:
        self._fetch_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._fetch_task


class _Consumer:
    def __init__(self, ignored: int) -> None:
        self._fetcher = _Fetcher(ignored)

    async def stop(self) -> None:
        await self._fetcher.close()


@pytest.mark.parametrize(("ignored", "stops"), [(0, True), (1, True), (2, True), (5, False)])
async def test_a_consumer_stops_when_its_fetch_routine_swallowed_cancellations(
    ignored: int, stops: bool
) -> None:
    consumer: Any = _Consumer(ignored)
    assert await stop_consumer(consumer, timeout_s=0.05) is stops
    assert consumer._fetcher._fetch_task.done() is stops
    consumer._fetcher.ignored = 0  # let a routine that outlived the helper end
    consumer._fetcher._fetch_task.cancel()
    await asyncio.wait({consumer._fetcher._fetch_task}, timeout=1)
