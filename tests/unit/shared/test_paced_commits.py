"""What a paced consumer commits, and when: the pacer alone, on a fixed clock."""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition

from afflux.shared.io.paced_commits import OffsetPacer

pytestmark = pytest.mark.unit

A = TopicPartition("orders", 0)
B = TopicPartition("orders", 1)
C = TopicPartition("conversions", 0)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("elapsed_s", "due"),
    [(0.0, False), (0.999, False), (1.0, True), (5.0, True)],
)
def test_offsets_are_due_once_the_interval_has_passed(elapsed_s: float, due: bool) -> None:
    clock = Clock()
    pacer = OffsetPacer(1.0, clock)
    pacer.stored({A: 10})
    clock.now += elapsed_s
    assert pacer.due() is due


def test_nothing_stored_is_never_due_however_long_it_waits() -> None:
    clock = Clock()
    pacer = OffsetPacer(1.0, clock)
    pacer.stored({})
    clock.now += 3_600
    assert not pacer.due()


def test_a_partition_commits_its_highest_offset_and_only_partitions_that_moved() -> None:
    clock = Clock()
    pacer = OffsetPacer(1.0, clock)
    pacer.stored({A: 10, B: 3})
    pacer.stored({A: 7})  # a redelivery read after a later poll never moves back
    pacer.stored({A: 12})
    assert pacer.take([A, B, C]) == {A: 12, B: 3}


def test_a_partition_no_longer_assigned_is_not_committed() -> None:
    pacer = OffsetPacer(1.0, Clock())
    pacer.stored({A: 10, B: 3})
    assert pacer.take([B]) == {B: 3}
    assert pacer.pending == {}


def test_a_commit_restarts_the_interval() -> None:
    clock = Clock()
    pacer = OffsetPacer(1.0, clock)
    pacer.stored({A: 10})
    clock.now += 1.0
    pacer.take([A])
    pacer.stored({A: 11})
    clock.now += 0.5
    assert not pacer.due()
    clock.now += 0.5
    assert pacer.due()


def test_a_failed_commit_keeps_its_offsets_for_the_next_one() -> None:
    pacer = OffsetPacer(1.0, Clock())
    pacer.stored({A: 10})
    failed = pacer.take([A])
    pacer.stored({B: 4})
    pacer.put_back(failed)
    assert pacer.take([A, B]) == {A: 10, B: 4}


def test_a_dropped_partition_commits_nothing_until_it_moves_again() -> None:
    """A revoked partition, or one whose store was cleared and replays from an earlier
    offset: what was pending for it is not committed over what the store now holds."""
    pacer = OffsetPacer(1.0, Clock())
    pacer.stored({A: 500, B: 3})
    pacer.drop([A])
    pacer.stored({A: 10})
    assert pacer.take([A, B]) == {A: 10, B: 3}
