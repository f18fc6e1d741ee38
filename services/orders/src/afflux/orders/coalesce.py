"""Coalesce concurrent single calls into one batch call per event-loop turn."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    """``await submit(item)`` runs ``batch(items)`` once for everything submitted in one turn.

    Requests handled in the same loop iteration share one Redis round trip; a
    lone request pays nothing extra (the flush is scheduled with call_soon).
    """

    def __init__(
        self, batch: Callable[[Sequence[T]], Awaitable[Sequence[R]]], max_size: int = 1000
    ) -> None:
        self._batch = batch
        self._max = max_size
        self._items: list[T] = []
        self._waiters: list[asyncio.Future[R]] = []
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, item: T) -> asyncio.Future[R]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._items.append(item)
        self._waiters.append(future)
        if len(self._items) >= self._max:
            self._flush()
        elif not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._scheduled = False
        if not self._items:
            return
        items, waiters = self._items, self._waiters
        self._items, self._waiters = [], []
        task = asyncio.get_running_loop().create_task(self._run(items, waiters))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, items: list[T], waiters: list[asyncio.Future[R]]) -> None:
        try:
            results = await self._batch(items)
        except Exception as exc:  # handed to every caller of this batch
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(exc)
            return
        for waiter, result in zip(waiters, results, strict=True):
            if not waiter.done():
                waiter.set_result(result)
