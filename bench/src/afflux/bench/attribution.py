"""``afflux bench attribution [--json] [--state-store memory|disk] [--recovery]``: input
events/s through one worker process, beside a raw aiokafka consume-and-produce relay of
the same records, same run.

A seeded realistic mix (200k visitors, about 20 clicks per order, refunds, lead
confirmations) is produced packed per partition to a fresh broker (``--broker``: the
embedded Tansu or Apache Kafka). The relay reads every input record and writes it to
a scratch topic; then one worker starts and the clock runs from its /healthz turning
ready until its outputs equal the batch oracle's (so the figure includes the last
grace period). Both figures count input events.

``--recovery``: then the worker, holding every visitor's state, is killed (SIGKILL to
its PID), a few new visitors are produced, and a worker with the same instance id
starts; the figure is the time from its start to its first output (the new visitors'
decisions: process start, group join, state recovery, their grace period). The
baseline is the same after a second kill with the in-memory store, which reads the
whole changelog.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from afflux.bench.feed import produce, publish_campaigns
from afflux.cli.help_format import PlainArgumentParser
from afflux.oracle import OracleResult, Scenario, attribute, canonical, generate
from afflux.shared.events import Envelope, OrderRefunded
from afflux.shared.io.kafka import create_topics, new_producer
from afflux.shared.topics import CLICKS, CONVERSIONS, ORDERS, REFUNDS, REVERSALS, UNMATCHED
from afflux.shared.wire import UndecodableRecord, decode_record

PARTITIONS = 4
INPUTS = (CLICKS.name, ORDERS.name, REFUNDS.name)
OUTPUTS = (CONVERSIONS.name, REVERSALS.name, UNMATCHED.name)
RELAY_TOPIC = "bench.relay"


async def relay(bootstrap: str, records: int) -> float:
    """Seconds a raw aiokafka consumer+producer takes to copy every input record."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(RELAY_TOPIC, PARTITIONS, 1)])
    await admin.close()
    consumer = AIOKafkaConsumer(
        *INPUTS,
        bootstrap_servers=bootstrap,
        group_id="bench-relay",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    producer = new_producer(bootstrap, linger_ms=2, max_batch_size=1024 * 1024)
    await consumer.start()
    await producer.start()
    try:
        started = time.perf_counter()
        copied = 0
        while copied < records:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            futures = []
            for tp, batch in batches.items():
                for r in batch:
                    futures.append(
                        await producer.send(RELAY_TOPIC, r.value, key=r.key, partition=tp.partition)
                    )
                copied += len(batch)
            await asyncio.gather(*futures)
            if batches:
                await consumer.commit()
        return time.perf_counter() - started
    finally:
        await consumer.stop()
        await producer.stop()


async def count_records(bootstrap: str, topics: Sequence[str]) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        n, read = 0, dict.fromkeys(tps, 0)
        while True:
            for tp, batch in (await consumer.getmany(timeout_ms=200, max_records=20_000)).items():
                n += len(batch)
                read[tp] = batch[-1].offset + 1
            highs = [consumer.highwater(tp) for tp in tps]
            # None until a partition's first fetch answered (slow on a busy durable broker).
            if all(h is not None and h <= read[tp] for tp, h in zip(tps, highs, strict=True)):
                return n
    finally:
        await consumer.stop()


class OutputReader:
    """Reads the output topics incrementally."""

    def __init__(self, bootstrap: str) -> None:
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
        )
        self.events: list[str] = []

    async def start(self) -> None:
        await self.consumer.start()
        tps = [TopicPartition(t, p) for t in OUTPUTS for p in range(PARTITIONS)]
        self.consumer.assign(tps)
        await self.consumer.seek_to_beginning(*tps)

    async def poll(self) -> set[str]:
        for batch in (await self.consumer.getmany(timeout_ms=100, max_records=50_000)).values():
            for r in batch:
                try:
                    self.events.extend(canonical(decode_record(r.value)))
                except UndecodableRecord:
                    continue
        return set(self.events)

    async def stop(self) -> None:
        await self.consumer.stop()


