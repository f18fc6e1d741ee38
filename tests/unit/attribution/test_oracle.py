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
