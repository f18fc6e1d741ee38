"""The pure parts of the differential fault runs: the seeded plan, the comparisons."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from afflux.cli.chaos import kill_plan, requests_of
from afflux.cli.differential import (
    CreatorLedger,
    Workload,
    exactly_once_differences,
    snapshot_differences,
)
from afflux.cli.workload import Acknowledged, plan
from afflux.shared.events import AnyEvent, ClickRecorded, OrderPlaced

pytestmark = pytest.mark.unit


def test_the_plan_is_a_function_of_the_seed_alone() -> None:
    assert plan(11, 40) == plan(11, 40)
    assert plan(11, 40) != plan(12, 40)


def test_every_planned_order_follows_a_click_and_is_won_by_the_last_one() -> None:
    for visit in plan(11, 200):
        assert visit.touches
        if visit.order is not None:
            assert visit.order.winner == visit.touches[-1]
            assert visit.order.refund_minor <= visit.order.amount_minor


def test_a_kill_plan_stays_inside_the_run_and_is_seeded() -> None:
    workload = Workload(seed=3, visitors=30)
    kills = kill_plan(9, 20, workload)
    total = requests_of(plan(3, 30), 12)
    assert kills == kill_plan(9, 20, workload)
    assert [p for p, _ in kills] == sorted(p for p, _ in kills)
    assert all(2 * 12 < p < total for p, _ in kills)


def test_a_kill_plan_without_the_broker_never_kills_it() -> None:
    kills = kill_plan(1, 50, Workload(), ("clicks", "redis"))
    assert {name for _, name in kills} == {"clicks", "redis"}


def ledger(pending: int, orders: dict[str, int]) -> CreatorLedger:
    return CreatorLedger({"EUR": {"pending_minor": pending, "reversed_minor": 0}}, orders, {})


@dataclass(frozen=True)
class Case:
    clean: CreatorLedger
    faulty: CreatorLedger
    differences: int


@pytest.mark.parametrize(
    "case",
    [
        # the same to the cent
        Case(ledger(100, {"s/o1": 100}), ledger(100, {"s/o1": 100}), 0),
        # one cent more pending, and on the order
        Case(ledger(100, {"s/o1": 100}), ledger(101, {"s/o1": 101}), 2),
        # the order moved to another order id of the same amount: both orders differ
        Case(ledger(100, {"s/o1": 100}), ledger(100, {"s/o2": 100}), 2),
        # a creator the clean run paid nothing
        Case(CreatorLedger({}, {}, {}), ledger(5, {"s/o1": 5}), 2),
    ],
)
def test_snapshots_differ_per_creator_to_the_cent(case: Case) -> None:
    found = snapshot_differences({"c": case.clean}, {"c": case.faulty})
    assert len(found) == case.differences, found


def click(click_id: str, event_id: str) -> ClickRecorded:
    return ClickRecorded(
        event_id=event_id,
        occurred_at=1,
        click_id=click_id,
        link_code="l",
        affiliate_id="a",
        campaign_id="s",
        visitor_id="v",
    )


def order(order_id: str, event_id: str) -> OrderPlaced:
    return OrderPlaced(
        event_id=event_id,
        occurred_at=1,
        order_id=order_id,
        campaign_id="s",
        merchant_id="m",
        currency="EUR",
    )


def test_every_acknowledged_request_is_one_event_on_its_topic() -> None:
    acked = Acknowledged(clicks=["k1", "k2", "k3"], orders=[("s", "o1"), ("s", "o2")])
    topics: dict[str, list[AnyEvent]] = {
        "clicks": [click("k1", "e1"), click("k1", "e1"), click("k2", "e2"), click("k2", "e9")],
        "orders": [order("o1", "e3")],
        "refunds": [],
    }
    assert exactly_once_differences(acked, topics) == [
        "click k2: acknowledged, 2 events on its topic",  # two event ids for one click
        "click k3: acknowledged, 0 events on its topic",  # lost
        "order ('s', 'o2'): acknowledged, 0 events on its topic",
    ]  # k1 stored twice with one event id: at-least-once transport, counted once
