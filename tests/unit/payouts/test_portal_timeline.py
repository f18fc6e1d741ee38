"""A chart's series covers every day between its bounds: a quiet day is a zero, not a gap
a line would bridge."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from afflux.payouts.portal.timeline import MS_PER_DAY, daily

pytestmark = pytest.mark.unit

D0 = 1_795_564_800_000  # 2026-11-25T00:00:00Z


def bucket(day: int, clicks: int, conversions: int = 0, commission: int = 0) -> dict[str, Any]:
    return {
        "start": D0 + day * MS_PER_DAY,
        "clicks": clicks,
        "conversions": conversions,
        "commission_minor": commission,
    }


@dataclass(frozen=True)
class Case:
    name: str
    buckets: list[dict[str, Any]]
    start: int | None
    end: int | None
    until: int | None
    days: int
    clicks: tuple[int, ...]


CASES = [
    # two sparse days four days apart: the three quiet days between are zeros
    Case("gap filled", [bucket(0, 5), bucket(4, 7)], None, None, None, 5, (5, 0, 0, 0, 7)),
    # a period's bounds: every day of it, even before the first bucket and after the last
    Case("period bounds", [bucket(1, 3)], D0, D0 + 4 * MS_PER_DAY, None, 4, (0, 3, 0, 0)),
    # a current period stops at today (until), not at the period's end
    Case(
        "stops today",
        [bucket(0, 1)],
        D0,
        D0 + 30 * MS_PER_DAY,
        D0 + 2 * MS_PER_DAY + 5,
        3,
        (1, 0, 0),
    ),
    # a correction dated after the period (a clawback on its refund's day): the axis
    # reaches it, so the points add up to what the period counts
    Case(
        "a clawback after the period",
        [bucket(0, 2), bucket(5, 1)],
        D0,
        D0 + 3 * MS_PER_DAY,
        D0 + 9 * MS_PER_DAY,
        6,
        (2, 0, 0, 0, 0, 1),
    ),
    # ... but not a day past today
    Case(
        "later bucket past today",
        [bucket(0, 2), bucket(5, 1)],
        D0,
        None,
        D0 + MS_PER_DAY,
        2,
        (2, 0),
    ),
    # nothing counted and no bounds: no points at all
    Case("empty", [], None, None, None, 0, ()),
    # a period that has not begun by until: no points
    Case("future period", [], D0, D0 + 7 * MS_PER_DAY, D0 - MS_PER_DAY, 0, ()),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_day_between_the_bounds_is_a_point(case: Case) -> None:
    series = daily(case.buckets, start=case.start, end=case.end, until=case.until)
    assert len(series.starts) == case.days
    assert series.values["clicks"] == case.clicks
    assert all(b - a == MS_PER_DAY for a, b in zip(series.starts, series.starts[1:], strict=False))


def test_the_other_fields_follow_the_same_days() -> None:
    series = daily([bucket(0, 1, 2, 300), bucket(2, 0, 1, 50)])
    assert series.values["conversions"] == (2, 0, 1)
    assert series.values["commission_minor"] == (300, 0, 50)
