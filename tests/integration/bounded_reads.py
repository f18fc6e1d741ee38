"""Broker reads for tests' polling checks, each try bounded.

aiokafka's group-coordinator lookup and offset fetch retry for ever on retriable errors,
and a polling helper checks its deadline only between checks: a read that hangs would
hold the test until the session's timeout instead of failing it, or instead of being
tried again once the loaded broker answers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

TRY_S = 20.0
TRIES = 3


async def bounded(read: Callable[[], Coroutine[Any, Any, T]], what: str) -> T:
    """``read()``'s answer, each try within ``TRY_S``; a try that hangs is made again.

    Each try runs on its own event loop in a thread of its own, left behind if it hangs:
    aiokafka's inner awaits can swallow a cancellation, so neither ``asyncio.wait_for``
    (which waits for the cancelled read to end) nor a task left on the caller's loop
    (which the loop's close waits for) would bound it."""
    for _ in range(TRIES):
        answer: Future[T] = Future()

        def attempt(answer: Future[T] = answer) -> None:
            try:
                answer.set_result(asyncio.run(read()))
            except BaseException as exc:  # the caller sees it, whatever it is
                answer.set_exception(exc)

        threading.Thread(target=attempt, name=f"bounded {what}", daemon=True).start()
        done, _ = await asyncio.wait({asyncio.wrap_future(answer)}, timeout=TRY_S)
        if done:
            return answer.result()
    raise AssertionError(f"{what}: no answer in {TRIES} tries of {TRY_S:.0f} s")
