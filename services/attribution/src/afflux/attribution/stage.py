"""What both stages share: owned partitions, recovery, safe time, and the write order.

Write order, for every batch (a record in an agent, a timer tick): the events
to emit are sent and acknowledged first, the state changes after. A crash in
between leaves the old state, the input is read again from the committed
offset, and the same events are emitted again with the same ids; state is never
ahead of what was emitted.

Safe time: an order waits until everything that reached the broker before its
deadline has been read. Each timer tick notes the high watermarks of the
stage's input partitions; once everything up to a note has been processed, the
note's wall-clock time is safe.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from afflux.attribution.changelog import read_partitions

log = logging.getLogger(__name__)


class PartitionState(Protocol):
    dirty: set[str]

    def take_dirty(self) -> list[tuple[str, bytes | None]]: ...
    def restore(self, key: str, value: bytes) -> None: ...


S = TypeVar("S", bound=PartitionState)
HighWater = Callable[[str, int], tuple[int, int] | None]  # (high watermark, seen at ms)
SKEW_MS = 1_000
OutRecord = tuple[str, bytes, bytes, int | None]  # topic, key, value, partition
Send = Callable[[str, bytes | None, bytes | None, int | None], Awaitable[Awaitable[Any]]]


@dataclass
class Note:
    at_ms: int
    highs: dict[str, int]


@dataclass
class Owned(Generic[S]):
    state: S
    consumed: dict[str, int] = field(default_factory=dict)  # topic -> next offset to process
    notes: deque[Note] = field(default_factory=deque)
    safe_ms: int = 0


class Stage(Generic[S]):
    """One stage's partitions on this worker."""

    def __init__(
        self,
        name: str,
        inputs: tuple[str, ...],
        changelog: str,
        new_state: Callable[[], S],
        bootstrap: str,
    ) -> None:
        self.name = name
        self.inputs = inputs
        self.changelog = changelog
        self.new_state = new_state
        self.bootstrap = bootstrap
        self.owned: dict[int, Owned[S]] = {}
        self.loading: dict[int, asyncio.Future[None]] = {}
        self.lock = asyncio.Lock()

    # -- ownership -------------------------------------------------------------

    def assigned(self, partitions: set[int]) -> None:
        """The partitions of this stage the group gave us (a full assignment)."""
        for p in list(self.owned):
            if p not in partitions:
                del self.owned[p]
        for p in list(self.loading):
            if p not in partitions:
                self.loading.pop(p).cancel()
        todo = [p for p in partitions if p not in self.owned and p not in self.loading]
        if todo:
            task = asyncio.ensure_future(self._load(todo))
            for p in todo:
                self.loading[p] = task

    async def _load(self, partitions: list[int]) -> None:
        tables = await read_partitions(self.bootstrap, self.changelog, partitions)
        for p, table in tables.items():
            if self.loading.get(p) is None:
                continue  # revoked meanwhile
            state = self.new_state()
            for key, value in table.items():
                if value is None:
                    continue
                try:
                    state.restore(key, value)
                except Exception:  # a bad changelog record loses its key, never the partition
                    log.exception("%s[%d]: changelog key %r not restored", self.name, p, key)
            state.dirty.clear()
            self.owned[p] = Owned(state)
            del self.loading[p]
        log.info("%s: recovered partitions %s", self.name, partitions)

    async def partition(self, p: int) -> Owned[S] | None:
        """The partition's state, waiting for its recovery; None when not ours."""
        owned = self.owned.get(p)
        if owned is not None:
            return owned
        loading = self.loading.get(p)
        if loading is None:
            return None
        await asyncio.shield(loading)
        return self.owned.get(p)

    def ready(self) -> bool:
        return not self.loading

    # -- safe time -------------------------------------------------------------

    def note(self, highwater: HighWater, start: Callable[[str, int], int]) -> None:
        """Advance each partition's safe time; note the current high watermarks.

        A note holds as of the oldest fetch answer it uses, less ``SKEW_MS`` for
        records stamped by their producer a little before the broker took them.
        """
        for p, owned in self.owned.items():
            highs = {}
            seen_at = []
            for topic in self.inputs:
                known = highwater(topic, p)
                if known is None:
                    break
                highs[topic], polled = known
                seen_at.append(polled)
            else:
                at = min(seen_at) - SKEW_MS
                if not owned.notes or owned.notes[-1].at_ms < at:
                    owned.notes.append(Note(at, highs))
            while owned.notes:
                first = owned.notes[0]
                if all(owned.consumed.get(t, start(t, p)) >= h for t, h in first.highs.items()):
                    owned.safe_ms = first.at_ms
                    owned.notes.popleft()
                else:
                    break

    # -- writing ---------------------------------------------------------------

    async def flush(self, p: int, state: S, records: Iterable[OutRecord], send: Send) -> int:
        """Send ``records`` and wait for them, then write the changed keys; return the count."""
        pending = [await send(topic, key, value, part) for topic, key, value, part in records]
        if pending:
            await asyncio.gather(*pending)
        if state.dirty:
            for key, value in state.take_dirty():
                await send(self.changelog, key.encode(), value, p)
        return len(pending)
