"""Where a stage partition keeps its per-key state: in memory (a dict, the default, for
tests and small programs) or on local disk (``AFFLUX_STATE_STORE=disk``: RocksDB through
rocksdict, one database per stage partition).

With the disk store, RAM holds a small LRU of decoded states (``cache``), what changed
since the last checkpoint (``overlay``, encoded) and the stage's timer indexes; every
other key is read from the database when an event needs it.

The database reflects a changelog offset (``MARKER_KEY``): every changelog record
before it is in the database. A checkpoint writes, in one atomic batch, the changed
keys, the timer indexes and the new marker, only once the broker acknowledged every
changelog record the batch holds, so the database is never ahead of the changelog.
Recovery reads the database, then only the changelog from the marker to the fetch high
watermark (see partitions.py). A write that reached the database after the marker was
taken is also on the changelog after the marker, so replaying the tail overwrites it
with the same or a later value.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from rocksdict import BlockBasedOptions, Options, Rdict, WriteBatch

log = logging.getLogger(__name__)

V = TypeVar("V")

# Local-only keys (never on the changelog): the changelog offset the database reflects,
# and the timer indexes as of that offset.
MARKER_KEY = b"\x00\x00changelog"
INDEXES_KEY = b"\x00\x00indexes"
WRITTEN_AT_KEY = b"\x00\x00written_at"  # wall-clock seconds of the last checkpoint
EPOCH_KEY = b"\x00\x00epoch"  # the state epoch the store was written in (``StateEpoch``)


@dataclass
class StateEpoch:
    """The worker group's state epoch, which ``afflux attribution rebuild`` renews
    (``rebuild.read_epoch``; "" before any rebuild wrote one). A store written in another
    epoch is emptied: after a rebuild the recreated changelog grew past an old store's
    offset, and a worker that kept its directory read the new changelog from there, on top
    of the old database (refunds of converted orders came out unmatched, commissions kept)."""

    value: str = ""


# A store whose last checkpoint is older than this is emptied before recovery: a compacted
# changelog drops tombstones after its delete retention (a day by default), and a store that
# missed a tombstone would keep the deleted key.
MAX_STORE_AGE_S = 12 * 3600
# Keys starting with this byte are a stage's own bookkeeping (watermark, input position),
# not per-key state, except the parked lead confirmations of the join.
RESERVED = "\x00"
WRITE_BUFFER_BYTES = 16 * 1024 * 1024
STATE_PREFIXES = ("\x00lead",)


class DiskKeys(MutableMapping[str, V], Generic[V]):
    """A partition's per-key states over RocksDB: cache, then overlay, then database.

    Decoded states stay in the cache at least until the next ``trim``: a state handed
    out is mutated in place and marked dirty by its partition, and it is encoded by
    ``take_dirty`` before the cache is trimmed (``written``), so no change is lost to
    an eviction.
    """

    def __init__(
        self,
        db: Rdict,
        decode: Callable[[bytes], V],
        cache_size: int,
        sweep_size: int = 2_000,
    ) -> None:
        self.db = db
        self.decode = decode
        self.cache_size = cache_size
        self.sweep_size = sweep_size
        self.cache: OrderedDict[str, V] = OrderedDict()
        self.overlay: dict[str, bytes | None] = {}  # since the last checkpoint; None: deleted
        self._cursor: bytes | None = None  # where the next ``sweep`` starts

    def _load(self, key: str) -> V | None:
        raw = self.overlay[key] if key in self.overlay else self.db.get(key.encode())
        if raw is None:
            return None
        value = self.decode(raw)
        self.cache[key] = value
        return value

    def get(self, key: str, default: V | None = None) -> V | None:  # type: ignore[override]
        value = self.cache.get(key)
        if value is not None:
            self.cache.move_to_end(key)
            return value
        value = self._load(key)
        return default if value is None else value

    def __getitem__(self, key: str) -> V:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value: V) -> None:
        self.cache[key] = value
        self.cache.move_to_end(key)

    def __delitem__(self, key: str) -> None:
        if self.get(key) is None:
            raise KeyError(key)
        self.cache.pop(key, None)
        self.overlay[key] = None

    def pop(self, key: str, default: V | None = None) -> V | None:  # type: ignore[override]
        value = self.get(key)
        self.cache.pop(key, None)
        if value is not None:
            self.overlay[key] = None
        return default if value is None else value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def __len__(self) -> int:
        """An estimate (RocksDB's), for gauges."""
        return int(self.db.property_int_value("rocksdb.estimate-num-keys") or 0)

    def __iter__(self) -> Iterator[str]:
        """Every state key (the database's and the overlay's): a full scan."""
        seen = set()
        for raw in self.db.keys():  # noqa: SIM118 (an Rdict iterates its items)
            key = _text(raw)
            if _is_state(key) and self.overlay.get(key, b"") is not None:
                seen.add(key)
                yield key
        for key, value in list(self.overlay.items()):
            if value is not None and key not in seen and _is_state(key):
                yield key
        for key in list(self.cache):
            if key not in seen and key not in self.overlay:
                yield key

    def sweep(self) -> list[tuple[str, V]]:
        """The next ``sweep_size`` keys of the database, decoded (and cached until the next
        ``trim``), wrapping around: pruning visits every key over several passes instead
        of decoding every state each time."""
        out: list[tuple[str, V]] = []
        start = self._cursor or b""
        for raw in self.db.keys(from_key=start):
            if len(out) >= self.sweep_size:
                self._cursor = _bytes(raw)
                return out
            key = _text(raw)
            if _is_state(key):
                value = self.get(key)
                if value is not None:
                    out.append((key, value))
        self._cursor = None  # the end: the next pass starts again at the beginning
        return out

    def written(self, items: list[tuple[str, bytes | None]]) -> None:
        """The encoded snapshots ``take_dirty`` produced: kept until the checkpoint; then
        the cache is trimmed to its size (every state in it is clean now)."""
        overlay = self.overlay
        for key, value in items:
            overlay[key] = value
        self.trim()

    def trim(self) -> None:
        cache = self.cache
        while len(cache) > self.cache_size:
            cache.popitem(last=False)

    def absorb(self, key: str, value: bytes | None) -> None:
        """A changelog record read during recovery (already on the changelog)."""
        self.overlay[key] = value
        self.cache.pop(key, None)


class LocalStore:
    """One stage partition's RocksDB database and its keys."""

    def __init__(
        self,
        path: Path,
        cache_size: int,
        checkpoint_s: float,
        checkpoint_keys: int,
        epoch: StateEpoch | None = None,
    ) -> None:
        self.path = path
        self.epoch = epoch or StateEpoch()
        self.cache_size = cache_size
        self.checkpoint_s = checkpoint_s
        self.checkpoint_keys = checkpoint_keys
        self.db = _open_or_empty(path)
        self.keys: DiskKeys[object] | None = None
        # The broker's answers for the changelog records written since the last checkpoint.
        self.acks: list[Awaitable[Any]] = []
        self.checkpointed_at = time.monotonic()

    def due(self) -> bool:
        """Time for a checkpoint: enough changed keys, or enough time since the last."""
        keys = self.keys
        if keys is None or not keys.overlay:
            return False
        return (
            len(keys.overlay) >= self.checkpoint_keys
            or time.monotonic() - self.checkpointed_at >= self.checkpoint_s
        )

    async def checkpoint_acked(self, indexes: bytes) -> None:
        """Wait for the broker to acknowledge every changelog record written since the last
        checkpoint, then write the overlay with the marker just past the last of them."""
        acks, self.acks = self.acks, []
        metas = await asyncio.gather(*acks)
        offsets = [m.offset for m in metas if m is not None and getattr(m, "offset", -1) >= 0]
        if not offsets:
            return
        self.checkpoint(max(offsets) + 1, indexes)

    def bind(self, decode: Callable[[bytes], V]) -> DiskKeys[V]:
        """Fresh keys over the database (the previous owner's cache and overlay dropped)."""
        keys: DiskKeys[V] = DiskKeys(self.db, decode, self.cache_size)
        self.keys = keys  # type: ignore[assignment]
        return keys

    def marker(self) -> int | None:
        """The changelog offset the store reflects; None: no store, or one too old to trust
        (``MAX_STORE_AGE_S``) or of another state epoch (``StateEpoch``), which is then
        emptied."""
        raw = self.db.get(MARKER_KEY)
        if raw is None:
            return None
        written = self.db.get(WRITTEN_AT_KEY)
        epoch = bytes(self.db.get(EPOCH_KEY) or b"").decode()
        if written is None or time.time() - float(written) > MAX_STORE_AGE_S:
            self.wipe()
            return None
        if epoch != self.epoch.value:
            log.warning(
                "%s: written in state epoch %r, the group's is %r (rebuilt since): emptied",
                self.path,
                epoch,
                self.epoch.value,
            )
            self.wipe()
            return None
        return int(raw)

    def get(self, key: str | bytes) -> bytes | None:
        value = self.db.get(key.encode() if isinstance(key, str) else key)
        return value if value is None else bytes(value)

    def checkpoint(self, marker: int, indexes: bytes) -> None:
        """Write the overlay, the timer indexes and the marker in one atomic batch."""
        batch = WriteBatch(raw_mode=True)
        keys = self.keys
        if keys is not None:
            for key, value in keys.overlay.items():
                if value is None:
                    batch.delete(key.encode())
                else:
                    batch.put(key.encode(), value)
        batch.put(INDEXES_KEY, indexes)
        batch.put(MARKER_KEY, str(marker).encode())
        batch.put(WRITTEN_AT_KEY, str(time.time()).encode())
        batch.put(EPOCH_KEY, self.epoch.value.encode())
        self.db.write(batch)
        if keys is not None:
            keys.overlay.clear()
        self.checkpointed_at = time.monotonic()

    def spill(self) -> None:
        """Write the overlay without moving the marker: only for records already on the
        changelog after the marker (a long recovery), to bound what RAM holds."""
        keys = self.keys
        if keys is None:
            return
        batch = WriteBatch(raw_mode=True)
        for key, value in keys.overlay.items():
            if value is None:
                batch.delete(key.encode())
            else:
                batch.put(key.encode(), value)
        self.db.write(batch)
        keys.overlay.clear()

    def wipe(self) -> None:
        """Start over empty (the database no longer matches its changelog)."""
        self.db.close()
        Rdict.destroy(str(self.path))
        shutil.rmtree(self.path, ignore_errors=True)
        self.db = _open(self.path)
        self.keys = None

    def memory_bytes(self) -> int:
        """RocksDB's own memory (memtables, table readers), outside Python's heap."""
        total = 0
        for name in ("rocksdb.cur-size-all-mem-tables", "rocksdb.estimate-table-readers-mem"):
            total += int(self.db.property_int_value(name) or 0)
        return total

    def disk_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())

    def close(self) -> None:
        self.db.close()


