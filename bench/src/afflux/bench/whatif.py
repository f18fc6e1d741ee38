"""``afflux bench whatif``: what-if replay speed from the topics, beside a plain read of
the same topics in the same run.

A seeded workload (the attribution bench's mix: about two clicks per visitor, one order
in ten, refunds and lead confirmations; four campaigns with plans using every element)
is produced to the input topics of a broker started for the run. Then, in this one
process (one core):

- the plain read: every record of clicks, orders and refunds to the high watermark, its
  value untouched (aiokafka alone: the floor any replay pays);
- the what-if: the same read, each record parsed and the campaign's events taken
  (``afflux.shared.whatif_decode``), replayed under the recorded terms and under a draft,
  and the two compared (``afflux.shared.io.whatif_source.run_whatif``), as
  ``afflux campaigns whatif`` and ``POST /v1/campaigns/{id}/whatif`` run it.

Events per second count every event on the topics (each what-if reads them all), for
both. Its checks (exit 1 when one fails): a draft equal to the current terms of a
campaign with one terms version gives an empty diff; the current side pays every
creator what the commission reference gives over the batch attribution oracle's outputs;
doubling a campaign's tier rates changes its diff.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from afflux.bench.feed import produce, publish_campaigns
from afflux.cli.help_format import PlainArgumentParser
from afflux.oracle import attribute, generate, reference_from_events
from afflux.shared.core.terms import CampaignTerms, CommissionPlan, TermsVersion
from afflux.shared.core.whatif.log import EVER
from afflux.shared.events import ClickRecorded, Envelope
from afflux.shared.io.gc_policy import tune_gc
from afflux.shared.io.kafka import create_topics
from afflux.shared.io.whatif_source import WHATIF_TOPICS, ReplayBounds, read_to_end, run_whatif

PARTITIONS = 4
TARGET = 100_000
UNCHANGED = "globex-apps"  # one terms version: unchanged terms must give an empty diff
DOUBLED = "acme-fashion"
PLAN = CommissionPlan.model_validate(
    {
        "sale": {"rate": {"percent": "8"}, "new_customer": {"percent": "12"}},
        "tiers": [
            {"from_sales": 3, "rate": {"percent": "10"}},
            {"from_sales": 6, "rate": {"percent": "12.5"}},
        ],
        "milestones": [{"at_sales": 4, "bonus_minor": 1000}],
        "lead_minor": 300,
        "actions_minor": {"install": 150},
        "base_fee_minor": 500,
        "click": {"per_click_minor": 7, "paid_click_cap": 5},
        "creator_cap_minor": 400_000,
    }
)


def with_plan(versions: Sequence[TermsVersion]) -> tuple[TermsVersion, ...]:
    return tuple(
        v.model_copy(update={"terms": v.terms.model_copy(update={"plan": PLAN})}) for v in versions
    )


def doubled_tiers(terms: CampaignTerms) -> CampaignTerms:
    """``terms`` with every tier's rate doubled (at most 100 %)."""
    tiers = tuple(
        t.model_copy(
            update={"rate": t.rate.model_copy(update={"percent": min(100, 2 * t.rate.percent)})}
        )
        if t.rate.percent is not None
        else t
        for t in terms.plan.tiers
    )
    return terms.model_copy(update={"plan": terms.plan.model_copy(update={"tiers": tiers})})


def oracle_pay(
    events: Sequence[Envelope], campaign: str, versions: Sequence[TermsVersion]
) -> dict[str, int]:
    """creator -> what the commission reference pays over the attribution oracle's outputs."""
    result = attribute(events, {campaign: versions})
    clicks = [e for e in events if isinstance(e, ClickRecorded) and e.campaign_id == campaign]
    lines = reference_from_events(
        [*result.conversions, *result.reversals, *clicks], {campaign: versions}
    )
    pay: dict[str, int] = defaultdict(int)
    for found in lines.values():
        for line in found:
            pay[line.affiliate_id] += line.pays_minor
    return {a: v for a, v in pay.items() if v}


