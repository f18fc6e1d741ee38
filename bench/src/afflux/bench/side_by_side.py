"""What ``afflux bench clicks`` and ``afflux bench orders`` share: a service measured
beside a bare FastAPI endpoint under the same server set-up, in the same run.

Each starts its own broker (``--broker``: the embedded Tansu or Apache Kafka) and
Redis on free ports with one campaign's terms published, the service and its bare
baseline as ``python -m`` children, and runs its load generator as a separate
process whose last stdout line is its JSON result. Events produced are counted on
the topic up to the fetch high watermarks (not ListOffsets); a packed record counts
each event it holds.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from afflux.cli.help_format import PlainArgumentParser
from afflux.shared.core.terms import CampaignTerms
from afflux.shared.io.campaign_publish import publish_terms
from afflux.shared.io.kafka import create_topics, topic_partitions

if TYPE_CHECKING:
    from afflux.cli.brokers import BrokerKind
    from afflux.cli.storage import BrokerStorage

Result = dict[str, Any]


@dataclass(frozen=True)
class Backbone:
    bootstrap: str
    redis_port: int
    broker: Any  # the broker's child process, for a bench that stops it


def start_backbone(
    work: Path,
    storage: BrokerStorage,
    terms: CampaignTerms,
    children: list[Any],
    broker: BrokerKind = "tansu",
) -> Backbone:
    """``broker`` and Redis on free ports (appended to ``children``), topics created,
    ``terms`` published."""
    from afflux.cli.brokers import start_broker_on_storage
    from afflux.cli.embedded import start_redis
    from afflux.cli.processes import free_port

    broker_port, redis_port = free_port(), free_port()
    started = start_broker_on_storage(broker, broker_port, work, storage)
    children += started
    aof = storage == "durable"
    children.append(start_redis(redis_port, work / "redis", work / "logs", aof=aof))
    bootstrap = f"127.0.0.1:{broker_port}"
    asyncio.run(create_topics(bootstrap, 4))
    asyncio.run(publish_terms(bootstrap, [(terms, 0)]))
    return Backbone(bootstrap, redis_port, started[-1])


def start_beside_bare(
    service: str, env: dict[str, str], work: Path, children: list[Any]
) -> tuple[str, str]:
    """``afflux.<service>`` (on ``AFFLUX_<SERVICE>_PORT``) and ``afflux.bench.<service>_bare``
    started and healthy (appended to ``children``): their base URLs."""
    from afflux.cli.processes import Child, free_port

    port, bare_port = free_port(), free_port()
    env = {**env, f"AFFLUX_{service.upper()}_PORT": str(port)}
    served = Child(service, [sys.executable, "-m", f"afflux.{service}"],
                   work / f"logs/{service}.log", env=env).start()  # fmt: skip
    children.append(served)
    bare = Child("bare", [sys.executable, "-m", f"afflux.bench.{service}_bare", str(bare_port)],
                 work / "logs/bare.log").start()  # fmt: skip
    children.append(bare)
    url, bare_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{bare_port}"
    _wait_healthy(url, served)
    _wait_healthy(bare_url, bare)
    return url, bare_url


def start_server(
    name: str, argv: list[str], port: int, work: Path, children: list[Any], env: dict[str, str]
) -> str:
    """``argv`` started as ``name`` (appended to ``children``) and healthy on ``port``:
    its base URL."""
    from afflux.cli.processes import Child

    child = Child(name, argv, work / f"logs/{name}.log", env=env).start()
    children.append(child)
    url = f"http://127.0.0.1:{port}"
    _wait_healthy(url, child)
    return url


def _wait_healthy(url: str, child: Any, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not child.alive():
            raise RuntimeError(f"{child.name} exited:\n{child.log_tail()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{child.name} not healthy within {timeout_s} s")


def run_load(module: str, seconds: float, *args: str) -> Result:
    """``python -m <module> <args>``, its last stdout line read as JSON."""
    argv = [sys.executable, "-m", module, *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=True)
    result: Result = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def events_on(bootstrap: str, topic: str) -> int:
    """Events on ``topic`` (packed records count each event), read to the fetch high watermarks."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=50
    )
    await consumer.start()
    try:
        parts = await topic_partitions(consumer, topic)
        consumer.assign(parts)
        for tp in parts:
            consumer.seek(tp, 0)
        counted = 0
        next_offset: dict[TopicPartition, int] = {}
        quiet = 0
        while quiet < 3:
            batches = await consumer.getmany(timeout_ms=200, max_records=50_000)
            for tp, records in batches.items():
                counted += sum(
                    len(json.loads(r.value)) if (r.value or b"")[:1] == b"[" else 1 for r in records
                )
                next_offset[tp] = records[-1].offset + 1
            caught_up = all(
                consumer.highwater(tp) is not None
                and next_offset.get(tp, 0) >= (consumer.highwater(tp) or 0)
                for tp in parts
            )
            quiet = quiet + 1 if caught_up and not batches else 0
        return counted
    finally:
        await consumer.stop()


