"""Which partitions of a stage this worker owns: recovery from the stage's changelog,
the check against the input logs at every assignment, and partitions stopped for
good when their state no longer matches their input (see divergence.py).

A partition's records wait until it is recovered or checked (``partition``);
``/healthz`` answers 503 meanwhile (``ready``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from aiokafka import TopicPartition
from aiokafka.errors import OffsetOutOfRangeError

from afflux.attribution.changelog import read_partitions, read_tails
from afflux.attribution.divergence import Position, check_inputs, committed_offsets
from afflux.attribution.join import CONTENT_KEY, WATERMARK_KEY, Failed
from afflux.attribution.store import INDEXES_KEY, DiskKeys, DiskStores, LocalStore
from afflux.attribution.timer_indexes import dump_indexes, load_indexes

log = logging.getLogger(__name__)

# The changelog key of a partition's input position: per input topic, the offset and
# fingerprint of the last record consumed (see divergence.py).
POSITION_KEY = "\x00position"


class PartitionState(Protocol):
    dirty: set[str]

    def take_dirty(self) -> list[tuple[str, bytes | None]]: ...
    def restore(self, key: str, value: bytes) -> None: ...
    def take_failed(self) -> list[Failed]: ...
    def forget(self, key: str) -> None: ...


S = TypeVar("S", bound=PartitionState)


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
    last: dict[str, Position] = field(default_factory=dict)  # topic -> last record consumed
    written: dict[str, Position] = field(default_factory=dict)  # ``last`` as in the changelog
    local: LocalStore | None = None  # the disk store's database (None: state in memory)


class Partitions(Generic[S]):
    """One stage's partitions on this worker: owned, loading, or stopped (diverged)."""

    def __init__(
        self,
        name: str,
        inputs: tuple[str, ...],
        changelog: str,
        new_state: Callable[[LocalStore | None], S],
        bootstrap: str,
        group: str | None = None,
        disk: DiskStores | None = None,
    ) -> None:
        self.name = name
        self.group = group  # the consumer group whose committed offsets are checked
        self.inputs = inputs
        self.changelog = changelog
        self.new_state = new_state
        self.bootstrap = bootstrap
        self.disk = disk  # None: state in memory, recovered from the whole changelog
        self.owned: dict[int, Owned[S]] = {}
        self.loading: dict[int, asyncio.Future[None]] = {}
        # Partitions whose state no longer matches their input log, with why: never
        # processed again by this process (see divergence.py and docs/reliability.md).
        self.diverged: dict[int, str] = {}
        self.lock = asyncio.Lock()
        # The disk store's partitions recovered before the first assignment (``warm_up``),
        # taken by the recovery at assignment, which then reads only what came after.
        self.warm: dict[int, Owned[S]] = {}
        self.warming: asyncio.Future[None] | None = None
        # Partitions the group revoked, kept aside until the assignment that ends the
        # rebalance: owned again (memory and all) if it gives them back, else dropped.
        self.parked: dict[int, Owned[S]] = {}

    def warm_up(self) -> None:
        """Recover the partitions this worker's disk store holds while the group join is
        still under way (a restarted static member gets them back), so that the recovery
        at assignment reads only the changelog written since. Nothing is owned or
        processed before the assignment, and what it does not assign is dropped."""
        if self.disk is None or self.warming is not None or self.owned or self.loading:
            return  # never beside an assignment's recovery or a partition in use
        held = self.disk.held()
        if held:
            self.warming = asyncio.ensure_future(self._warm(self.disk, held))

    async def _warm(self, disk: DiskStores, partitions: list[int]) -> None:
        try:
            self.warm = await self._load_local(disk, partitions)
        except Exception:  # the assignment's recovery reads them as it would have
            log.warning("%s: recovery ahead of the assignment failed", self.name, exc_info=True)
            self.warm = {}
        else:
            log.info("%s: partitions %s recovered ahead of the assignment", self.name, partitions)

    def revoked(self, partitions: set[int]) -> None:
        """The group took these partitions back at the start of a rebalance: from now
        until the assignment that ends it, nothing of them is processed, decided, read
        back or written. Another worker may recover them as soon as the group assigns
        them, before this worker hears of that assignment (seconds later, under load): a
        tick or a read-back here meanwhile would write keys after its recovery read, which
        the next recovery would take over what it wrote since (a click it applied, lost
        again, and the order it won left unattributed). Kept aside (``parked``), they are
        owned again, memory and all, if the assignment gives them back."""
        for p in partitions:
            owned = self.owned.pop(p, None)
            if owned is not None:
                self.parked[p] = owned
            # Not cancelled: a recovery or check task may serve other partitions; it
            # drops the ones no longer loading under it when it ends (``_adopt``).
            self.loading.pop(p, None)

    def assigned(self, partitions: set[int]) -> None:
        """The partitions of this stage the group gave us (a full assignment)."""
        parked, self.parked = self.parked, {}
        for p, owned in parked.items():
            if p in partitions and p not in self.owned and p not in self.loading:
                self.owned[p] = owned  # given back: checked below as any kept partition
        for p in list(self.owned):
            if p not in partitions:
                del self.owned[p]
        for p in list(self.loading):
            if p not in partitions:
                # Not cancelled: one task loads or checks several partitions; it drops
                # the ones no longer its own when it ends (see ``_adopt``).
                del self.loading[p]
        todo = [
            p
            for p in partitions
            if p not in self.owned and p not in self.loading and p not in self.diverged
        ]
        kept = [p for p in partitions if p in self.owned and p not in self.loading]
        if todo:
            task = asyncio.ensure_future(self._load(todo))
            for p in todo:
                self.loading[p] = task
        if kept:  # the log may have changed under a partition we kept (a broker lost it)
            task = asyncio.ensure_future(self._recheck(kept))
            for p in kept:
                self.loading[p] = task

    async def _load(self, partitions: list[int]) -> None:
        if self.disk is not None:
            if self.warming is not None:
                await asyncio.shield(self.warming)
            # Taken once: a partition assigned later is recovered from its store again.
            warm = {p: self.warm[p] for p in partitions if p in self.warm}
            self.warm = {}
            await self._adopt(await self._load_local(self.disk, partitions, warm))
            log.info("%s: recovered partitions %s from the local store", self.name, partitions)
            return
        tables = await read_partitions(self.bootstrap, self.changelog, partitions)
        loaded: dict[int, Owned[S]] = {}
        for p, table in tables.items():
            state = self.new_state(None)
            position = table.pop(POSITION_KEY, None)
            for key, value in table.items():
                if value is None:
                    continue
                try:
                    state.restore(key, value)
                except Exception:  # a bad changelog record loses its key, never the partition
                    log.exception("%s[%d]: changelog key %r not restored", self.name, p, key)
            state.dirty.clear()
            owned = loaded[p] = Owned(state)
            if position is not None:
                owned.last = {t: (int(o), str(f)) for t, (o, f) in json.loads(position).items()}
                owned.written = dict(owned.last)
        await self._adopt(loaded)
        log.info("%s: recovered partitions %s", self.name, partitions)

    async def _load_local(
        self, disk: DiskStores, partitions: list[int], warm: dict[int, Owned[S]] | None = None
    ) -> dict[int, Owned[S]]:
        """Each partition from its local store and the changelog after the store's marker;
        from the whole changelog into an emptied store when the marker is not on it.
        ``warm``: partitions already recovered (``warm_up``) up to their store's marker,
        whose state the changelog after it is applied to."""
        warm = dict(warm or {})
        stores = {p: disk.open(p) for p in partitions}
        starts = {p: local.marker() for p, local in stores.items()}
        try:
            tails = await read_tails(self.bootstrap, self.changelog, starts)
        except OffsetOutOfRangeError:
            log.warning(
                "%s: a local store's changelog offset is not on the changelog %s; reading"
                " the whole changelog of partitions %s",
                self.name,
                self.changelog,
                partitions,
            )
            for local in stores.values():
                local.wipe()
            warm = {}  # their state is of the store just emptied
            tails = await read_tails(self.bootstrap, self.changelog, dict.fromkeys(partitions))
        loaded: dict[int, Owned[S]] = {}
        for p, (table, end) in tails.items():
            local = stores[p]
            recovered = warm.get(p)
            if recovered is not None and recovered.local is local:
                state = recovered.state
                position = None  # the recovered position stands unless the tail has one
            else:
                recovered = None
                state = self.new_state(local)
                for reserved in (WATERMARK_KEY, CONTENT_KEY):
                    value = local.get(reserved)
                    if value is not None:
                        state.restore(reserved, value)
                indexes = local.get(INDEXES_KEY)
                if indexes is not None:
                    load_indexes(state, indexes)
                position = local.get(POSITION_KEY)
            keys = local.keys
            assert isinstance(keys, DiskKeys)
            for n, (key, value) in enumerate(table.items(), 1):
                keys.absorb(key, value)
                if key == POSITION_KEY:
                    position = value
                elif value is None:
                    state.forget(key)
                else:
                    try:
                        state.restore(key, value)
                    except Exception:  # a bad changelog record loses its key, never the partition
                        log.exception("%s[%d]: changelog key %r not restored", self.name, p, key)
                if n % 20_000 == 0:  # a long tail: bound what RAM holds
                    local.spill()
                    keys.trim()
                if n % 2_000 == 0:  # a long tail: let the app's start go on meanwhile
                    await asyncio.sleep(0)
            state.dirty.clear()
            local.checkpoint(end, dump_indexes(state))
            keys.trim()
            owned = loaded[p] = recovered or Owned(state, local=local)
            if position is not None:
                owned.last = {t: (int(o), str(f)) for t, (o, f) in json.loads(position).items()}
                owned.written = dict(owned.last)
        return loaded

    async def _recheck(self, partitions: list[int]) -> None:
        await self._adopt({p: self.owned[p] for p in partitions if p in self.owned})

    async def _adopt(self, candidates: dict[int, Owned[S]]) -> None:
        """Own the partitions whose state matches their input logs; stop the others."""
        problems = await self._diverged(candidates)
        for p, owned in candidates.items():
            if self.loading.get(p) is not asyncio.current_task():
                continue  # revoked meanwhile (perhaps assigned again, to a newer task)
            del self.loading[p]
            if p in problems:
                self.owned.pop(p, None)
                self.diverged[p] = problems[p]
                log.error(
                    "%s[%d] stopped, its state no longer matches its input: %s. Nothing of"
                    " this partition is processed or committed until the state is rebuilt"
                    " (docs/reliability.md, 'A recreated input topic')",
                    self.name,
                    p,
                    problems[p],
                )
            else:
                self.owned[p] = owned

    async def _diverged(self, candidates: dict[int, Owned[S]]) -> dict[int, str]:
        tps = [TopicPartition(t, p) for p in candidates for t in self.inputs]
        committed = {}
        if self.group is not None and tps:
            committed = await committed_offsets(self.bootstrap, self.group, tps)
        recorded = {
            TopicPartition(t, p): position
            for p, owned in candidates.items()
            for t, position in owned.last.items()
            if t in self.inputs
        }
        problems: dict[int, str] = {}
        for tp, problem in (await check_inputs(self.bootstrap, committed, recorded, tps)).items():
            problems[tp.partition] = "; ".join(filter(None, (problems.get(tp.partition), problem)))
        return problems

    async def partition(self, p: int) -> Owned[S] | None:
        """The partition's state, waiting for its recovery or check; None when not ours
        (or diverged: see ``diverged``)."""
        loading = self.loading.get(p)
        if loading is not None:
            await asyncio.shield(loading)
        return self.owned.get(p)

    def ready(self) -> bool:
        return not self.loading and not self.diverged
