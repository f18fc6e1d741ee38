"""A worker whose state no longer matches its input log stops the partition, says why,
reports itself unready, and commits nothing of it; it never goes on silently.

Each case runs the real worker on a broker of its own: clicks are processed, the worker
stops, the input log is changed under it (the topic deleted and created again, or the
group's offset moved past the log end), and the worker starts again.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import harness as h
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from bounded_reads import bounded

from afflux.cli.brokers import BrokerKind, broker_with_topics
from afflux.cli.processes import Child, free_port
from afflux.oracle import generate
from afflux.shared.events import ClickRecorded
from afflux.shared.topics import CLICKS

pytestmark = pytest.mark.integration

PARTITIONS = 4
GROUP = "afflux-attribution"  # the worker's default consumer group
RESTORED = "afflux-attribution-restored"  # a group whose offsets came from elsewhere
BEYOND = 1_000_000


async def recreate_clicks(bootstrap: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([CLICKS.name])
        for _ in range(100):  # the deletion is asynchronous on some brokers
            if CLICKS.name not in await admin.list_topics():
                break
            await asyncio.sleep(0.1)
        await admin.create_topics([NewTopic(CLICKS.name, PARTITIONS, 1)])
    finally:
        await admin.close()


async def commit_beyond_the_end(bootstrap: str) -> None:
    """Offsets restored from elsewhere into the group the worker comes back with: every
    clicks partition's offset is far past the log end."""
    tps = [TopicPartition(CLICKS.name, p) for p in range(PARTITIONS)]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=RESTORED)
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.commit(dict.fromkeys(tps, BEYOND))
    finally:
        await consumer.stop()


async def committed(bootstrap: str, group: str = GROUP) -> dict[int, int]:
    return await bounded(lambda: _committed_once(bootstrap, group), "the group's offsets")


async def _committed_once(bootstrap: str, group: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        tps = [TopicPartition(CLICKS.name, p) for p in range(PARTITIONS)]
        found = await admin.list_consumer_group_offsets(group, partitions=tps)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in found.items()}


@dataclass(frozen=True)
class Case:
    name: str
    change: Callable[[str], object]  # what happens to the log while the worker is away
    says: str  # what the error says
    group: str  # the worker's group when it comes back
    committed_after: int  # the clicks offset the group holds after the restart


CASES = [
    # Deleted and created again: the offsets the state was built from are past the new end.
    Case("recreated-topic", recreate_clicks, "beyond the log end 0", GROUP, -1),
    # The group's offsets restored from elsewhere, past the log end: nothing is skipped.
    Case(
        "offset-beyond-end", commit_beyond_the_end, f"committed offset {BEYOND}", RESTORED, BEYOND
    ),
]


def health(port: int) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError:
        return 0, {}


def metric(port: int, line_start: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return sum(float(ln.rsplit(" ", 1)[1]) for ln in text.splitlines() if ln.startswith(line_start))


def wait(condition: Callable[[], bool], what: str, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_changed_input_log_stops_the_partition_and_fails_health(
    tmp_path: Path, broker_kind: BrokerKind, case: Case
) -> None:
    with broker_with_topics(broker_kind, tmp_path, PARTITIONS) as bootstrap:
        scenario = generate(410, visitors=20, prefix=f"div-{case.name}")
        asyncio.run(h.publish_campaigns(bootstrap, scenario.campaigns))
        clicks = [e for e in scenario.events if isinstance(e, ClickRecorded)]
        worker, web = h.start_worker(bootstrap, tmp_path)
        try:
            asyncio.run(h.produce(bootstrap, clicks, PARTITIONS))
            wait(
                lambda: (
                    metric(web, 'afflux_attribution_events_total{topic="clicks"}') >= len(clicks)
                ),
                "every click processed",
            )
            wait(lambda: -1 not in (asyncio.run(committed(bootstrap)).values()), "commits")
        finally:
            worker.stop()
        asyncio.run(case.change(bootstrap))  # type: ignore[arg-type]
        web = free_port()
        worker = Child(
            "attribution-again",
            [sys.executable, "-m", "afflux.attribution"],
            tmp_path / "logs" / "attribution-again.log",
            env={
                "AFFLUX_KAFKA_BOOTSTRAP": bootstrap,
                "AFFLUX_ATTRIBUTION_PORT": str(web),
                "AFFLUX_TOPIC_PARTITIONS": str(PARTITIONS),
                "AFFLUX_DATA_DIR": str(tmp_path / "data"),
                "AFFLUX_ATTRIBUTION_GROUP": case.group,
            },
        ).start()
        try:
            worker.wait_until(lambda: health(web)[1].get("status") == "diverged", 90)
            status, body = health(web)
            assert status == 503
            diverged = body["diverged"]
            assert isinstance(diverged, list)
            assert diverged
            assert all("clicks[" in line and case.says in line for line in diverged), diverged
            wait(
                lambda: metric(web, 'afflux_attribution_diverged_partitions{stage="join"}') >= 1,
                "the diverged gauge",
            )
            assert metric(web, "afflux_attribution_ready ") == 0
            errors = [ln for ln in worker.log_tail(400).splitlines() if "no longer matches" in ln]
            assert errors
            after = asyncio.run(committed(bootstrap, case.group))
            assert set(after.values()) == {case.committed_after}  # nothing skipped, nothing moved
        finally:
            worker.stop()
        # The documented recovery: rebuild the state from the topics, and start again.
        rebuilt = subprocess.run(
            [sys.executable, "-m", "afflux.cli", "attribution", "rebuild"],
            env={
                **os.environ,
                "AFFLUX_KAFKA_BOOTSTRAP": bootstrap,
                "AFFLUX_ATTRIBUTION_GROUP": case.group,
            },
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
        worker, web = h.start_worker(
            bootstrap, tmp_path, extra={"AFFLUX_ATTRIBUTION_GROUP": case.group}
        )
        try:
            assert health(web)[1]["diverged"] == []
        finally:
            worker.stop()
