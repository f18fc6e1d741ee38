"""A merchant whose clock is minutes off still has every order that followed its click
attributed: the whole stack, driven by seeded visitors over HTTP."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from afflux.cli.demo_client import DemoClient
from afflux.cli.load import drive
from afflux.cli.scenario_checks import every_order_is_placed_at_its_purchase
from afflux.cli.stack import Stack
from afflux.cli.topic_reader import read_events
from afflux.cli.traffic import Program, Traffic, TrafficMix, creator_ids
from afflux.shared.campaign_file import load_campaign_file
from afflux.shared.events import ConversionAttributed, OrderPlaced, OrderUnattributed

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ADMIN_TOKEN = "e2e-skew-admin-token"
TERMS_YAML = """
campaigns:
  - effective_from: 0
    terms:
      campaign_id: skew-shop
      merchant_id: merchant-skew
      currency: EUR
      allowed_domains: [shop.example.com]
      cookie_window_days: 30
      grace_seconds: 1
      plan:
        sale: {rate: {percent: "10"}}
"""
# Every visitor clicks and then buys, by cookie or by click id; no bots, coupons or refunds,
# so every order has a click before it that should win.
EVERY_VISITOR_BUYS = TrafficMix(
    buy_rate=1.0, coupon_rate=0.0, bot_rate=0.0, refund_rate=0.0, think_time_s=(0.05, 0.3)
)
VISITORS = 24


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> list[Program]:
    path = tmp_path_factory.mktemp("skew-terms") / "campaigns.yaml"
    path.write_text(TERMS_YAML)
    return [Program(entry.terms) for entry in load_campaign_file(path).campaigns]


# Every order reported 11 to 15 s after the purchase by a clock 290 s slow: 301 to 305 s
# before the receive time, so a late report. Left at the merchant's time, each landed
# 290 s before its purchase, before the click that led to it (no click).
LATE = replace(EVERY_VISITOR_BUYS, late_report_rate=1.0, late_report_s=(11.0, 15.0))


@pytest.mark.parametrize(
    ("offset_ms", "mix"),
    [(-240_000, EVERY_VISITOR_BUYS), (240_000, EVERY_VISITOR_BUYS), (-290_000, LATE)],
    ids=["merchant clock 4 minutes slow", "4 minutes fast", "290 s slow, reporting late"],
)
async def test_every_order_that_followed_its_click_is_attributed(
    stack: Stack, programs: list[Program], offset_ms: int, mix: TrafficMix
) -> None:
    run_id = f"skew-{uuid.uuid4().hex[:8]}"
    async with DemoClient(
        stack.url("clicks"),
        stack.url("orders"),
        stack.url("payouts"),
        ADMIN_TOKEN,
        merchant_clock_offset_ms=offset_ms,
    ) as client:
        traffic = Traffic(client, programs, creator_ids(5), mix=mix, run_id=run_id)
        await traffic.create_links()
        tally = await drive(traffic, range(VISITORS), seed=11)
    assert (tally.errors, tally.orders) == (0, VISITORS), tally.error_samples
    sent = {order_id for _, order_id in tally.accepted}

    def decided(events: list[object]) -> set[str]:
        return {
            e.order_id
            for e in events
            if isinstance(e, ConversionAttributed | OrderUnattributed) and e.order_id in sent
        }

    conversions = await read_events(
        stack.kafka_bootstrap, "conversions", until=lambda ev: decided(ev) == sent, timeout_s=60
    )
    unmatched = await read_events(stack.kafka_bootstrap, "attribution.unmatched", timeout_s=3)
    orders = await read_events(stack.kafka_bootstrap, "orders", timeout_s=3)

    attributed = {e.order_id for e in conversions if isinstance(e, ConversionAttributed)}
    refused = {
        (e.order_id, e.reason)
        for e in unmatched
        if isinstance(e, OrderUnattributed) and e.order_id in sent
    }
    assert refused == set()
    assert attributed >= sent
    # The merchant's own time is kept beside the receive time the order was placed at.
    for order in (e for e in orders if isinstance(e, OrderPlaced) and e.order_id in sent):
        assert order.reported_occurred_at is not None
        assert abs(order.reported_occurred_at - offset_ms - order.occurred_at) < 60_000
    # ... and each lands at its purchase on our clock, which the oracle cannot tell.
    assert every_order_is_placed_at_its_purchase(tally.purchased, orders) == []