def main(argv: list[str]) -> int:
    parser = PlainArgumentParser(prog="afflux bench whatif", description=__doc__)
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    parser.add_argument("--visitors", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each; the best")
    from afflux.bench.side_by_side import broker_line
    from afflux.cli.brokers import add_broker_option, broker_of, start_broker_on_storage
    from afflux.cli.processes import free_port
    from afflux.cli.storage import add_storage_option, storage_of

    add_storage_option(parser)
    add_broker_option(parser)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="afflux-bench-whatif-"))
    port = free_port()
    print(broker_line(broker_of(args), storage_of(args)), flush=True)
    infra = start_broker_on_storage(broker_of(args), port, work, storage_of(args))
    bootstrap = f"127.0.0.1:{port}"
    passed = False
    try:
        asyncio.run(create_topics(bootstrap, PARTITIONS))
        print(f"generating {args.visitors} visitors ...", flush=True)
        scenario = generate(
            args.seed, visitors=args.visitors, clicks_per_visitor=2.0, order_share=0.1, prefix="w"
        )
        campaigns = {c: with_plan(v) for c, v in scenario.campaigns.items()}
        asyncio.run(publish_campaigns(bootstrap, campaigns))
        asyncio.run(produce(bootstrap, scenario.events, PARTITIONS, pack=200))
        events = len(scenario.events)
        print(f"{events} input events on {', '.join(WHATIF_TOPICS)}", flush=True)

        def plain() -> float:
            values = 0

            def take(value: bytes | None) -> None:
                nonlocal values
                values += 1

            started = time.perf_counter()
            asyncio.run(
                read_to_end(bootstrap, WHATIF_TOPICS, take, deadline=time.monotonic() + 600)
            )
            return time.perf_counter() - started

        tune_gc()  # the collector as the payouts process runs it (afflux.shared.io.serving)
        bounds = ReplayBounds(max_events=events * 2, time_limit_s=600)
        unchanged = max(campaigns[UNCHANGED], key=lambda v: v.version).terms

        def replayed() -> tuple[float, object, int]:
            started = time.perf_counter()
            diff, reader = asyncio.run(
                run_whatif(bootstrap, campaigns[UNCHANGED], unchanged, EVER, bounds)
            )
            return time.perf_counter() - started, diff, reader.events

        plain_s = min(plain() for _ in range(args.runs))
        timed = [replayed() for _ in range(args.runs)]
        whatif_s, diff, read = min(timed, key=lambda t: t[0])
        plain_rate, whatif_rate = events / plain_s, events / whatif_s
        print(f"plain read of the topics: {plain_rate:,.0f} events/s ({plain_s:.2f}s)")
        print(
            f"what-if replay from the topics: {whatif_rate:,.0f} events/s ({whatif_s:.2f}s, "
            f"one process; read, decode, both replays, diff; target {TARGET:,})"
        )
        print(f"ratio to the plain read: {whatif_rate / plain_rate:.2f}")

        from afflux.shared.core.whatif.diff import WhatIfDiff
        from afflux.shared.core.whatif.replay import replay

        assert isinstance(diff, WhatIfDiff)
        reader_diff, reader = asyncio.run(
            run_whatif(
                bootstrap,
                campaigns[DOUBLED],
                doubled_tiers(max(campaigns[DOUBLED], key=lambda v: v.version).terms),
                EVER,
                bounds,
            )
        )
        current = {
            a: v
            for a, v in replay(reader.log, campaigns[DOUBLED]).commission_by_creator().items()
            if v
        }
        expected = oracle_pay(scenario.events, DOUBLED, campaigns[DOUBLED])
        unchanged_pay = oracle_pay(scenario.events, UNCHANGED, campaigns[UNCHANGED])
        checks = {
            "all_events_read": read == events,
            "unchanged_terms_empty_diff": diff.empty,
            "unchanged_equals_oracle": diff.current_total_minor == sum(unchanged_pay.values()),
            "current_equals_oracle": current == expected,
            "doubled_tiers_change": not reader_diff.empty
            and reader_diff.draft_total_minor > reader_diff.current_total_minor,
        }
        passed = all(checks.values())
        for name, held in checks.items():
            print(f"check {name}: {'ok' if held else 'FAILED'}")
        print(
            f"doubling {DOUBLED}'s tier rates: {reader_diff.current_total_minor} -> "
            f"{reader_diff.draft_total_minor} ({len(reader_diff.creators)} creators change)"
        )
        if args.json:
            print(
                json.dumps(
                    {
                        "bench": "whatif",
                        "broker": broker_of(args),
                        "events": events,
                        "plain_read_events_per_s": round(plain_rate),
                        "whatif_events_per_s": round(whatif_rate),
                        "ratio": round(whatif_rate / plain_rate, 3),
                        "target": TARGET,
                        "checks": checks,
                        "passed": passed,
                    }
                )
            )
        return 0 if passed else 1
    finally:
        for child in reversed(infra):
            child.stop()
        if passed:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"logs kept in {work / 'logs'}", file=sys.stderr)
