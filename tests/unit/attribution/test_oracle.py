"""The oracle against the pure core: two independent implementations, same answers."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from afflux.oracle import attribute, generate
from afflux.shared.core.attribution import Attributed, ClickTouch, OrderTouch, choose
from afflux.shared.core.ids import order_partition_key
from afflux.shared.core.terms import CampaignTerms, TermsVersion, terms_in_force
from afflux.shared.events import (
    ClickRecorded,
    ConversionAttributed,
    ConversionReversed,
    OrderPlaced,
    OrderUnattributed,
    RefundUnmatched,
)

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
            touch = ClickTouch(e.click_id, e.affiliate_id, e.campaign_id, e.occurred_at, e.flagged)
            clicks.setdefault(e.visitor_id, {})[e.click_id] = touch
    seen = set()
    for e in scenario.events:
        if not isinstance(e, OrderPlaced) or (e.campaign_id, e.order_id) in seen:
            continue
        seen.add((e.campaign_id, e.order_id))
        key = order_partition_key(e.order_id, e.visitor_id, e.click_id)
        terms = terms_in_force(scenario.campaigns[e.campaign_id], e.occurred_at).terms
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
    "flagged",
    [
        {"flags": ("embedded",)},  # a reason the two booleans never name
        {"flags": ("ip_duplicate", "rate")},
        {"flags": ("duplicate",), "is_duplicate": True},
        {"is_bot": True},  # an event from before flags
    ],
    ids=str,
)
def test_a_flagged_click_never_wins_over_an_older_valid_click(flagged: dict[str, Any]) -> None:
    terms = CampaignTerms(campaign_id="shop", merchant_id="m", currency="EUR")
    campaigns = {"shop": [TermsVersion(version=1, effective_from=0, published_at=0, terms=terms)]}
    order_at = 10 * 86_400_000

    def click(cid: str, affiliate: str, at: int, **extra: Any) -> ClickRecorded:
        return ClickRecorded(
            event_id=f"e-{cid}",
            occurred_at=at,
            click_id=cid,
            link_code="code",
            affiliate_id=affiliate,
            campaign_id="shop",
            visitor_id="v_1",
            **extra,
        )

    valid = click("v_1.valid", "honest", order_at - 3_600_000)
    stuffed = click("v_1.stuffed", "stuffer", order_at - 60_000, **flagged)
    order = OrderPlaced(
        event_id="o-1",
        occurred_at=order_at,
        order_id="o1",
        campaign_id="shop",
        merchant_id="m",
        amount_minor=1_000,
        currency="EUR",
        visitor_id="v_1",
        click_id=stuffed.click_id,  # even when the merchant passes the stuffed click's id
    )
    result = attribute([valid, stuffed, order], campaigns)
    (conversion,) = result.conversions
    assert isinstance(conversion, ConversionAttributed)
    assert (conversion.affiliate_id, conversion.click_id) == ("honest", valid.click_id)
    touches = [
        ClickTouch(c.click_id, c.affiliate_id, "shop", c.occurred_at, c.flagged)
        for c in (valid, stuffed)
    ]
    core = choose(OrderTouch("o1", "shop", order_at, stuffed.click_id), touches, terms)
    assert isinstance(core, Attributed)
    assert core.affiliate_id == "honest"
