"""The oracle against the pure core: two independent implementations, same answers."""

from __future__ import annotations

from collections import Counter

import pytest

from afflux.shared.core.attribution import Attributed, ClickTouch, OrderTouch, choose, version_at
from afflux.shared.core.ids import order_partition_key
from afflux.shared.events import (
    ClickRecorded,
    ConversionAttributed,
    ConversionReversed,
    OrderPlaced,
    OrderUnattributed,
    RefundUnmatched,
)
from afflux.shared.oracle import attribute, generate

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("seed", range(30))
def test_oracle_and_core_choose_the_same_creator(seed: int) -> None:
    scenario = generate(seed)
    result = attribute(scenario.events, scenario.campaigns)
    expected = {}
    for e in result.conversions:
        if isinstance(e, ConversionAttributed):
            expected[(e.campaign_id, e.order_id)] = (e.affiliate_id, e.reason, e.click_id)
    for e in result.unmatched:
        if isinstance(e, OrderUnattributed):
            expected[(e.campaign_id, e.order_id)] = ("-", e.reason, None)
    clicks: dict[str, dict[str, ClickTouch]] = {}
    for e in scenario.events:
        if isinstance(e, ClickRecorded):
            touch = ClickTouch(
                e.click_id, e.affiliate_id, e.campaign_id, e.occurred_at, e.is_bot, e.is_duplicate
            )
            clicks.setdefault(e.visitor_id, {})[e.click_id] = touch
    seen = set()
    for e in scenario.events:
        if not isinstance(e, OrderPlaced) or (e.campaign_id, e.order_id) in seen:
            continue
        seen.add((e.campaign_id, e.order_id))
        key = order_partition_key(e.order_id, e.visitor_id, e.click_id)
        terms = version_at(scenario.campaigns[e.campaign_id], e.occurred_at).terms
        touch = OrderTouch(e.order_id, e.campaign_id, e.occurred_at, e.click_id, e.coupon_code)
        d = choose(touch, clicks.get(key, {}).values(), terms)
        got = (
            (d.affiliate_id, d.reason, d.click.click_id if d.click else None)
            if isinstance(d, Attributed)
            else ("-", d.reason, None)
        )
        assert got == expected[(e.campaign_id, e.order_id)], e.order_id
    assert len(seen) == len(expected)


def test_scenarios_cover_every_outcome() -> None:
    outcomes: Counter[str] = Counter()
    for seed in range(20):
        scenario = generate(seed)
        result = attribute(scenario.events, scenario.campaigns)
        for e in [*result.conversions, *result.unmatched, *result.reversals]:
            if isinstance(e, ConversionAttributed | OrderUnattributed | RefundUnmatched):
                outcomes[f"{e.type}:{e.reason}"] += 1
            elif isinstance(e, ConversionReversed):
                outcomes["capped" if e.amount_minor < e.requested_minor else "reversed"] += 1
            else:
                outcomes[e.type] += 1
    expected = {
        "ConversionAttributed:cookie",
        "ConversionAttributed:coupon",
        "ConversionAttributed:click_id",
        "OrderUnattributed:no_click",
        "OrderUnattributed:outside_window",
        "OrderUnattributed:unknown_click",
        "OrderUnattributed:other_campaign",
        "OrderUnattributed:bot_only",
        "RefundUnmatched:order_unknown",
        "RefundUnmatched:order_unattributed",
        "LeadConfirmed",
        "capped",
        "reversed",
    }
    assert expected <= set(outcomes), expected - set(outcomes)


def test_same_seed_same_scenario() -> None:
    assert generate(7).events == generate(7).events


@pytest.mark.parametrize(
    ("click_arrives_after_order_ms", "attributed"),
    [(-1, True), (0, True), ("grace", True), ("grace+1", False)],
)
def test_with_arrivals_a_click_later_than_the_orders_grace_is_late(
    click_arrives_after_order_ms: int | str, attributed: bool
) -> None:
    scenario = generate(5, visitors=40)
    orders = [e for e in scenario.events if isinstance(e, OrderPlaced) and e.visitor_id]
    baseline = attribute(scenario.events, scenario.campaigns)
    by_click = {
        (e.campaign_id, e.order_id)
        for e in baseline.conversions
        if isinstance(e, ConversionAttributed) and e.reason == "cookie"
    }
    order = next(o for o in orders if (o.campaign_id, o.order_id) in by_click)
    grace = version_at(scenario.campaigns[order.campaign_id], order.occurred_at).terms.grace_ms
    offsets = {"grace": grace, "grace+1": grace + 1}
    late = offsets.get(str(click_arrives_after_order_ms), click_arrives_after_order_ms)
    assert isinstance(late, int)
    arrivals = {e.event_id: 0 for e in scenario.events}
    arrivals[order.event_id] = 1_000_000
    for e in scenario.events:
        if isinstance(e, ClickRecorded) and e.visitor_id == order.visitor_id:
            arrivals[e.event_id] = 1_000_000 + late
    result = attribute(scenario.events, scenario.campaigns, arrivals)
    converted = {
        (e.campaign_id, e.order_id)
        for e in result.conversions
        if isinstance(e, ConversionAttributed) and e.reason == "cookie"
    }
    assert ((order.campaign_id, order.order_id) in converted) is attributed