class DiskStores:
    """The local stores of one stage on this worker, one per partition, opened once."""

    def __init__(
        self,
        root: Path,
        cache_size: int,
        checkpoint_s: float = 2.0,
        checkpoint_keys: int = 50_000,
        epoch: StateEpoch | None = None,
    ) -> None:
        self.root = root
        self.cache_size = cache_size
        self.checkpoint_s = checkpoint_s
        self.checkpoint_keys = checkpoint_keys
        self.epoch = epoch or StateEpoch()
        self.opened: dict[int, LocalStore] = {}

    def open(self, p: int) -> LocalStore:
        local = self.opened.get(p)
        if local is None:
            local = self.opened[p] = LocalStore(
                self.root / str(p),
                self.cache_size,
                self.checkpoint_s,
                self.checkpoint_keys,
                self.epoch,
            )
        local.acks = []  # a previous ownership's: its recovery reads them from the changelog
        return local

    def held(self) -> list[int]:
        """The partitions this worker has a local store of (from an earlier run)."""
        if not self.root.is_dir():
            return []
        return sorted(int(d.name) for d in self.root.iterdir() if d.is_dir() and d.name.isdigit())

    def close(self) -> None:
        for local in self.opened.values():
            local.close()
        self.opened.clear()


def _open_or_empty(path: Path) -> Rdict:
    """The database at ``path``; an empty one in its place when RocksDB finds it corrupt
    (a truncated table, an emptied ``CURRENT``): the store is a cache of the changelog,
    which is then read whole. It raised, and the stage's partitions on this worker stayed
    unrecovered until someone deleted the directory. Any other failure (another process
    holding its lock) is raised: that database is not this worker's to empty."""
    try:
        return _open(path)
    except Exception as exc:
        if "Corruption" not in str(exc):
            raise
        log.error(
            "%s: the local store is corrupt (%s): emptied, the changelog read whole", path, exc
        )
        shutil.rmtree(path, ignore_errors=True)
        return _open(path)


