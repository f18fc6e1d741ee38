"""The on-disk spool: append, replay in order, survive a torn write, resume after restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from afflux.clicks.spool import Spool, SpoolBusy

pytestmark = pytest.mark.unit


def items(*names: str) -> list[tuple[bytes, bytes]]:
    return [(b"k", f'{{"n":"{name}"}}'.encode()) for name in names]


def drain(spool: Spool) -> list[tuple[bytes, bytes]]:
    seen = []
    while (oldest := spool.oldest()) is not None:
        number, batch = oldest
        seen += batch
        spool.done(number, [])
    return seen


def test_events_come_back_in_the_order_they_were_spooled(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(items("a", "b"))
    spool.append(items("c"))
    assert spool.depth == 3
    assert drain(spool) == items("a", "b", "c")
    assert spool.depth == 0


def test_a_reserved_segment_sorts_before_segments_opened_after_it(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    reserved = spool.reserve()  # a batch goes in flight
    spool.append(items("newer"))  # meanwhile newer events are spooled
    spool.append(items("older"), reserved)  # the in-flight batch failed
    assert drain(spool) == items("older", "newer")


def test_unacknowledged_events_stay_and_the_rest_is_not_resent(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(items("a", "b", "c"))
    oldest = spool.oldest()
    assert oldest is not None
    spool.done(oldest[0], items("b"))
    assert spool.depth == 1
    assert drain(spool) == items("b")


def test_a_restart_resumes_the_spool_and_ignores_a_torn_last_line(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(items("a", "b"))
    spool.close()
    segment = next(tmp_path.glob("*.spool"))
    with segment.open("ab") as handle:
        handle.write(b'k\t{"n":"tor')  # a crash in the middle of a write
    again = Spool(tmp_path)
    assert again.depth == 2
    again.append(items("c"))
    assert drain(again) == items("a", "b", "c")


def test_one_process_per_spool_directory(tmp_path: Path) -> None:
    first = Spool(tmp_path)
    with pytest.raises(SpoolBusy):
        Spool(tmp_path)
    first.close()
    Spool(tmp_path).close()
