"""The clicks write-ahead log: every click is on disk (fsynced) before its redirect is answered.

A directory of numbered segment files, one line per event
(``<key>\\t<value JSON>\\n``), written only by appending. ``append`` writes one
group of lines to the open segment and fsyncs it (the caller groups the clicks
of a few milliseconds into one call); a segment is closed and a new one opened
once it holds ``segment_bytes``. The shipper reads the log in order from a
*cursor* (segment number, byte offset) and, once the broker acknowledged
everything before a position, calls ``acknowledge``: the cursor is written to
the ``ACKED`` file (no fsync: it only saves re-sends, see below) with, per
partition, the offset after the last record the broker acknowledged, and every
segment wholly before it is deleted.

After a crash the log is read from the recorded cursor: everything after it is
sent again, except what the shipper finds on the topic after the recorded
offsets (afflux.clicks.reconcile); a torn last line (a crash in the middle of a
write, never answered to a visitor) is ignored. Losing ``ACKED`` (a power cut)
only means re-sends, which downstream recognises by their event ids.

Blocking file I/O: call ``append``, ``read`` and ``acknowledge`` from worker
threads; at most one ``append`` and one reader at a time (one lock guards the
segment table they share).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from dataclasses import dataclass
from pathlib import Path

Item = tuple[bytes, bytes]
"""(key, value) of one event."""

SUFFIX = ".wal"
LEGACY_SUFFIX = ".spool"  # the disk spool of earlier versions had the same line format
SEGMENT_BYTES = 16 * 1024 * 1024
_ACKED = "ACKED"
# fdatasync flushes the data and the file size (all a reader needs) but not timestamps:
# one journal commit fewer per group where the platform has it.
_sync_data = getattr(os, "fdatasync", os.fsync)
_ACKED_BYTES = 4096  # one page: a single pwrite at offset 0


class WalBusy(RuntimeError):
    """Another process holds this log directory."""


@dataclass(frozen=True, order=True, slots=True)
class Cursor:
    """A position in the log: byte ``offset`` inside segment ``segment``."""

    segment: int
    offset: int


def line(key: bytes, value: bytes) -> bytes:
    return key + b"\t" + value + b"\n"


def parse(data: bytes) -> tuple[list[Item], int]:
    """The whole lines of ``data`` and how many bytes they span (a torn tail is left out)."""
    end = data.rfind(b"\n") + 1
    items: list[Item] = []
    for raw in data[:end].split(b"\n")[:-1]:
        key, tab, value = raw.partition(b"\t")
        if tab and value:
            items.append((key, value))
    return items, end


class WriteAheadLog:
    def __init__(
        self, directory: Path, *, segment_bytes: int = SEGMENT_BYTES, legacy: Path | None = None
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.segment_bytes = segment_bytes
        self._lock_file = (directory / "LOCK").open("a")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise WalBusy(f"click log {directory} is used by another process") from None
        if legacy is not None:
            self._adopt_legacy(legacy)
        self._guard = threading.Lock()
        # segment number -> bytes of whole lines in it (what a reader may read)
        self._sizes: dict[int, int] = {}
        for path in directory.glob(f"*{SUFFIX}"):
            self._sizes[int(path.stem)] = parse(path.read_bytes())[1]
        self._bytes = sum(self._sizes.values())
        self.cursor, self.acked_offsets = self._recorded()
        for number in [n for n in self._sizes if n < self.cursor.segment]:
            self._delete(number)
        # Appends always go to a fresh segment: an old one may end in a torn line.
        self._open_number = max(max(self._sizes, default=0), self.cursor.segment) + 1
        self._open: int | None = None
        self._acked_fd = os.open(directory / _ACKED, os.O_RDWR | os.O_CREAT, 0o644)
        self.recovered = self.count_from(self.cursor)

    # -- sizes ------------------------------------------------------------------------

    @property
    def size_bytes(self) -> int:
        """Bytes of the log on disk (whole lines)."""
        return self._bytes

    @property
    def segments(self) -> int:
        return len(self._sizes)

    def count_from(self, cursor: Cursor) -> int:
        """Events after ``cursor`` (reads the files: used at start-up)."""
        total = 0
        for number in sorted(n for n in self._sizes if n >= cursor.segment):
            start = cursor.offset if number == cursor.segment else 0
            with self._path(number).open("rb") as handle:
                handle.seek(start)
                total += handle.read(self._sizes[number] - start).count(b"\n")
        return total

    # -- writing ----------------------------------------------------------------------

    def append(self, data: bytes) -> None:
        """Write whole lines and sync them to disk (fdatasync); readable once this returns."""
        if not data:
            return
        with self._guard:
            number = self._open_number
            size = self._sizes.get(number)
            created = size is None
        if not created and size is not None and size >= self.segment_bytes:
            number, created = self._roll(), True
        try:
            if self._open is None:
                path = self._path(number)
                self._open = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            written = os.write(self._open, data)
            if written != len(data):
                raise OSError(f"short write to the click log ({written} of {len(data)} bytes)")
            _sync_data(self._open)
            if created:
                self._sync_directory()
        except OSError:
            # Clicks of a failed write are answered unrecorded (no click id): cut off
            # whatever of them reached the segment, or a restart would read their whole
            # lines and ship clicks the visitors were told were not kept. Should the cut
            # fail too, the segment may end in a torn line: never append after it.
            self._cut_back(0 if created or size is None else size)
            self._roll()
            raise
        with self._guard:
            self._sizes[number] = self._sizes.get(number, 0) + len(data)
            self._bytes += len(data)

    def _cut_back(self, size: int) -> None:
        if self._open is None:
            return
        with contextlib.suppress(OSError):  # the disk refuses this too: nothing more to do
            os.ftruncate(self._open, size)
            _sync_data(self._open)

    def _roll(self) -> int:
        if self._open is not None:
            os.close(self._open)
            self._open = None
        with self._guard:
            self._open_number += 1
            return self._open_number

    # -- reading and acknowledging -------------------------------------------------------

    def read(self, cursor: Cursor, max_bytes: int) -> tuple[list[Item], Cursor]:
        """Events after ``cursor`` (about ``max_bytes`` of them) and the cursor after them."""
        with self._guard:
            later = sorted(n for n in self._sizes if n >= cursor.segment)
            sizes = {n: self._sizes[n] for n in later}
            open_number = self._open_number
        for number in later:
            start = cursor.offset if number == cursor.segment else 0
            if start < sizes[number]:
                with self._path(number).open("rb") as handle:
                    handle.seek(start)
                    data = handle.read(min(max_bytes, sizes[number] - start))
                items, used = parse(data)
                if not used:  # one line longer than max_bytes
                    handle_data = self._path(number).read_bytes()[start : sizes[number]]
                    items, used = parse(handle_data[: handle_data.find(b"\n") + 1])
                return items, Cursor(number, start + used)
            if number == open_number:
                break
            cursor = Cursor(number, sizes[number])  # a closed segment read to its end
        return [], cursor

    def acknowledge(self, cursor: Cursor, offsets: dict[int, int]) -> None:
        """Everything before ``cursor`` reached the broker, the last of it before ``offsets``
        (partition -> next offset): remember both, drop whole segments."""
        parts = " ".join(f"{p}:{o}" for p, o in sorted(offsets.items()))
        record = f"{cursor.segment} {cursor.offset} {parts}".strip() + "\n"
        if len(record) < _ACKED_BYTES:
            os.pwrite(self._acked_fd, record.ljust(_ACKED_BYTES).encode(), 0)
        with self._guard:
            done = [n for n in self._sizes if n < cursor.segment]
            self.cursor = cursor
        for number in done:
            self._delete(number)

    def close(self) -> None:
        if self._open is not None:
            os.close(self._open)
            self._open = None
        os.close(self._acked_fd)
        self._lock_file.close()

    # -- internals ----------------------------------------------------------------------

    def _recorded(self) -> tuple[Cursor, dict[int, int]]:
        first = Cursor(min(self._sizes, default=0), 0)
        try:
            words = (self.directory / _ACKED).read_text().split()
            recorded = Cursor(int(words[0]), int(words[1]))
            offsets = {int(p): int(o) for p, _, o in (w.partition(":") for w in words[2:])}
        except (FileNotFoundError, ValueError, IndexError):
            return first, {}
        if recorded < first:  # the segments it names are gone: the offsets say nothing
            return first, {}
        return recorded, offsets

    def _adopt_legacy(self, legacy: Path) -> None:
        """Take over the segments of the earlier disk spool (same line format, same order)."""
        if not legacy.is_dir() or any(self.directory.glob(f"*{SUFFIX}")):
            return
        for path in sorted(legacy.glob(f"*{LEGACY_SUFFIX}")):
            path.replace(self._path(int(path.stem)))
        self._sync_directory()

    def _delete(self, number: int) -> None:
        self._path(number).unlink(missing_ok=True)
        with self._guard:
            self._bytes -= self._sizes.pop(number, 0)

    def _path(self, number: int) -> Path:
        return self.directory / f"{number:020d}{SUFFIX}"

    def _sync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
