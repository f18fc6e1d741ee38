"""Coalesce concurrent single calls into batch calls: per event-loop turn, and behind the
batches already running."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    """``await submit(item)`` runs ``batch(items)`` once for everything submitted in one turn.

    Requests handled in the same loop iteration share one batch; a lone request
    pays nothing extra (the flush is scheduled with call_soon). With
    ``max_in_flight``, while that many batches run, what is submitted waits and
    goes as one batch when one of them ends (group commit): under load each batch
    then holds what arrived during the previous one, so the number of batches per
    second stays near ``max_in_flight`` over a batch's latency however many
    requests come in.
    """

    def __init__(
        self,
        batch: Callable[[Sequence[T]], Awaitable[Sequence[R]]],
        max_size: int = 1000,
        max_in_flight: int | None = None,
    ) -> None:
        self._batch = batch
        self._max = max_size
        self._max_in_flight = max_in_flight
        self._in_flight = 0
        self._items: list[T] = []
        self._waiters: list[asyncio.Future[R]] = []
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._started: set[asyncio.Future[R]] = set()  # waiters whose batch has started

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

    def started(self, waiter: asyncio.Future[R]) -> bool:
        """Whether ``waiter``'s item was handed to a batch (it may be produced by now)."""
        return waiter in self._started

    def _flush(self) -> None:
        self._scheduled = False
        limit = self._max_in_flight
        if any(w.cancelled() for w in self._waiters):
            # A caller that gave up while its item waited (its deadline passed behind a
            # batch the broker did not answer): the item is never run.
            kept = [
                (i, w) for i, w in zip(self._items, self._waiters, strict=True) if not w.cancelled()
            ]
            self._items, self._waiters = [i for i, _ in kept], [w for _, w in kept]
        # Beyond the limit the items wait: the next batch to end starts them.
        while self._items and (limit is None or self._in_flight < limit):
            items, waiters = self._items[: self._max], self._waiters[: self._max]
            self._items, self._waiters = self._items[self._max :], self._waiters[self._max :]
            self._in_flight += 1
            self._started.update(waiters)
            task = asyncio.get_running_loop().create_task(self._run(items, waiters))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, items: list[T], waiters: list[asyncio.Future[R]]) -> None:
        try:
            await self._settle(items, waiters)
        finally:
            self._started.difference_update(waiters)
            self._in_flight -= 1
            if self._items:
                self._flush()

    async def _settle(self, items: list[T], waiters: list[asyncio.Future[R]]) -> None:
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