def _open(path: Path) -> Rdict:
    path.parent.mkdir(parents=True, exist_ok=True)
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    # Memtables bounded per database (a worker opens one per stage partition): RocksDB's
    # RAM stays a fixed cost, not one that grows with the visitors.
    options.set_write_buffer_size(WRITE_BUFFER_BYTES)
    options.set_max_write_buffer_number(2)
    # Most lookups are of visitors never seen: a Bloom filter answers those without
    # reading a block.
    table = BlockBasedOptions()
    table.set_bloom_filter(10, False)
    options.set_block_based_table_factory(table)
    return Rdict(str(path), options)


def _bytes(raw: object) -> bytes:
    assert isinstance(raw, bytes)  # a raw-mode database has bytes keys
    return raw


def _text(raw: object) -> str:
    return _bytes(raw).decode()


def _is_state(key: str) -> bool:
    return not key.startswith(RESERVED) or key.startswith(STATE_PREFIXES)


# Keys of an in-memory partition that one pruning pass visits at most: a pass runs under
# the stage's lock, and a whole partition of millions of visitors took seconds.
MEMORY_SWEEP_KEYS = 20_000


class Sweep:
    """Where pruning passes are in a partition's keys: each pass visits the next slice,
    every key over several passes (one pass when the keys are fewer than a slice)."""

    def __init__(self, size: int = MEMORY_SWEEP_KEYS) -> None:
        self.size = size
        self.round: list[str] = []  # the keys this round has still to visit

    def next(self, keys: MutableMapping[str, V]) -> list[tuple[str, V]]:
        """The next slice: from the disk store's own cursor, or from the keys held when
        the round began (a key gone since is passed over, one added waits a round)."""
        if isinstance(keys, DiskKeys):
            return keys.sweep()
        if not self.round:
            self.round = list(keys)
        visit = self.round[-self.size :]
        del self.round[-self.size :]
        return [(key, value) for key in visit if (value := keys.get(key)) is not None]
