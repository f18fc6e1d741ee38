"""Stopping a service's background tasks at shutdown without ever hanging on one."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)

STOP_WAIT_S = 5.0


async def cancel_and_wait(
    tasks: Sequence[asyncio.Task[Any]], timeout_s: float = STOP_WAIT_S
) -> None:
    """Cancel ``tasks`` and wait at most ``timeout_s`` for them to end.

    A task can swallow its cancellation inside a client library (a blocking Redis read
    being torn down, a broker that never answers; seen in the orders service's outcome
    consumer inside aiokafka's ``getmany``), and awaiting it would then hold the
    shutdown for ever; such a task is named in the log and left behind with the process.
    """
    for task in tasks:
        task.cancel()
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=timeout_s)
    for task in pending:
        log.warning("background task %s did not stop within %.0f s", task.get_name(), timeout_s)
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: a failure at shutdown is not an unhandled error


def stop_if_cancelled() -> None:
    """Raise CancelledError when the task was asked to stop but the request did not
    surface: a client library (redis-py, aiokafka) that catches a cancellation landing
    inside one of its calls would otherwise leave a loop running for ever. Called at
    the top of every long-running loop."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
