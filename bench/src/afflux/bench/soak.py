"""``afflux bench soak --minutes N``: the stack at half its measured capacity.

The stack runs on ``--broker`` (the embedded Tansu or Apache Kafka). First a short
probe (``--probe-seconds``, 20) measures the stack's capacity (visitor journeys per second
with no think time, all through HTTP); then traffic runs at half that rate for
N minutes, and every minute prints throughput, errors and each process's
resident memory. The last line (with --json) compares the sustained rate with
the probed capacity and reports memory growth from the first to the last minute.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import time
from pathlib import Path

import httpx

from afflux.bench.side_by_side import broker_line
from afflux.cli.brokers import add_broker_option, broker_of
from afflux.cli.demo_client import DemoClient
from afflux.cli.help_format import PlainArgumentParser
from afflux.cli.stack import Stack, fresh_stack
from afflux.cli.storage import add_storage_option, storage_of
from afflux.cli.traffic import Program, Traffic, TrafficMix, creator_ids
from afflux.shared.campaign_file import load_campaign_file

PROBE_SECONDS = 20
PROBE_CONCURRENCY = 64
FAST_MIX = TrafficMix(think_time_s=(0.0, 0.0))


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def main(argv: list[str]) -> int:
    parser = PlainArgumentParser(prog="afflux bench soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--campaigns", default="examples/campaigns.yaml")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--probe-seconds", type=float, default=PROBE_SECONDS)
    add_storage_option(parser)
    add_broker_option(parser)
    args = parser.parse_args(argv)
    storage, broker = storage_of(args), broker_of(args)
    programs = [Program(e.terms) for e in load_campaign_file(Path(args.campaigns)).campaigns]
    work = Path(".afflux") / "soak"
    token = secrets.token_urlsafe(16)
    stack = fresh_stack(work, token, storage, broker)
    print(f"afflux bench soak: {broker_line(broker, storage)}", flush=True)
    try:
        stack.start_infra()
        stack.apply_campaigns(Path(args.campaigns))
        stack.start_all()
        result = asyncio.run(_soak(stack, token, programs, args.minutes, args.probe_seconds))
    finally:
        stack.stop()
    result["broker"] = broker
    if args.json:
        print(json.dumps(result))
    return 0 if result["errors"] == 0 else 1


async def _soak(
    stack: Stack, token: str, programs: list[Program], minutes: float, probe_seconds: float
) -> dict[str, object]:
    client = DemoClient(stack.url("clicks"), stack.url("orders"), stack.url("payouts"), token)
    async with client:
        probe = Traffic(client, programs, creator_ids(50), mix=FAST_MIX, run_id="probe")
        await probe.create_links()
        capacity, capacity_requests = await _probe(probe, probe_seconds)
        print(
            f"probe: capacity {capacity:.1f} visits/s = {capacity_requests:.1f} requests/s "
            f"({PROBE_CONCURRENCY} concurrent)"
        )
        traffic = Traffic(client, programs, creator_ids(50), run_id="soak")
        for program, probed in zip(traffic.programs, probe.programs, strict=True):
            program.links = probed.links
        result = await _steady(stack, traffic, capacity / 2, minutes)
        result["baseline"] = round(capacity_requests, 1)
        result["ratio"] = round(float(result["value"]) / capacity_requests, 3)  # type: ignore[arg-type]
        return result


async def _probe(traffic: Traffic, seconds: float) -> tuple[float, float]:
    """Visits/s and requests/s with no think time and many visitors at once."""
    deadline = time.monotonic() + seconds
    done = 0

    async def worker(worker_no: int) -> None:
        nonlocal done
        rng = random.Random(worker_no)
        while time.monotonic() < deadline:
            try:
                await traffic.visit(worker_no * 1_000_000 + done, rng)
            except (RuntimeError, httpx.HTTPError):
                traffic.tally.errors += 1
            done += 1

    await asyncio.gather(*(worker(n) for n in range(PROBE_CONCURRENCY)))
    requests = traffic.tally.clicks + traffic.tally.orders + traffic.tally.refunds
    return done / seconds, requests / seconds


async def _steady(stack: Stack, traffic: Traffic, rate: float, minutes: float) -> dict[str, object]:
    interval = 1.0 / max(rate, 0.1)
    end = time.monotonic() + minutes * 60
    tasks: set[asyncio.Task[None]] = set()
    pids = {c.name: c.pid for c in [*stack.infra, *stack.services.values()]}
    memory: list[dict[str, float]] = []
    per_minute: list[float] = []
    rng = random.Random(42)
    visitor = 0
    minute_start, minute_clicks = time.monotonic(), 0

    async def one(number: int) -> None:
        try:
            await traffic.visit(number, random.Random(number))
        except (RuntimeError, httpx.HTTPError):
            traffic.tally.errors += 1

    next_at = time.monotonic()
    print(f"soak: {rate:.1f} visits/s for {minutes:g} min")
    while time.monotonic() < end:
        next_at += rng.expovariate(1.0 / interval)
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        task = asyncio.create_task(one(visitor))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        visitor += 1
        if time.monotonic() - minute_start >= 60:
            requests = traffic.tally.clicks + traffic.tally.orders + traffic.tally.refunds
            throughput = (requests - minute_clicks) / (time.monotonic() - minute_start)
            sample = {name: rss_mb(pid) for name, pid in pids.items()}
            memory.append(sample)
            per_minute.append(throughput)
            rss = " ".join(f"{name}={mb:.0f}MB" for name, mb in sample.items())
            errors = traffic.tally.errors
            print(
                f"minute {len(memory)}: {throughput:.1f} req/s, errors {errors}, {rss}", flush=True
            )
            minute_start, minute_clicks = time.monotonic(), requests
    await asyncio.gather(*tasks)
    growth = (
        {name: round(memory[-1][name] - memory[0][name], 1) for name in memory[0]} if memory else {}
    )
    requests = traffic.tally.clicks + traffic.tally.orders + traffic.tally.refunds
    # A soak shorter than a minute (a smoke run) reports its whole run instead.
    whole_run = requests / (minutes * 60) if minutes > 0 else 0.0
    sustained = sum(per_minute) / len(per_minute) if per_minute else whole_run
    print(f"soak: errors {traffic.tally.errors}; RSS growth first->last minute (MB): {growth}")
    return {
        "bench": "soak",
        "value": round(sustained, 1),
        "unit": "requests/s",
        "baseline": 0.0,
        "baseline_unit": "requests/s at capacity (probe)",
        "ratio": 0.0,
        "errors": traffic.tally.errors,
        "rss_growth_mb": growth,
        "minutes": minutes,
    }
