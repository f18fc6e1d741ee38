"""The click write-ahead log: read in order, acknowledged segments deleted, a restart resumes
after the acknowledged cursor, a torn last line is ignored, one process per directory."""

from __future__ import annotations

import os
from pathlib import Path
from unittest import mock

import pytest

from afflux.clicks.wal import Cursor, Item, WalBusy, WriteAheadLog, line

pytestmark = pytest.mark.unit


def items(*names: str) -> list[Item]:
    return [(b"k", f'{{"n":"{name}"}}'.encode()) for name in names]


def write(wal: WriteAheadLog, *names: str) -> None:
    wal.append(b"".join(line(key, value) for key, value in items(*names)))


def read_all(wal: WriteAheadLog, cursor: Cursor, max_bytes: int = 1 << 20) -> list[Item]:
    seen: list[Item] = []
    while True:
        batch, cursor = wal.read(cursor, max_bytes)
        if not batch:
            return seen
        seen += batch
        wal.acknowledge(cursor, {})


def test_events_come_back_in_the_order_they_were_written(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path)
    write(wal, "a", "b")
    write(wal, "c")
    assert read_all(wal, wal.cursor) == items("a", "b", "c")


def test_reads_stop_at_whole_lines_within_the_byte_budget(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path)
    write(wal, "a", "b", "c")
    one_line = len(line(*items("a")[0]))
    batch, cursor = wal.read(wal.cursor, one_line + 3)  # room for one line and a bit
    assert batch == items("a")
    assert cursor.offset == one_line


def test_segments_roll_over_and_are_deleted_once_acknowledged(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, segment_bytes=1)  # every append opens a new segment
    for name in "abcd":
        write(wal, name)
    assert wal.segments == 4
    assert read_all(wal, wal.cursor) == items("a", "b", "c", "d")
    assert wal.segments == 1  # the last one stays open for appends
    assert len(list(tmp_path.glob("*.wal"))) == 1


def test_a_restart_resends_only_what_was_not_acknowledged(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path)
    write(wal, "a", "b")
    batch, cursor = wal.read(wal.cursor, len(line(*items("a")[0])))
    assert batch == items("a")
    wal.acknowledge(cursor, {})
    write(wal, "c")
    wal.close()  # as after kill -9: nothing is flushed at close
    again = WriteAheadLog(tmp_path)
    assert again.recovered == 2
    assert read_all(again, again.cursor) == items("b", "c")


def test_a_torn_last_line_is_ignored_and_appends_go_to_a_fresh_segment(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path)
    write(wal, "a", "b")
    wal.close()
    segment = next(tmp_path.glob("*.wal"))
    with segment.open("ab") as handle:
        handle.write(b'k\t{"n":"tor')  # a crash in the middle of a write
    again = WriteAheadLog(tmp_path)
    assert again.recovered == 2
    write(again, "c")
    assert read_all(again, again.cursor) == items("a", "b", "c")


def test_a_lost_acknowledged_cursor_only_means_resending(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path)
    write(wal, "a", "b")
    _, cursor = wal.read(wal.cursor, len(line(*items("a")[0])))
    wal.acknowledge(cursor, {})
    wal.close()
    (tmp_path / "ACKED").unlink()
    assert read_all(WriteAheadLog(tmp_path), Cursor(0, 0)) == items("a", "b")


def test_segments_of_the_earlier_disk_spool_are_taken_over(tmp_path: Path) -> None:
    legacy = tmp_path / "clicks-spool"
    legacy.mkdir()
    (legacy / f"{7:020d}.spool").write_bytes(b"".join(line(k, v) for k, v in items("old")))
    wal = WriteAheadLog(tmp_path / "clicks-wal", legacy=legacy)
    write(wal, "new")
    assert read_all(wal, wal.cursor) == items("old", "new")
    assert not list(legacy.glob("*.spool"))


def test_the_size_counts_whole_lines_on_disk(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, segment_bytes=1)
    write(wal, "a")
    write(wal, "b")
    assert wal.size_bytes == 2 * len(line(*items("a")[0]))
    read_all(wal, wal.cursor)
    assert wal.size_bytes == len(line(*items("b")[0]))


def test_one_process_per_log_directory(tmp_path: Path) -> None:
    first = WriteAheadLog(tmp_path)
    with pytest.raises(WalBusy):
        WriteAheadLog(tmp_path)
    first.close()
    WriteAheadLog(tmp_path).close()


def test_a_failed_write_leaves_none_of_its_lines_for_a_restart(tmp_path: Path) -> None:
    """Clicks of a failed write are answered unrecorded (302 without a click id); a short
    write (a full disk) left their first whole lines in the segment, and a restart read
    and shipped them."""
    wal = WriteAheadLog(tmp_path)
    wal.append(b'k1\t{"n":1}\n')
    real_write = os.write

    def short_write(fd: int, data: bytes) -> int:
        return real_write(fd, data[: len(data) - 5])  # two whole lines and a torn third

    with (
        mock.patch("afflux.clicks.wal.os.write", short_write),
        pytest.raises(OSError, match="short write"),
    ):
        wal.append(b'k2\t{"n":2}\nk3\t{"n":3}\nk4\t{"n":4}\n')
    wal.append(b'k5\t{"n":5}\n')
    wal.close()

    again = WriteAheadLog(tmp_path)
    assert [key for key, _ in read_all(again, again.cursor)] == [b"k1", b"k5"]
    again.close()
