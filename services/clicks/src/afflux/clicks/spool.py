"""An append-only on-disk spool for click events the broker could not take.

A directory of numbered segment files, one line per event
(``<key>\\t<value JSON>\\n``), replayed lowest number first. Writes append to
the open segment and are followed by ``fsync`` (the caller batches: one write
and one fsync per flush interval). A number can be *reserved* for a batch
that is still in flight to the broker: if that batch fails it is written to
its reserved segment, which sorts before every segment opened after the
reservation, so events are re-sent in the order they were taken.

A torn last line (a crash during a write) is ignored. A segment is deleted
once all its events were acknowledged; partly acknowledged segments are
rewritten (temp file, fsync, rename) with only the unacknowledged lines.
Blocking file I/O: call these from a worker thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

Item = tuple[bytes, bytes]
"""(key, value) of one event."""

_SUFFIX = ".spool"
SEGMENT_BYTES = 8 * 1024 * 1024


class SpoolBusy(RuntimeError):
    """Another process holds this spool directory."""


class Spool:
    def __init__(self, directory: Path, segment_bytes: int = SEGMENT_BYTES) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.segment_bytes = segment_bytes
        self._lock = (directory / "LOCK").open("a")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise SpoolBusy(f"spool {directory} is used by another process") from None
        for leftover in directory.glob("*.tmp"):
            leftover.unlink()
        self._counts: dict[int, int] = {}
        for path in directory.glob(f"*{_SUFFIX}"):
            self._counts[int(path.stem)] = len(_read_items(path))
        self._depth = sum(self._counts.values())
        self._next = max(self._counts, default=0) + 1
        self._last_reserved = 0
        self._open: tuple[int, IO[bytes]] | None = None
        self._open_size = 0

    @property
    def depth(self) -> int:
        """Events on disk, not yet acknowledged by the broker."""
        return self._depth

    def reserve(self) -> int:
        """A segment number that sorts before every segment opened later."""
        self._last_reserved = number = self._next
        self._next += 1
        return number

    def append(self, items: list[Item], reserved: int | None = None) -> None:
        """Write ``items`` and fsync: to segment ``reserved``, else to the open segment."""
        if not items:
            return
        data = b"".join(_line(key, value) for key, value in items)
        if reserved is not None:
            with self._path(reserved).open("ab") as reserved_file:
                reserved_file.write(data)
                reserved_file.flush()
                os.fsync(reserved_file.fileno())
            self._counts[reserved] = self._counts.get(reserved, 0) + len(items)
            self._depth += len(items)
            self._sync_directory()
            return
        if (
            self._open is None
            or self._open[0] < self._last_reserved
            or (self._open_size >= self.segment_bytes)
        ):
            self._close_open()
            number = self._next
            self._next += 1
            self._open = (number, self._path(number).open("ab"))
            self._open_size = 0
            self._counts[number] = 0
            self._sync_directory()
        number, handle = self._open
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
        self._open_size += len(data)
        self._counts[number] += len(items)
        self._depth += len(items)

    def oldest(self) -> tuple[int, list[Item]] | None:
        """The lowest-numbered segment and its events; closes it for appends first."""
        if not self._counts:
            return None
        number = min(self._counts)
        if self._open is not None and self._open[0] == number:
            self._close_open()
        return number, _read_items(self._path(number))

    def done(self, number: int, remaining: list[Item]) -> None:
        """Segment ``number`` was sent; ``remaining`` are the events the broker did not take."""
        path = self._path(number)
        if not remaining:
            path.unlink(missing_ok=True)
            self._depth -= self._counts.pop(number, 0)
            return
        temp = path.with_suffix(".tmp")
        with temp.open("wb") as handle:
            handle.write(b"".join(_line(key, value) for key, value in remaining))
            handle.flush()
            os.fsync(handle.fileno())
        temp.replace(path)
        self._sync_directory()
        self._depth -= self._counts.get(number, 0) - len(remaining)
        self._counts[number] = len(remaining)

    def close(self) -> None:
        self._close_open()
        self._lock.close()

    def _path(self, number: int) -> Path:
        return self.directory / f"{number:020d}{_SUFFIX}"

    def _close_open(self) -> None:
        if self._open is not None:
            self._open[1].close()
            self._open = None

    def _sync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _line(key: bytes, value: bytes) -> bytes:
    return key + b"\t" + value + b"\n"


def _read_items(path: Path) -> list[Item]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    items: list[Item] = []
    for line in data.split(b"\n")[:-1]:  # the part after the last newline is torn or empty
        key, tab, value = line.partition(b"\t")
        if tab and value:
            items.append((key, value))
    return items
