"""This clock's offset from a reference, from timed round trips (pure)."""

from __future__ import annotations

import pytest

from afflux.shared.core.clock_offset import Offset, best_offset, offset_of

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