def realistic_mix(seed: int, visitors: int, prefix: str) -> Scenario:
    """The benchmarks' workload: about two clicks per visitor, one order per ten."""
    return generate(
        seed,
        visitors=visitors,
        clicks_per_visitor=2.0,
        order_share=0.1,
        grace_seconds=1,
        prefix=prefix,
    )


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def main(argv: list[str]) -> int:
    parser = PlainArgumentParser(prog="afflux bench attribution", description=__doc__)
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    parser.add_argument("--visitors", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--transactional-relay",
        action="store_true",
        help="also time the relay with Kafka transactions (outputs and input offsets in one "
        "transaction, per poll and per record); Apache Kafka only",
    )
    from afflux.bench.side_by_side import broker_line
    from afflux.cli.brokers import add_broker_option, broker_of, start_broker_on_storage
    from afflux.cli.processes import Child, free_port
    from afflux.cli.storage import add_storage_option, storage_of

    parser.add_argument(
        "--state-store",
        choices=("memory", "disk"),
        default="memory",
        help="the worker's state store (AFFLUX_STATE_STORE)",
    )
    parser.add_argument(
        "--recovery",
        action="store_true",
        help="also time the first output after kill -9 and a restart (see above)",
    )
    add_storage_option(parser)
    add_broker_option(parser)
    args = parser.parse_args(argv)
    if args.transactional_relay and args.broker != "kafka":
        parser.error("--transactional-relay needs --broker kafka: Tansu has no transactions")
    work = Path(tempfile.mkdtemp(prefix="afflux-bench-attribution-"))
    port = free_port()
    print(broker_line(broker_of(args), storage_of(args)), flush=True)
    infra = start_broker_on_storage(broker_of(args), port, work, storage_of(args))
    bootstrap = f"127.0.0.1:{port}"
    worker: Child | None = None
    match = False
    try:
        asyncio.run(create_topics(bootstrap, PARTITIONS))
        print(f"generating {args.visitors} visitors ...", flush=True)
        scenario = realistic_mix(args.seed, args.visitors, prefix="b")
        events = scenario.events
        result = attribute(events, scenario.campaigns)
        expected = canonical(_all(result))
        decided = {line for line in expected if _decisions(line)}
        # As live: refunds come after their orders were decided (a backlog of old
        # refunds would outrun the join; docs/attribution.md, refunds).
        joined = [e for e in events if not isinstance(e, OrderRefunded)]
        refunds = [e for e in events if isinstance(e, OrderRefunded)]
        asyncio.run(publish_campaigns(bootstrap, scenario.campaigns))
        asyncio.run(produce(bootstrap, joined, PARTITIONS, pack=200))
        records = asyncio.run(count_records(bootstrap, INPUTS))
        print(f"{len(events)} input events in {records} packed records", flush=True)
        relay_s = asyncio.run(relay(bootstrap, records))
        baseline = len(events) / relay_s
        print(f"raw aiokafka relay: {baseline:,.0f} events/s ({relay_s:.1f}s)", flush=True)
        transactional: dict[str, int] = {}
        if args.transactional_relay:
            from afflux.bench.transactional_relay import run_all

            for per, took_s in run_all(bootstrap, INPUTS, PARTITIONS, records).items():
                transactional[f"transactional_relay_per_{per}"] = round(len(events) / took_s)
                print(
                    f"transactional relay, one transaction per {per}: "
                    f"{len(events) / took_s:,.0f} events/s ({took_s:.1f}s)",
                    flush=True,
                )

        wport = free_port()
        env = {
            "AFFLUX_KAFKA_BOOTSTRAP": bootstrap,
            "AFFLUX_ATTRIBUTION_PORT": str(wport),
            "AFFLUX_TOPIC_PARTITIONS": str(PARTITIONS),
            "AFFLUX_DATA_DIR": str(work / "data"),
            "AFFLUX_REFUND_WAIT_SECONDS": "1",
            "AFFLUX_LOG_LEVEL": os.environ.get("AFFLUX_LOG_LEVEL", "WARNING"),
            "AFFLUX_STATE_STORE": args.state_store,
            # Static membership: a restarted worker takes its partitions back at once.
            "AFFLUX_INSTANCE_ID": "bench",
        }
        worker = Child(
            "attribution",
            [sys.executable, "-m", "afflux.attribution"],
            work / "logs" / "attribution.log",
            env=env,
        ).start()
        worker.wait_until(lambda: healthy(wport), timeout_s=60)
        started = time.perf_counter()
        # At least 1,000 events/s on a loaded machine, and never less than five minutes.
        limit_s = max(300.0, len(events) / 1000)
        asyncio.run(_wait_outputs(bootstrap, decided, limit_s=limit_s, only=_decisions))
        joined_s = time.perf_counter() - started
        asyncio.run(produce(bootstrap, refunds, PARTITIONS, pack=200))
        got = asyncio.run(_wait_outputs(bootstrap, expected, limit_s=limit_s))
        took = time.perf_counter() - started
        value = len(events) / took
        match = got == expected
        print(
            f"attribution worker: {value:,.0f} events/s ({took:.1f}s, one process; "
            f"every order decided after {joined_s:.1f}s)"
        )
        print(f"ratio to the relay: {value / baseline:.2f}")
        print(
            f"oracle check: {'equal' if match else 'DIFFERENT'} "
            f"({len(expected)} expected, {len(got)} emitted)"
        )
        if not match:
            _print_difference(expected, got)
        recovery: dict[str, float] = {}
        if args.recovery:  # the worker holds every visitor's state, matched or not
            from afflux.bench.recovery import first_output_after_kill

            for n, store in enumerate((args.state_store, "memory")):
                took_s, worker = first_output_after_kill(
                    bootstrap, worker, {**env, "AFFLUX_STATE_STORE": store}, work, n
                )
                recovery[f"recovery_{store}_s" if n == 0 else "recovery_baseline_s"] = took_s
                print(
                    f"first output {took_s:.1f}s after kill -9 and restart "
                    f"({store} store{', the baseline' if n else ''})",
                    flush=True,
                )
        if args.json:
            print(
                json.dumps(
                    {
                        "bench": "attribution",
                        "value": round(value),
                        "unit": "events/s",
                        "baseline": round(baseline),
                        "ratio": round(value / baseline, 3),
                        "oracle_match": match,
                        "events": len(events),
                        "records": records,
                        "storage": args.storage,
                        "broker": args.broker,
                        "state_store": args.state_store,
                        **transactional,
                        **recovery,
                    }
                )
            )
        return 0 if match else 1
    finally:
        if worker is not None:
            worker.stop()
        for child in reversed(infra):
            child.stop()
        # A durable broker's log of the default run takes about 400 MB: kept only to
        # read the logs of a run that failed.
        if match:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"logs kept in {work / 'logs'}", file=sys.stderr)


