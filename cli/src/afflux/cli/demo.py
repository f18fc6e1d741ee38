"""``afflux demo``: the embedded stack driven by a simulated affiliate program over HTTP.

Creators share tracking links with skewed popularity (Zipf-like); visitors click
one or more links and some buy after a short delay; some buy with a creator's
promo code; a few orders are refunded. In a creator-economy campaign (one that pays
per engagement or attributes live streams) creators publish a post, a video and a live
stream with stats snapshots (one shrinking), and shoppers order during the stream
(afflux.cli.demo_content). Everything goes through the real HTTP endpoints; the closing
tables are read back from the payouts API: the creators' sales KPIs, and beside them the
content KPIs (views, engagement, ER, CTR, RPM, EMV) of each creator-economy campaign.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from pathlib import Path

from afflux.cli import demo_content
from afflux.cli.console import console_for
from afflux.cli.demo_client import CreatorRow, DemoClient
from afflux.cli.demo_report import (
    ContentReport,
    NextSteps,
    print_content,
    print_next_steps,
    print_rankings,
    rankings,
)
from afflux.cli.demo_whatif import show_whatif
from afflux.cli.processes import StartFailed
from afflux.cli.progress import ProgressDisplay
from afflux.cli.settings import CliSettings
from afflux.cli.stack import fresh_stack
from afflux.cli.stop_signals import Stopped, signals_held, stop_on_signals
from afflux.cli.storage import DEFAULT_STORAGE, BrokerStorage
from afflux.cli.traffic import Program, Traffic, TrafficMix, creator_ids
from afflux.cli.up import DEFAULT_CAMPAIGNS, admin_token
from afflux.shared.campaign_file import load_campaign_file

CONCURRENCY = 40


def run_demo(
    *,
    seed: int,
    creators: int,
    visitors: int,
    campaigns: str | None,
    storage: BrokerStorage = DEFAULT_STORAGE,
) -> int:
    settings = CliSettings()
    terms_file = Path(campaigns) if campaigns else DEFAULT_CAMPAIGNS
    if not terms_file.exists():
        print(f"afflux demo: campaign terms file {terms_file} not found", file=sys.stderr)
        return 2
    programs = [Program(entry.terms) for entry in load_campaign_file(terms_file).campaigns]
    token, _ = admin_token(settings)
    work_dir = settings.data_dir / "demo"
    stack = fresh_stack(work_dir, token, storage)
    started = time.monotonic()
    with stop_on_signals():
        try:
            print(f"afflux demo: starting the embedded stack ({storage} storage) ...", flush=True)
            stack.start_infra()
            stack.apply_campaigns(terms_file)
            stack.start_all()
            print(f"afflux demo: stack up in {time.monotonic() - started:.1f}s", flush=True)
            client = DemoClient(
                stack.url("clicks"), stack.url("orders"), stack.url("payouts"), token
            )
            rows, reports = asyncio.run(
                _simulate(client, programs, creator_ids(creators), visitors, seed)
            )
            print_rankings(console_for(sys.stdout), rows)
            print_content(console_for(sys.stdout), reports)
            show_whatif(console_for(sys.stdout), stack.kafka_bootstrap, [p.terms for p in programs])
            print("\nafflux demo: stopping the stack ...", flush=True)
        except StartFailed as exc:
            print(f"afflux demo: {exc}", file=sys.stderr)
            return 1
        except (KeyboardInterrupt, Stopped):
            print("\nafflux demo: interrupted", file=sys.stderr)
            return 130
        finally:
            with signals_held():
                stack.stop()
    steps = NextSteps(
        payouts_url=f"http://127.0.0.1:{settings.payouts_port}",
        campaign_ids=tuple(p.terms.campaign_id for p in programs),
        affiliate_id=_best_paid(rows),
    )
    print_next_steps(console_for(sys.stdout), steps)
    print(f"\nafflux demo: done in {time.monotonic() - started:.1f}s; stack stopped.")
    return 0


def _best_paid(rows: list[CreatorRow]) -> str | None:
    """The best-paid creator of the first currency, whose pages are worth a look."""
    ranked = rankings(rows)
    return ranked[0].rows[0].affiliate_id if ranked and ranked[0].rows else None


async def _simulate(
    client: DemoClient, programs: list[Program], creators: list[str], visitors: int, seed: int
) -> tuple[list[CreatorRow], list[ContentReport]]:
    async with client:
        # The demo's content is the planned story below, not the traffic's creators.
        traffic = Traffic(client, programs, creators, mix=TrafficMix(creator_every=0))
        await traffic.create_links()
        content = demo_content.ContentTally()
        lives = []
        expected: dict[str, int] = {}  # campaign -> snapshots its contents will hold
        for program in programs:
            if not demo_content.wants_content(program.terms):
                continue
            planned, live = demo_content.plan_content(
                program.terms, creators, client.merchant_now(), seed
            )
            await demo_content.publish_all(client, planned, content)
            await demo_content.start_live(client, live, content)
            lives.append((program, live))
            expected[program.terms.campaign_id] = demo_content.expected_snapshots(planned)
        bar = ProgressDisplay(visitors, "simulating visitors", unit="visitors")
        gate = asyncio.Semaphore(CONCURRENCY)
        last_order_at = time.monotonic()

        async def one(visitor_no: int) -> None:
            nonlocal last_order_at
            visitor_rng = random.Random(f"{seed}-{visitor_no}")
            async with gate:
                if await traffic.visit(visitor_no, visitor_rng):
                    last_order_at = time.monotonic()
            bar.advance()

        await asyncio.gather(*(one(n) for n in range(visitors)))
        bar.close()
        for program, live in lives:
            await demo_content.live_orders(client, program.terms, seed, content)
            await demo_content.end_live(client, live, client.merchant_now(), seed, content)
            last_order_at = time.monotonic()
        tally = traffic.tally
        print(
            f"afflux demo: sent {tally.clicks} clicks, {tally.orders} orders, "
            f"{tally.refunds} refunds",
            flush=True,
        )
        grace = max(p.terms.grace_seconds for p in programs)
        print(
            f"afflux demo: waiting for attribution (grace {grace}s) and the ledger ...", flush=True
        )
        if lives:
            print(
                f"afflux demo: published {content.contents} contents with "
                f"{content.snapshots} stats snapshots; {content.live_orders} orders during "
                "live streams",
                flush=True,
            )
        await demo_content.wait_until_applied(client, expected)
        waited = time.monotonic() - last_order_at
        rows = await client.settled_rows(min_wait_s=max(0.0, grace + 2 - waited))
        reports = [
            ContentReport(
                program.terms.campaign_id,
                await client.campaign_kpis(program.terms.campaign_id),
                tuple(await client.campaign_contents(program.terms.campaign_id)),
            )
            for program, _ in lives
        ]
        return rows, reports
