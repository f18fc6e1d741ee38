"""``afflux verify``: a seeded workload through a fresh stack, then every check to the cent.

The expected answer is computed from the input topics alone (clicks, orders,
refunds, campaign terms, content) by the batch attribution oracle, which decides on
event times only, and the pure commission engine; the actual answer is what
the attribution worker put on its topics (corrections netted: per order the
conversion no later one superseded) and what the payouts API serves. Exit 0
only when there is no difference.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from afflux.cli.creator_traffic import missing_creator_traffic
from afflux.cli.help_format import PlainArgumentParser, counting
from afflux.cli.ledger_compare import (
    admin_headers,
    attribution_differences,
    campaign_versions,
    ledger_differences,
)
from afflux.cli.load import Endpoints, drive
from afflux.cli.processes import StartFailed
from afflux.cli.scenario_checks import (
    every_accepted_order_is_on_the_topic,
    every_order_is_placed_at_its_purchase,
    every_redirect_is_one_click_event,
    one_live_conversion_per_order,
    read_topic_timed,
)
from afflux.cli.settings import CliSettings
from afflux.cli.stack import fresh_stack
from afflux.cli.storage import add_storage_option, storage_of
from afflux.cli.traffic import Program, Tally, Traffic, TrafficMix, creator_ids
from afflux.cli.up import DEFAULT_CAMPAIGNS, admin_token
from afflux.oracle import admitted
from afflux.shared.campaign_file import load_campaign_file
from afflux.shared.core.event_time import DEFAULT_CLOCK_SKEW_MS
from afflux.shared.events import AnyEvent, ConversionReviewed
from afflux.shared.io.clock_source import system_clock
from afflux.shared.schemas import wrong_topic
from afflux.shared.topics import (
    CAMPAIGNS,
    CLICKS,
    CONTENT,
    CONVERSIONS,
    ORDERS,
    REFUNDS,
    REVERSALS,
    REVIEWS,
)

# A twentieth of the orders reported 11 to 15 s after the purchase: with a merchant clock
# more than 285 s slow (``--merchant-clock-offset-s -290``) those are late reports, which
# must land at the purchase on our clock all the same.
VERIFY_MIX = TrafficMix(think_time_s=(0.05, 0.6), late_report_rate=0.05)


@dataclass
class StackCheck:
    differences: list[str] = field(default_factory=list)
    creators_compared: int = 0
    counts: dict[str, int] = field(default_factory=dict)


async def settle(
    payouts_url: str,
    *,
    admin_token: str,
    min_wait_s: float,
    quiet_s: float = 4.0,
    limit_s: float = 120.0,
) -> None:
    """Wait ``min_wait_s`` (grace timers), then until the payouts totals stop changing."""
    await asyncio.sleep(min_wait_s)
    deadline = time.monotonic() + limit_s
    async with httpx.AsyncClient(timeout=10, headers=admin_headers(admin_token)) as http:
        last: object = None
        stable_since = time.monotonic()
        while time.monotonic() < deadline:
            try:
                now = (await http.get(f"{payouts_url}/v1/kpis/creators")).json()
            except (httpx.HTTPError, ValueError):
                now = None
            if now != last:
                last, stable_since = now, time.monotonic()
            elif time.monotonic() - stable_since >= quiet_s:
                return
            await asyncio.sleep(0.5)


async def _check(
    bootstrap: str,
    payouts_url: str,
    sent_click_ids: Sequence[str],
    accepted_orders: Sequence[tuple[str, str]],
    grace_s: float,
    admin_token: str,
    purchased: Mapping[tuple[str, str], int],
) -> StackCheck:
    await settle(payouts_url, admin_token=admin_token, min_wait_s=grace_s + 1)
    topics: dict[str, list[AnyEvent]] = {}
    timed: dict[str, list[tuple[AnyEvent, int, bool]]] = {}
    for topic in (CLICKS, ORDERS, REFUNDS, CONTENT, CAMPAIGNS, CONVERSIONS, REVERSALS, REVIEWS):
        timed[topic.name] = await read_topic_timed(bootstrap, topic.name)
        topics[topic.name] = [event for event, *_ in timed[topic.name]]
    result = StackCheck(counts={name: len(events) for name, events in topics.items()})
    result.differences += every_redirect_is_one_click_event(sent_click_ids, topics[CLICKS.name])
    result.differences += every_accepted_order_is_on_the_topic(accepted_orders, topics[ORDERS.name])
    result.differences += every_order_is_placed_at_its_purchase(purchased, topics[ORDERS.name])
    result.differences += one_live_conversion_per_order(topics[CONVERSIONS.name])
    # The worker dead-letters events stamped too far after their record, and orders and
    # refunds dated too far before it (see the oracle).
    campaigns = campaign_versions(topics[CAMPAIGNS.name])
    # ... and any event on a topic it does not travel on (``wrong_topic``).
    inputs = topics[CAMPAIGNS.name] + [
        event
        for topic in (CLICKS, ORDERS, REFUNDS, CONTENT)
        for event in admitted(
            [r for r in timed[topic.name] if not wrong_topic(type(r[0]).__name__, topic.name)],
            DEFAULT_CLOCK_SKEW_MS,
            campaigns,
            now_ms=system_clock(),
        )
    ]
    outputs = topics[CONVERSIONS.name] + topics[REVERSALS.name]
    result.differences += attribution_differences(inputs, outputs)[:20]
    # Review decisions are no attribution input; the ledger applies them (the first stands).
    reviews = [e for e in topics[REVIEWS.name] if isinstance(e, ConversionReviewed)]
    ledger, compared = await ledger_differences([*inputs, *reviews], payouts_url, admin_token)
    result.differences += ledger
    result.creators_compared = compared
    return result


def check_stack(
    bootstrap: str,
    payouts_url: str,
    *,
    admin_token: str,
    sent_click_ids: Sequence[str] = (),
    accepted_orders: Sequence[tuple[str, str]] = (),
    grace_s: float = 6.0,
    purchased: Mapping[tuple[str, str], int] | None = None,
) -> StackCheck:
    """``purchased``: (campaign, order) -> when it was bought on our clock, for the orders
    whose placement is checked (``every_order_is_placed_at_its_purchase``)."""
    return asyncio.run(
        _check(
            bootstrap,
            payouts_url,
            sent_click_ids,
            accepted_orders,
            grace_s,
            admin_token,
            purchased or {},
        )
    )


def main(argv: list[str]) -> int:
    parser = PlainArgumentParser(prog="afflux verify", description=__doc__)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--visitors", type=counting("visitors"), default=600)
    parser.add_argument("--creators", type=counting("creators"), default=20)
    parser.add_argument("--campaigns", type=Path, default=None, help="terms YAML")
    parser.add_argument(
        "--merchant-clock-offset-s",
        type=int,
        default=0,
        help="play merchants whose clock is this far off (negative: slow)",
    )
    add_storage_option(parser)
    args = parser.parse_args(argv)
    storage = storage_of(args)
    settings = CliSettings()
    terms_file: Path = args.campaigns or DEFAULT_CAMPAIGNS
    programs = [Program(e.terms) for e in load_campaign_file(terms_file).campaigns]
    token, _ = admin_token(settings)
    work_dir = settings.data_dir / "verify"
    stack = fresh_stack(work_dir, token, storage)
    try:
        print(f"afflux verify: starting a fresh stack ({storage} storage) ...", flush=True)
        stack.start_infra()
        stack.apply_campaigns(terms_file)
        stack.start_all()
        endpoints = Endpoints(stack.url("clicks"), stack.url("orders"), stack.url("payouts"), token)
        print(
            f"afflux verify: driving {args.visitors} seeded visitors (seed {args.seed}) ...",
            flush=True,
        )
        tally = asyncio.run(
            _drive(
                endpoints,
                programs,
                creator_ids(args.creators),
                args.visitors,
                args.seed,
                args.merchant_clock_offset_s * 1000,
            )
        )
        made = tally.creator
        print(
            f"afflux verify: sent {tally.clicks} clicks, {tally.orders} orders"
            f" ({tally.late_reports} reported {VERIFY_MIX.late_report_s[0]:.0f} s or more late),"
            f" {tally.refunds} refunds, {tally.renewals} renewals; {made.contents} contents"
            f" with {made.snapshots} stats snapshots ({made.repeated_snapshots} repeated,"
            f" {made.stale_snapshots} stale, {made.shrinking_snapshots} shrinking),"
            f" {made.held} held and {made.releases} released, {made.live_streams} live"
            f" streams with {made.live_orders} orders, {made.survey_answers} survey answers"
            f" ({tally.errors} errors); comparing with the oracle ...",
            flush=True,
        )
        grace = max(p.terms.grace_seconds for p in programs)
        result = check_stack(
            stack.kafka_bootstrap,
            stack.url("payouts"),
            admin_token=token,
            sent_click_ids=tally.click_ids,
            accepted_orders=tally.accepted,
            grace_s=grace,
            purchased=tally.purchased,
        )
    except StartFailed as exc:
        print(f"afflux verify: {exc}", file=sys.stderr)
        return 2
    finally:
        stack.stop()
    for sample in tally.error_samples:
        print(f"  ERROR {sample}")
    # A creator-economy path the terms call for but the traffic never drove is unchecked.
    unchecked = missing_creator_traffic([p.terms for p in programs], tally.creator)
    for line in [*result.differences, *unchecked]:
        print(f"  DIFF {line}")
    errors = tally.errors
    found = len(result.differences) + len(unchecked)
    print(
        f"afflux verify: {found} differences over {result.creators_compared} "
        f"creator ledgers; {errors} request errors; topics {result.counts}"
    )
    return 0 if not result.differences and not unchecked and errors == 0 else 1


async def _drive(
    endpoints: Endpoints,
    programs: list[Program],
    creators: list[str],
    visitors: int,
    seed: int,
    merchant_clock_offset_ms: int = 0,
) -> Tally:
    async with endpoints.client(merchant_clock_offset_ms=merchant_clock_offset_ms) as client:
        traffic = Traffic(client, programs, creators, mix=VERIFY_MIX, run_id=f"v{seed}")
        await traffic.create_links()
        return await drive(traffic, range(visitors), seed)
