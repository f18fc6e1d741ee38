"""``afflux demo``: the embedded stack driven by a simulated affiliate program over HTTP.

Creators share tracking links with skewed popularity (Zipf-like); visitors click
one or more links and some buy after a short delay; some buy with a creator's
promo code; a few orders are refunded. Everything goes through the real HTTP
endpoints; the closing table is read back from the payouts API.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from pathlib import Path

from afflux.cli.demo_client import CreatorRow, DemoClient
from afflux.cli.processes import StartFailed
from afflux.cli.progress import ProgressBar
from afflux.cli.settings import CliSettings
from afflux.cli.stack import fresh_stack
from afflux.cli.storage import DEFAULT_STORAGE, BrokerStorage
from afflux.cli.traffic import Program, Traffic, creator_ids
from afflux.cli.up import DEFAULT_CAMPAIGNS, admin_token
from afflux.shared.campaign_file import load_campaign_file
from afflux.shared.core.money import Money

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
    try:
        print(f"afflux demo: starting the embedded stack ({storage} storage) ...", flush=True)
        stack.start_infra()
        stack.apply_campaigns(terms_file)
        for name in ("clicks", "orders", "attribution", "payouts"):
            stack.start_service(name)
        print(f"afflux demo: stack up in {time.monotonic() - started:.1f}s", flush=True)
        client = DemoClient(stack.url("clicks"), stack.url("orders"), stack.url("payouts"), token)
        rows = asyncio.run(_simulate(client, programs, creator_ids(creators), visitors, seed))
        _print_table(rows)
    except StartFailed as exc:
        print(f"afflux demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nafflux demo: interrupted", file=sys.stderr)
        return 130
    finally:
        stack.stop()
    print(f"afflux demo: done in {time.monotonic() - started:.1f}s; stack stopped.")
    return 0


async def _simulate(
    client: DemoClient, programs: list[Program], creators: list[str], visitors: int, seed: int
) -> list[CreatorRow]:
    async with client:
        traffic = Traffic(client, programs, creators)
        await traffic.create_links()
        bar = ProgressBar(visitors, "simulating visitors")
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
        waited = time.monotonic() - last_order_at
        return await client.settled_rows(min_wait_s=max(0.0, grace + 2 - waited))


def _print_table(rows: list[CreatorRow]) -> None:
    header = (
        f"{'creator':<12}{'currency':>9}{'clicks':>8}{'conv.':>7}"
        f"{'revenue':>14}{'commission':>13}{'EPC':>9}"
    )
    print()
    print(header)
    print("-" * len(header))
    for row in sorted(rows, key=lambda r: (-r.commission_minor, r.affiliate_id, r.currency)):
        revenue = Money(row.revenue_minor, row.currency).format().split()[0]
        commission = Money(row.commission_minor, row.currency).format().split()[0]
        epc = Money(row.epc_minor, row.currency).format().split()[0]
        print(
            f"{row.affiliate_id:<12}{row.currency:>9}{row.clicks:>8}{row.conversions:>7}"
            f"{revenue:>14}{commission:>13}{epc:>9}"
        )
    print()
