"""Broker reads for tests' polling checks, each try bounded.

aiokafka's group-coordinator lookup and offset fetch retry for ever on retriable errors,
and a polling helper checks its deadline only between checks: a read that hangs would
hold the test until the session's timeout instead of failing it, or instead of being
tried again once the loaded broker answers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

TRY_S = 20.0
TRIES = 3


async def bounded(read: Callable[[], Coroutine[Any, Any, T]], what: str) -> T:
    """``read()``'s answer, each try within ``TRY_S``; a try that hangs is made again.

    Not ``asyncio.wait_for``: on its timeout it cancels the read and then waits for the
    read to end, and aiokafka's inner awaits can swallow a cancellation, so that wait
    could be as endless as the read. A try that hangs is cancelled and left behind."""
    for _ in range(TRIES):
        attempt = asyncio.ensure_future(read())
        done, _ = await asyncio.wait({attempt}, timeout=TRY_S)
        if done:
            return attempt.result()
        attempt.cancel()
    raise AssertionError(f"{what}: no answer in {TRIES} tries of {TRY_S:.0f} s")
