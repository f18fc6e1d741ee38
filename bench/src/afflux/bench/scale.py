"""``afflux bench scale [--json]``: one step of the capacity plan (docs/capacity.md) on
this machine: the same workload on one and on two attribution workers, and on one and two
ledger consumers, gives the same outputs; each configuration's events/s is printed.

Attribution: the attribution bench's seeded mix is produced to a fresh broker for each
configuration; ``--workers`` worker processes (one consumer group, distinct instance ids
and data directories) share its partitions. The clock runs from the first worker turning
ready until the outputs equal the batch oracle's, refunds included, as in
``afflux bench attribution``, so the second worker's joining the group (a rebalance, a few
seconds) is inside the figure, as it is when a worker is added to a running group; the
default 200,000 visitors make it a small part. The two configurations' outputs are also
compared with each other.

Ledger: the ledger bench's workload applied by one consumer, then by two consumer
processes that split the partitions as a consumer group would, each on a fresh Redis
database; both ledgers are checked against the commission oracle (every fact stored once,
every offset at its end, the journal netted per line and approval time).

On two cores the second worker or consumer shares the machine with the first and with the
broker or Redis: the figure shows what partitioning costs or gains here, not the per-core
figure the plan multiplies (that is each service's own bench).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from afflux.bench.attribution import (
    INPUTS,
    PARTITIONS,
    _decisions,
    _wait_outputs,
    count_records,
    healthy,
    realistic_mix,
)
from afflux.bench.feed import produce, publish_campaigns
from afflux.cli.help_format import PlainArgumentParser
from afflux.oracle import attribute, canonical
from afflux.shared.events import OrderRefunded
from afflux.shared.io.kafka import create_topics

CONFIGURATIONS = (1, 2)


def attribution_run(
    args: Any, work: Path, workers: int, expected: set[str], scenario: Any
) -> dict[str, Any]:
    """Events/s of ``workers`` worker processes over the scenario on a fresh broker, and
    what they emitted."""
    from afflux.cli.brokers import broker_of, start_broker_on_storage
    from afflux.cli.processes import Child, free_port
    from afflux.cli.storage import storage_of

    here = work / f"attribution-{workers}"
    port = free_port()
    infra = start_broker_on_storage(broker_of(args), port, here, storage_of(args))
    bootstrap = f"127.0.0.1:{port}"
    children: list[Child] = []
    try:
        asyncio.run(create_topics(bootstrap, PARTITIONS))
        events = scenario.events
        joined = [e for e in events if not isinstance(e, OrderRefunded)]
        refunds = [e for e in events if isinstance(e, OrderRefunded)]
        asyncio.run(publish_campaigns(bootstrap, scenario.campaigns))
        asyncio.run(produce(bootstrap, joined, PARTITIONS, pack=200))
        asyncio.run(count_records(bootstrap, INPUTS))
        ports = [free_port() for _ in range(workers)]
        for n, wport in enumerate(ports):
            env = {
                "AFFLUX_KAFKA_BOOTSTRAP": bootstrap,
                "AFFLUX_ATTRIBUTION_PORT": str(wport),
                "AFFLUX_TOPIC_PARTITIONS": str(PARTITIONS),
                "AFFLUX_DATA_DIR": str(here / f"data-{n}"),
                "AFFLUX_REFUND_WAIT_SECONDS": "1",
                "AFFLUX_LOG_LEVEL": os.environ.get("AFFLUX_LOG_LEVEL", "WARNING"),
                "AFFLUX_STATE_STORE": args.state_store,
                "AFFLUX_INSTANCE_ID": f"scale-{n}",
            }
            children.append(
                Child(
                    f"attribution-{n}",
                    [sys.executable, "-m", "afflux.attribution"],
                    here / "logs" / f"attribution-{n}.log",
                    env=env,
                ).start()
            )
        deadline = time.monotonic() + 120
        while not any(healthy(p) for p in ports):
            if time.monotonic() > deadline:
                raise TimeoutError("no attribution worker turned ready within 120 s")
            time.sleep(0.05)
        started = time.perf_counter()
        limit_s = max(300.0, len(events) / 1000)
        decided = {line for line in expected if _decisions(line)}
        asyncio.run(_wait_outputs(bootstrap, decided, limit_s=limit_s, only=_decisions))
        asyncio.run(produce(bootstrap, refunds, PARTITIONS, pack=200))
        got = asyncio.run(_wait_outputs(bootstrap, expected, limit_s=limit_s))
        took = time.perf_counter() - started
        return {"value": len(events) / took, "seconds": took, "outputs": got}
    finally:
        for child in children:
            child.stop()
        for infra_child in reversed(infra):
            infra_child.stop()


def attribution_step(args: Any, work: Path) -> dict[str, Any]:
    scenario = realistic_mix(args.seed, args.visitors, prefix="s")
    result = attribute(scenario.events, scenario.campaigns)
    expected = canonical([*result.conversions, *result.reversals, *result.unmatched])
    runs = {n: attribution_run(args, work, n, expected, scenario) for n in CONFIGURATIONS}
    one, two = runs[1], runs[2]
    for n, run in runs.items():
        same = "equal" if run["outputs"] == expected else "DIFFERENT"
        print(
            f"attribution, {n} worker{'s' if n > 1 else ''}: {run['value']:,.0f} events/s "
            f"({run['seconds']:.1f}s; outputs {same} to the oracle's {len(expected):,})",
            flush=True,
        )
    return {
        "events": len(scenario.events),
        "attribution_one_worker": round(one["value"]),
        "attribution_two_workers": round(two["value"]),
        "attribution_ratio": round(two["value"] / one["value"], 3),
        "attribution_outputs": len(expected),
        "attribution_oracle_equal": one["outputs"] == expected and two["outputs"] == expected,
        "attribution_outputs_equal": one["outputs"] == two["outputs"],
    }


def ledger_step(args: Any, work: Path) -> dict[str, Any]:
    """The ledger bench's workload through one consumer and through two, each checked."""
    from afflux.bench import ledger
    from afflux.bench.ledger_checks import differences, inspect_ledger, oracle_targets
    from afflux.bench.ledger_cluster import run_consumers
    from afflux.cli.embedded import start_redis
    from afflux.cli.processes import free_port

    events = ledger.generate(args.events, args.creators, 28, args.seed)
    records = ledger.to_records(events, 2)
    kinds = {type(e).__name__ for e in events}
    assert {"ConversionAttributed", "ClickRecorded"} <= kinds, kinds
    expected = ledger.Expected(
        facts=sum(
            1
            for e in events
            if type(e).__name__ in ("ConversionAttributed", "ConversionReversed", "ClickRecorded")
        ),
        offsets=_offsets(records),
        oracle=oracle_targets(events, ledger.bench_campaigns()),
    )
    affiliates = sorted({e.affiliate_id for e in events if hasattr(e, "affiliate_id")})
    port = free_port()
    redis = start_redis(port, work / "redis", work / "logs")
    out: dict[str, Any] = {"ledger_events": len(events)}
    nets: dict[int, Any] = {}
    try:
        for db, consumers in enumerate(CONFIGURATIONS):
            url = f"redis://127.0.0.1:{port}/{db}"
            ran = run_consumers(url, records, 2_000, consumers)
            found, _ = asyncio.run(inspect_ledger(url, affiliates, memory=False))
            nets[consumers] = found.journal.nets
            holds = expected.holds(found)
            out[f"ledger_{_count(consumers)}"] = round(ran["value"])
            out[f"ledger_{_count(consumers)}_check"] = "ok" if holds else "MISMATCH"
            print(
                f"ledger, {consumers} consumer{'s' if consumers > 1 else ''}: "
                f"{ran['value']:,.0f} events/s ({ran['seconds']:.1f}s; "
                f"{len(differences(found.journal.nets, expected.oracle))} amounts differ from "
                f"the oracle: {'ok' if holds else 'MISMATCH'})",
                flush=True,
            )
    finally:
        redis.stop()
    out["ledger_ratio"] = round(out["ledger_two_consumers"] / out["ledger_one_consumer"], 3)
    out["ledger_outputs_equal"] = nets[1] == nets[2]
    return out


