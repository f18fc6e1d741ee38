"""Driving the real worker on a private broker: produce a scenario, read what came out."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from afflux.bench.feed import produce, publish_campaigns, route  # noqa: F401
from afflux.cli.processes import Child, free_port
from afflux.oracle import OracleResult
from afflux.shared.events import (
    Envelope,
)
from afflux.shared.io.kafka import topic_partitions
from afflux.shared.topics import (
    CONVERSIONS,
    REVERSALS,
    UNMATCHED,
)
from afflux.shared.wire import UndecodableRecord, decode_record

OUTPUTS = (CONVERSIONS.name, REVERSALS.name, UNMATCHED.name)


async def read_topics(
    bootstrap: str, topics: Iterable[str], timeout_s: float = 60.0
) -> dict[str, list[Envelope]]:
    """Every event on ``topics`` up to the fetch high watermark. Bounded: the callers
    poll it, and a partition whose fetch kept failing once held them past their own
    deadlines."""
    deadline = time.monotonic() + timeout_s
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    out: dict[str, list[Envelope]] = {t: [] for t in topics}
    try:
        tps = [tp for t in topics for tp in await topic_partitions(consumer, t)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        read = dict.fromkeys(tps, 0)
        while True:
            batches = await consumer.getmany(timeout_ms=200, max_records=10_000)
            for tp, records in batches.items():
                for r in records:
                    read[tp] = r.offset + 1
                    try:
                        out[tp.topic].extend(decode_record(r.value))
                    except UndecodableRecord:
                        continue
            highs = [consumer.highwater(tp) for tp in tps]
            if all(h is not None and read[tp] >= h for tp, h in zip(tps, highs, strict=True)):
                return out
            if time.monotonic() > deadline:
                raise AssertionError(f"{sorted(out)} not read to their end in {timeout_s:.0f} s")
    finally:
        await consumer.stop()


def expected_sets(result: OracleResult) -> set[str]:
    from afflux.oracle import canonical

    return canonical([*result.conversions, *result.reversals, *result.unmatched])


async def actual_sets(bootstrap: str, belongs: str | None = None) -> set[str]:
    from afflux.oracle import canonical

    topics = await read_topics(bootstrap, OUTPUTS)
    events = [e for t in OUTPUTS for e in topics[t]]
    if belongs is not None:
        events = [e for e in events if belongs in getattr(e, "order_id", "")]
    return canonical(events)


async def wait_for(
    bootstrap: str, expected: set[str], *, timeout_s: float = 60, belongs: str | None = None
) -> set[str]:
    """Poll the outputs until they equal ``expected`` or the time is up; return the last read."""
    deadline = time.monotonic() + timeout_s
    got: set[str] = set()
    while time.monotonic() < deadline:
        got = await actual_sets(bootstrap, belongs)
        if got == expected:
            return got
        await asyncio.sleep(0.5)
    return got


def start_worker(
    bootstrap: str, work: Path, *, instance: str = "", extra: dict[str, str] | None = None
) -> tuple[Child, int]:
    port = free_port()
    env = {
        "AFFLUX_KAFKA_BOOTSTRAP": bootstrap,
        "AFFLUX_ATTRIBUTION_PORT": str(port),
        "AFFLUX_TOPIC_PARTITIONS": "4",
        "AFFLUX_DATA_DIR": str(work / "data"),
        "AFFLUX_REFUND_WAIT_SECONDS": "3",
        "AFFLUX_INSTANCE_ID": instance,
        **(extra or {}),
    }
    child = Child(
        f"attribution{instance}",
        [sys.executable, "-m", "afflux.attribution"],
        work / "logs" / f"attribution{instance}.log",
        env=env,
    ).start()
    child.wait_until(lambda: healthy(port), timeout_s=60)
    return child, port


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def assert_same(expected: set[str], got: set[str], work: Path | None = None) -> None:
    """Fail with the paired differences only: a whole-set diff of thousands of events
    buries them (a CI log keeps its tail). ``work``: the workers' directory, whose
    logs' warnings and errors are added (CI keeps no test directory)."""
    if got != expected:
        pytest.fail(describe(expected, got) + worker_complaints(work), pytrace=False)


def worker_complaints(work: Path | None, limit: int = 30) -> str:
    """The warnings and errors the workers under ``work`` logged, the timer's overlaps
    (a busy machine) left out."""
    if work is None:
        return ""
    lines = [
        f"{log.name}: {line}"
        for log in sorted((work / "logs").glob("attribution*.log"))
        for line in log.read_text(errors="replace").splitlines()
        if ("WARNING" in line or "ERROR" in line) and "is overlapping" not in line
    ]
    return "\nworker warnings and errors:\n" + "\n".join(lines[-limit:]) if lines else ""


def describe(expected: set[str], got: set[str], limit: int = 5) -> str:
    """Differences paired by event id, field by field; unpaired events whole."""
    want = {json.loads(e)["event_id"]: json.loads(e) for e in expected - got}
    have = {json.loads(e)["event_id"]: json.loads(e) for e in got - expected}
    lines = [f"missing {len(expected - got)}, extra {len(got - expected)}"]
    changed = sorted(want.keys() & have.keys())
    for event_id in changed[:limit]:
        fields = sorted(
            k
            for k in want[event_id].keys() | have[event_id].keys()
            if want[event_id].get(k) != have[event_id].get(k)
        )
        diffs = ", ".join(
            f"{k}: want {want[event_id].get(k)!r} got {have[event_id].get(k)!r}" for k in fields
        )
        lines.append(f"differs {event_id} ({want[event_id].get('order_id')}): {diffs}")
    lines.append(f"differing events: {len(changed)}")
    only_want = sorted(want.keys() - have.keys())
    only_have = sorted(have.keys() - want.keys())
    lines += [f"missing {want[k]}" for k in only_want[:limit]]
    lines += [f"extra {have[k]}" for k in only_have[:limit]]
    lines.append(f"only missing: {len(only_want)}, only extra: {len(only_have)}")
    for side, events in (("missing", want), ("extra", have)):
        kinds = Counter(str(e.get("type")) for e in events.values())
        lines.append(f"{side} by type: {dict(sorted(kinds.items()))}")
    return "\n".join(lines)
