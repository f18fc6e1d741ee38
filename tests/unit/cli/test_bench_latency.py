"""What ``afflux bench latency`` computes from its timings: nearest-rank percentiles, the
goals at their edges, and the split between orders decided after the grace and at once."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from afflux.bench.latency import figures, goals, percentile
from afflux.bench.latency_run import Timed

pytestmark = pytest.mark.unit

GRACE = 5_000


@dataclass(frozen=True)
class Case:
    name: str
    values: tuple[float, ...]
    p: float
    expect: float | None


CASES = [
    Case("no_values", (), 50, None),  # nothing measured: no figure, not zero
    Case("one_value", (7.0,), 99, 7.0),
    Case("median_of_four_is_the_second", (4.0, 1.0, 3.0, 2.0), 50, 2.0),
    # p99 of 100 values is the 99th, of 101 the 100th: the worst is left out only with
    # more than a hundred
    Case("p99_of_100", tuple(float(v) for v in range(1, 101)), 99, 99.0),
    Case("p99_of_101", tuple(float(v) for v in range(1, 102)), 99, 100.0),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_percentile_is_the_nearest_rank(case: Case) -> None:
    assert percentile(case.values, case.p) == case.expect


def measured(after_ms: float, readable_ms: float, at_once_ms: float) -> dict[str, object]:
    def step(p99: float | None) -> dict[str, object]:
        return {"n": 1, "p50": p99, "p99": p99}

    return {
        "after_grace": {
            "to_conversion_ms": step(after_ms),
            "conversion_to_readable_ms": step(readable_ms),
        },
        "at_once": {"to_conversion_ms": step(at_once_ms)},
    }


def test_each_goal_holds_at_its_edge_and_fails_one_ms_past_it() -> None:
    at_edge = goals(GRACE, measured(GRACE + 250, 500, 250))
    past = goals(GRACE, measured(GRACE + 251, 501, 251))
    assert all(at_edge.values())
    assert not any(past.values())


def timed(kind: str, accepted: float, converted: float | None, readable: float | None) -> Timed:
    t = Timed(f"o-{kind}-{accepted}", kind, ("c", "r"), polled=readable is not None)
    t.accepted_ms, t.converted_ms, t.readable_ms = accepted, converted, readable
    return t


def test_orders_are_split_by_kind_and_unfinished_steps_are_left_out() -> None:
    orders = [
        timed("cookie", 0, 6_000, 6_200),
        timed("cookie", 0, None, None),  # never converted: in no figure
        timed("click_id", 0, 20, None),  # not sampled for postings
        timed("coupon", 100, 130, 300),
    ]
    got = figures(orders)
    assert got["after_grace"]["to_conversion_ms"] == {"n": 1, "p50": 6_000.0, "p99": 6_000.0}
    assert got["after_grace"]["conversion_to_readable_ms"]["p50"] == 200.0
    assert got["at_once"]["to_conversion_ms"] == {"n": 2, "p50": 20.0, "p99": 30.0}
    assert got["at_once"]["to_readable_ms"] == {"n": 1, "p50": 200.0, "p99": 200.0}
