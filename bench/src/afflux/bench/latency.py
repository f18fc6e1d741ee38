"""``afflux bench latency [--json]``: from an order's 202 to its conversion on the topic
and to its postings being readable from the payouts API, on the whole running stack.

The stack (``--broker``, ``--storage``) starts on free ports with the example
campaigns; every order goes to ``--campaign`` (its grace is the baseline) for a visitor
whose click is already recorded. A probe (``--probe-seconds``) measures the order
capacity (202s per second with many orders in flight); then orders are sent at half
that rate for ``--seconds``: half by cookie (decided after the grace), a quarter naming
the visitor's click id and a quarter with a creator's code (decided at once: see
docs/attribution.md). It prints p50/p99 of each step per kind beside the grace and
the goals, and exits 1 unless every order was answered 202 and won by the creator and
rule it should, every sampled posting became readable and the worker counted its
at-once decisions. With ``--json`` the last line is ``{"bench": "latency", "value": p99
ms from 202 to a readable posting of a cookie order, "unit": "ms", "baseline": the
grace in ms, "ratio", ...}``.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import secrets
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from afflux.bench.latency_run import AT_ONCE, Bench, Timed
from afflux.bench.side_by_side import broker_line
from afflux.cli.brokers import add_broker_option, broker_of
from afflux.cli.demo_client import DemoClient
from afflux.cli.help_format import PlainArgumentParser
from afflux.cli.stack import fresh_stack
from afflux.cli.storage import add_storage_option, storage_of
from afflux.cli.traffic import creator_ids
from afflux.shared.campaign_file import load_campaign_file
from afflux.shared.core.terms import CampaignTerms

EXAMPLES = Path(__file__).resolve().parents[4] / "examples" / "campaigns.yaml"
PROBE_CONCURRENCY = 32
# Goals (ms): a conversion within the grace plus this; a posting readable this long after
# its conversion; an order decided at once on the topic this long after its 202.
AFTER_GRACE_MS, READABLE_MS, AT_ONCE_MS = 250, 500, 250
Result = dict[str, Any]


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest rank: the smallest value with at least ``p`` % of the values at or below."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def spread(values: Sequence[float]) -> dict[str, float | int | None]:
    def ms(v: float | None) -> float | None:
        return None if v is None else round(v, 1)

    return {"n": len(values), "p50": ms(percentile(values, 50)), "p99": ms(percentile(values, 99))}


def figures(orders: Sequence[Timed]) -> Result:
    """p50/p99 per step for the orders decided after the grace and those decided at once."""
    out: Result = {}
    for name, group in (
        ("after_grace", [t for t in orders if t.kind not in AT_ONCE]),
        ("at_once", [t for t in orders if t.kind in AT_ONCE]),
    ):
        steps = [
            (t.accepted_ms, t.converted_ms, t.readable_ms)
            for t in group
            if t.accepted_ms is not None and t.converted_ms is not None
        ]
        readable = [(a, c, r) for a, c, r in steps if r is not None]
        out[name] = {
            "to_conversion_ms": spread([c - a for a, c, _ in steps]),
            "to_readable_ms": spread([r - a for a, _, r in readable]),
            "conversion_to_readable_ms": spread([r - c for _, c, r in readable]),
        }
    return out


def checks(orders: Sequence[Timed], refused: Sequence[str], at_once_counted: float) -> Result:
    accepted = [t for t in orders if t.accepted_ms is not None]
    return {
        "accepted": len(accepted),
        "refused": len(refused),
        "refused_samples": list(refused[:3]),
        "unconverted": sum(t.converted_ms is None for t in accepted),
        "wrong_winner": [t.order_id for t in accepted if t.got is not None and t.got != t.expect][
            :5
        ],
        "unreadable": sum(t.polled and t.readable_ms is None for t in accepted),
        "polled": sum(t.polled for t in accepted),
        "at_once_sent": sum(t.kind in AT_ONCE for t in accepted),
        "at_once_counted": at_once_counted,
    }


def at_once_decisions(attribution_url: str) -> float:
    """``afflux_attribution_decisions_total{when="at_once"}`` of the running worker."""
    text = httpx.get(f"{attribution_url}/metrics", timeout=5).text
    found = re.search(r'^afflux_attribution_decisions_total\{when="at_once"\} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


async def _measure(
    client: DemoClient, terms: CampaignTerms, bootstrap: str, token: str, options: Any
) -> tuple[Bench, float, float]:
    bench = Bench(client, terms, bootstrap, token)
    ready, stop = asyncio.Event(), asyncio.Event()
    watcher = asyncio.create_task(bench.watch(ready, stop))
    try:
        await asyncio.wait_for(ready.wait(), 30)
        await bench.record_clicks(creator_ids(options.creators), options.visitors)
        capacity = await bench.capacity(options.probe_seconds, PROBE_CONCURRENCY)
        # The probe's orders are decided after their grace: let them pass first.
        await bench.settled("probe", terms.grace_ms / 1000 + 60)
        rate = capacity / 2
        poll_every = max(1, round(rate / options.polled_per_second))
        await bench.steady(rate, options.seconds, poll_every)
        load = os.getloadavg()[0]
        await bench.settled("run", terms.grace_ms / 1000 + 60)
        return bench, capacity, load
    finally:
        stop.set()
        await watcher
        await bench.close()


def run(options: Any, work: Path) -> Result:
    storage, broker = storage_of(options), broker_of(options)
    campaigns = {
        e.terms.campaign_id: e.terms for e in load_campaign_file(options.campaigns).campaigns
    }
    terms = campaigns[options.campaign]
    token = secrets.token_urlsafe(16)
    stack = fresh_stack(work, token, storage, broker)
    try:
        stack.start_infra()
        stack.apply_campaigns(options.campaigns)
        stack.start_all()
        client = DemoClient(stack.url("clicks"), stack.url("orders"), stack.url("payouts"), token)

        async def measure() -> tuple[Bench, float, float]:
            async with client:
                return await _measure(client, terms, stack.kafka_bootstrap, token, options)

        bench, capacity, load = asyncio.run(measure())
        counted = at_once_decisions(stack.url("attribution"))
    finally:
        stack.stop()
    steady = [t for t in bench.run.orders.values() if "-run-" in t.order_id]
    result = _result(terms, figures(steady), checks(steady, bench.run.refused, counted))
    result.update(
        {
            "capacity_orders_per_s": round(capacity, 1),
            "rate_orders_per_s": round(capacity / 2, 1),
            "seconds": options.seconds,
            "load_average_1m": round(load, 2),
            "campaign": terms.campaign_id,
            "storage": storage,
            "broker": broker,
        }
    )
    return result


def _result(terms: CampaignTerms, measured: Result, checked: Result) -> Result:
    grace = terms.grace_ms
    value = measured["after_grace"]["to_readable_ms"]["p99"] or 0.0
    return {
        "bench": "latency",
        "value": value,
        "unit": "ms",
        "baseline": grace,
        "ratio": round(value / grace, 3) if grace else 0.0,
        **measured,
        "goals": goals(grace, measured),
        **checked,
    }


def goals(grace_ms: int, measured: Result) -> dict[str, bool]:
    def under(p99: float | None, limit: float) -> bool:
        return p99 is not None and p99 <= limit

    after, once = measured["after_grace"], measured["at_once"]
    return {
        "conversion_within_grace_plus_250ms": under(
            after["to_conversion_ms"]["p99"], grace_ms + AFTER_GRACE_MS
        ),
        "readable_within_500ms_of_conversion": under(
            after["conversion_to_readable_ms"]["p99"], READABLE_MS
        ),
        "at_once_conversion_within_250ms": under(once["to_conversion_ms"]["p99"], AT_ONCE_MS),
    }


def passed(result: Result) -> bool:
    return bool(
        result["accepted"] > 0
        and result["refused"] == 0
        and result["unconverted"] == 0
        and not result["wrong_winner"]
        and result["unreadable"] == 0
        and result["polled"] > 0
        and result["at_once_counted"] >= result["at_once_sent"] > 0
    )


def summary(result: Result) -> str:
    def line(name: str, step: str) -> str:
        s = result[name][step]
        return f"p50 {s['p50']} ms, p99 {s['p99']} ms (n={s['n']})"

    marks = ", ".join(f"{k}: {'met' if v else 'missed'}" for k, v in result["goals"].items())
    return "\n".join(
        [
            f"latency: {result['rate_orders_per_s']} orders/s for {result['seconds']} s "
            f"(half the probed {result['capacity_orders_per_s']} orders/s), campaign "
            f"{result['campaign']}, grace {result['baseline']} ms, load average "
            f"{result['load_average_1m']}",
            f"  after the grace, 202 -> conversion: {line('after_grace', 'to_conversion_ms')}",
            f"  after the grace, 202 -> readable: {line('after_grace', 'to_readable_ms')}",
            "  after the grace, conversion -> readable: "
            + line("after_grace", "conversion_to_readable_ms"),
            f"  at once, 202 -> conversion: {line('at_once', 'to_conversion_ms')}",
            f"  at once, 202 -> readable: {line('at_once', 'to_readable_ms')}",
            f"  p99 202 -> readable {result['value']} ms vs grace {result['baseline']} ms: "
            f"ratio {result['ratio']}",
            f"  goals: {marks}",
            f"  checks: {result['accepted']} accepted, {result['refused']} refused, "
            f"{result['unconverted']} without conversion, {len(result['wrong_winner'])} won "
            f"by another, {result['unreadable']} of {result['polled']} sampled postings "
            f"unreadable, {result['at_once_counted']:.0f} decided at once by the worker for "
            f"{result['at_once_sent']} sent",
        ]
    )


def main(argv: Sequence[str]) -> int:
    parser = PlainArgumentParser(prog="afflux bench latency", description=__doc__)
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured seconds")
    parser.add_argument("--probe-seconds", type=float, default=8.0)
    parser.add_argument("--visitors", type=int, default=400, help="visitors with a click")
    parser.add_argument("--creators", type=int, default=20)
    parser.add_argument(
        "--polled-per-second", type=float, default=8.0, help="orders whose postings are polled"
    )
    parser.add_argument("--campaigns", type=Path, default=EXAMPLES)
    parser.add_argument("--campaign", default="acme-fashion")
    add_storage_option(parser)
    add_broker_option(parser)
    options = parser.parse_args(list(argv))
    with tempfile.TemporaryDirectory(prefix="afflux-bench-latency-") as tmp:
        result = run(options, Path(tmp) / "stack")
    print(broker_line(broker_of(options), storage_of(options)))
    print(summary(result))
    if options.json:
        print(json.dumps(result))
    return 0 if passed(result) else 1