class Tally:
    """Load results of one side added up over its rounds."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.status: dict[str, int] = {}
        self.p50: list[float] = []
        self.p99: list[float] = []

    def add(self, result: Result) -> None:
        self.seconds += float(result["seconds"])
        for code, count in result["status"].items():
            self.status[code] = self.status.get(code, 0) + int(count)
        if "p99_ms" in result:  # a load generator that measures latency
            self.p50.append(float(result["p50_ms"]))
            self.p99.append(float(result["p99_ms"]))

    def rate(self, status: str) -> float:
        """Answers with ``status`` per second."""
        return self.status.get(status, 0) / self.seconds if self.seconds else 0.0


def compared(
    bench: str,
    unit: str,
    rates: tuple[float, float],
    baseline_name: str,
    facts: Result,
    ran: tuple[float, int, int, str, str],
) -> Result:
    """The JSON line of a bench: its rate and the baseline's (``rates``) and their ratio,
    its own ``facts``, then how it ran (seconds, rounds, connections, storage, broker)."""
    value, base = rates
    seconds, rounds, connections, storage, broker = ran
    return {
        "bench": bench,
        "value": round(value, 1),
        "unit": unit,
        "baseline": round(base, 1),
        "ratio": round(value / base, 3) if base else 0.0,
        "baseline_name": baseline_name,
        **facts,
        "seconds": seconds,
        "rounds": rounds,
        "connections": connections,
        "storage": storage,
        "broker": broker,
    }


def bench_main(
    argv: Sequence[str],
    service: str,
    description: str | None,
    defaults: tuple[float, int],
    run: Callable[..., Result],
    summary: Callable[[Result], str],
    passed: Callable[[Result], bool],
    extra_options: dict[str, dict[str, Any]] | None = None,
) -> int:
    """``afflux bench <service> [--json] [--seconds S] [--connections C] [--storage ...]
    [--broker tansu|kafka]`` and the bench's own ``extra_options`` (flag: add_argument
    keywords; each reaches ``run`` as a keyword of its ``dest``):
    ``run`` in a temporary directory, its ``summary`` printed, with --json one JSON line
    last; exit 0 when the result ``passed``."""
    seconds, connections = defaults
    extra_options = extra_options or {}
    parser = PlainArgumentParser(prog=f"afflux bench {service}", description=description)
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    parser.add_argument("--seconds", type=float, default=seconds, help="measured seconds per side")
    parser.add_argument("--connections", type=int, default=connections)
    for flag, options in extra_options.items():
        parser.add_argument(flag, **options)
    from afflux.cli.brokers import add_broker_option, broker_of
    from afflux.cli.storage import add_storage_option, storage_of

    add_storage_option(parser)
    add_broker_option(parser)
    args = parser.parse_args(list(argv))
    with tempfile.TemporaryDirectory(prefix=f"afflux-bench-{service}-") as tmp:
        extra = {o["dest"]: getattr(args, o["dest"]) for o in extra_options.values()}
        result = run(
            args.seconds, args.connections, Path(tmp), storage=storage_of(args),
            broker=broker_of(args), **extra,
        )  # fmt: skip
    print(broker_line(broker_of(args), storage_of(args)))
    print(summary(result))
    if args.json:
        print(json.dumps(result))
    return 0 if passed(result) else 1


def broker_line(broker: BrokerKind, storage: BrokerStorage) -> str:
    """What a bench ran on: Tansu's storage choice, or Kafka's own disk log."""
    if broker == "kafka":
        return "broker: Apache Kafka (its log on disk; --storage applies to Redis only)"
    return f"broker: Tansu, {storage} storage"