def _count(consumers: int) -> str:
    return "one_consumer" if consumers == 1 else "two_consumers"


def _offsets(records: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for topic, partition, _, _ in records:
        counts[f"{topic}|{partition}"] = counts.get(f"{topic}|{partition}", 0) + 1
    return counts


def main(argv: list[str]) -> int:
    from afflux.bench.side_by_side import broker_line
    from afflux.cli.brokers import add_broker_option, broker_of
    from afflux.cli.storage import add_storage_option, storage_of

    parser = PlainArgumentParser(prog="afflux bench scale", description=__doc__)
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    parser.add_argument("--visitors", type=int, default=200_000, help="attribution workload")
    parser.add_argument("--events", type=int, default=40_000, help="ledger workload")
    parser.add_argument("--creators", type=int, default=2_000, help="ledger workload")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--state-store",
        choices=("memory", "disk"),
        default="memory",
        help="the workers' state store (AFFLUX_STATE_STORE)",
    )
    add_storage_option(parser)
    add_broker_option(parser)
    args = parser.parse_args(argv)
    print(broker_line(broker_of(args), storage_of(args)), flush=True)
    work = Path(tempfile.mkdtemp(prefix="afflux-bench-scale-"))
    ok = False
    try:
        result: dict[str, Any] = {"bench": "scale"}
        result |= attribution_step(args, work)
        result |= ledger_step(args, work)
        ok = (
            result["attribution_oracle_equal"]
            and result["attribution_outputs_equal"]
            and result["ledger_one_consumer_check"] == "ok"
            and result["ledger_two_consumers_check"] == "ok"
            and result["ledger_outputs_equal"]
        )
        result |= {
            "value": result["attribution_two_workers"],
            "unit": "events/s",
            "baseline": result["attribution_one_worker"],
            "ratio": result["attribution_ratio"],
            "baseline_name": "the same workload on one attribution worker",
            "check": "ok" if ok else "MISMATCH",
            "load_average_1m": round(os.getloadavg()[0], 2),
            "broker": args.broker,
            "storage": args.storage,
            "state_store": args.state_store,
        }
        print(
            f"two workers / one: {result['attribution_ratio']:.2f}; two ledger consumers / "
            f"one: {result['ledger_ratio']:.2f}; same outputs in every configuration: "
            f"{result['check']}"
        )
        if args.json:
            print(json.dumps(result))
        return 0 if ok else 1
    finally:
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"logs kept in {work}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
