"""This clock's offset from a reference, from timed round trips (pure)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from afflux.shared.core.clock_offset import Offset, best_offset, offset_of
from afflux.shared.io.clock_offset import no_earlier_than_redis

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("sent", "answered", "reference", "expected"),
    [
        # The reference read its clock mid-way: 1,005 here, 1,005 there.
        (1_000, 1_010, 1_005, Offset(0, 5)),
        # This clock 2 s ahead of the reference.
        (3_000, 3_010, 1_005, Offset(2_000, 5)),
        # This clock 2 s behind.
        (1_000, 1_010, 3_005, Offset(-2_000, 5)),
        # An answer in the same ms as the question: no uncertainty.
        (1_000, 1_000, 1_000, Offset(0, 0)),
        # A clock stepped back during the round trip: no negative uncertainty.
        (1_010, 1_000, 1_005, Offset(0, 0)),
    ],
)
def test_the_offset_is_taken_at_the_round_trips_midpoint(
    sent: float, answered: float, reference: float, expected: Offset
) -> None:
    assert offset_of(sent, answered, reference) == expected


def test_the_shortest_round_trip_wins() -> None:
    # A slow answer (100 ms round trip) says less than a quick one.
    slow, quick = (0, 100, 10), (200, 202, 201)
    assert best_offset([slow, quick]) == Offset(0, 1)


def test_no_sample_is_an_error() -> None:
    with pytest.raises(ValueError, match="no sample"):
        best_offset([])


class _RedisTime:
    """``TIME`` of a Redis whose clock is ``offset_ms`` off ours (or one refusing it)."""

    def __init__(self, clock: Any, offset_ms: int | None) -> None:
        self.clock, self.offset_ms = clock, offset_ms

    async def time(self) -> tuple[int, int]:
        if self.offset_ms is None:
            raise PermissionError("NOPERM this user has no permissions to run 'time'")
        ms = self.clock() + self.offset_ms
        return ms // 1000, (ms % 1000) * 1000


@pytest.mark.parametrize(
    ("redis_ahead_ms", "expected_ms"),
    [
        (600_000, 600_000),  # this machine ten minutes slow: Redis's time
        (-600_000, 0),  # Redis ten minutes slow (nothing watches it): this machine's
        (0, 0),
        (None, 0),  # no TIME: this machine's
    ],
)
def test_now_for_a_forward_only_check_is_never_earlier_than_redis(
    redis_ahead_ms: int | None, expected_ms: int
) -> None:
    now = 1_796_000_000_000
    clock = lambda: now  # noqa: E731

    later = asyncio.run(no_earlier_than_redis(_RedisTime(clock, redis_ahead_ms), clock))

    assert later() - now == expected_ms