def _print_difference(expected: set[str], got: set[str], limit: int = 5) -> None:
    """What differs from the oracle, by event type, and a few whole events."""
    for name, lines in (("missing", expected - got), ("extra", got - expected)):
        types: dict[str, int] = {}
        for line in lines:
            kind = json.loads(line).get("type", "?")
            types[kind] = types.get(kind, 0) + 1
        print(f"{name}: {len(lines)} {types}")
        for line in sorted(lines)[:limit]:
            print(f"  {line[:400]}")


def _all(result: OracleResult) -> list[Envelope]:
    return [*result.conversions, *result.reversals, *result.unmatched]


def _decisions(line: str) -> bool:
    return '"type": "ConversionAttributed"' in line or '"type": "OrderUnattributed"' in line


async def _wait_outputs(
    bootstrap: str,
    expected: set[str],
    limit_s: float,
    only: Callable[[str], bool] = lambda line: True,
) -> set[str]:
    reader = OutputReader(bootstrap)
    await reader.start()
    try:
        deadline = time.monotonic() + limit_s
        got: set[str] = set()
        while time.monotonic() < deadline:
            got = {line for line in await reader.poll() if only(line)}
            if len(got) >= len(expected):
                return got
            await asyncio.sleep(0.05)
        return got
    finally:
        await reader.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
