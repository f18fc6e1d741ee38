"""Stopping background tasks at shutdown never hangs on a task that ignores its cancel."""

from __future__ import annotations

import asyncio
import time

import pytest

from afflux.shared.io.background import cancel_and_wait

pytestmark = pytest.mark.unit


async def _swallows_cancellation(stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            continue  # as a client library's teardown can: the cancel is lost


async def test_a_task_that_swallows_its_cancel_is_left_behind_after_the_wait() -> None:
    stop = asyncio.Event()
    stuck = asyncio.create_task(_swallows_cancellation(stop), name="stuck")
    obedient = asyncio.create_task(asyncio.sleep(3600), name="obedient")
    await asyncio.sleep(0)  # both are running, waiting in their sleep
    started = time.monotonic()

    await cancel_and_wait([stuck, obedient], timeout_s=0.2)

    assert time.monotonic() - started < 2
    assert obedient.cancelled()
    assert not stuck.done()
    stop.set()
    stuck.cancel()
    await asyncio.wait([stuck], timeout=1)


async def test_a_task_that_failed_before_shutdown_does_not_stop_the_others_stopping() -> None:
    async def fails() -> None:
        raise RuntimeError("lost the connection")

    failed = asyncio.create_task(fails())
    await asyncio.sleep(0)
    running = asyncio.create_task(asyncio.sleep(3600))

    await cancel_and_wait([failed, running], timeout_s=1)

    assert running.cancelled()
    assert isinstance(failed.exception(), RuntimeError)
