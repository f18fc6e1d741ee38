"""A replay reads each partition to the high watermark its fetches report: a partition
quiet for a few fetches below its end was closed as read, and the events past that point
were left out of a replay that answered as complete."""

from __future__ import annotations

import pytest

from afflux.payouts.webhooks.replay import IDLE_POLLS_BEFORE_GIVING_UP, partition_verdict

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("high", "position", "idle", "verdict"),
    [
        (10, 10, 0, "read"),  # at the end
        (10, 12, 0, "read"),  # past it (the watermark of an earlier fetch)
        (0, 0, 1, "read"),  # an empty partition
        (10, 4, 3, "reading"),  # quiet below its end: not read (it was closed here)
        (10, 4, IDLE_POLLS_BEFORE_GIVING_UP - 1, "reading"),
        (10, 4, IDLE_POLLS_BEFORE_GIVING_UP, "stuck"),  # said, not skipped
        (None, 0, IDLE_POLLS_BEFORE_GIVING_UP, "stuck"),  # no fetch ever answered
        (None, 0, 2, "reading"),
    ],
)
def test_a_partition_is_read_only_at_its_end(
    high: int | None, position: int, idle: int, verdict: str
) -> None:
    assert partition_verdict(high, position, idle) == verdict
