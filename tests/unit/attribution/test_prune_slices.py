"""A pruning pass visits the next slice of a partition's keys, never all of them at once:
a pass runs under the stage's lock, and a partition of millions of visitors held it for
seconds. Every key is visited over a round of passes."""

from __future__ import annotations

import pytest

from afflux.attribution.join import JoinPartition
from afflux.attribution.refunds import RefundPartition
from afflux.attribution.store import MEMORY_SWEEP_KEYS, Sweep
from afflux.shared.events import ClickRecorded

pytestmark = pytest.mark.unit

T0 = 1_790_000_000_000
FAR_PAST = T0 + 1_000  # every click below is older, and arrived earlier


def partition(visitors: int, slice_size: int) -> JoinPartition:
    p = JoinPartition()
    p.sweep = Sweep(slice_size)
    for n in range(visitors):
        add_click(p, n)
    return p


def add_click(p: JoinPartition, n: int) -> None:
    click = ClickRecorded(
        event_id=f"e{n}",
        occurred_at=T0 + n,
        click_id=f"c{n}",
        link_code="code",
        affiliate_id="creator",
        campaign_id="camp",
        visitor_id=f"v{n}",
    )
    p.click(f"v{n}", click, T0 + n, lambda campaign, at: None)


def prune(p: JoinPartition) -> None:
    p.prune(FAR_PAST, FAR_PAST, FAR_PAST)


def clicks_held(p: JoinPartition) -> int:
    return sum(len(state.clicks) for state in p.keys.values())


@pytest.mark.parametrize(
    ("visitors", "slice_size", "held_after_each_pass"),
    [
        (7, 3, [4, 1, 0]),  # three passes make a round
        (6, 3, [3, 0, 0]),  # exactly two slices
        (2, 3, [0, 0, 0]),  # fewer keys than a slice: one pass
    ],
)
def test_each_pass_visits_the_next_slice_of_the_keys(
    visitors: int, slice_size: int, held_after_each_pass: list[int]
) -> None:
    p = partition(visitors, slice_size)
    held = []
    for _ in held_after_each_pass:
        prune(p)
        held.append(clicks_held(p))
    assert held == held_after_each_pass


def test_a_key_added_during_a_round_is_visited_in_the_next_one() -> None:
    p = partition(4, 2)
    prune(p)  # the round holds v0..v3; two are visited
    add_click(p, 99)
    prune(p)  # the rest of the round
    assert [key for key, state in p.keys.items() if state.clicks] == ["v99"]
    prune(p)  # a new round
    assert clicks_held(p) == 0


def test_a_key_gone_during_a_round_is_passed_over() -> None:
    p = partition(4, 2)
    prune(p)
    for key in [k for k, state in p.keys.items() if state.clicks]:
        del p.keys[key]  # forgotten meanwhile
    prune(p)
    assert clicks_held(p) == 0


def test_the_refund_stage_prunes_a_slice_per_pass() -> None:
    p = RefundPartition()
    p.sweep = Sweep(2)
    for n in range(5):
        p._ledger(f"order-{n}", T0 + n)
    passes = []
    for _ in range(3):
        p.prune(FAR_PAST)
        passes.append(len(p.keys))
    assert passes == [3, 1, 0]


def test_the_default_slice_is_what_a_pass_may_hold_the_stage_for() -> None:
    assert Sweep().size == MEMORY_SWEEP_KEYS == 20_000
