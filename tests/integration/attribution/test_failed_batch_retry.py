"""A batch that fails for a while stops its partitions, which retry from their changelogs
and resume by themselves once the cause is gone: nothing skipped, nothing applied twice.

The worker runs as ``python -m afflux.attribution`` does, on a broker of its own, with
one change (run as a script, this module starts that worker): while the file named by
``AFFLUX_TEST_FAULT_FILE`` exists, every send to an output topic or a changelog raises
``ProducerSendError``, as a broker refusing produce requests makes Faust's producer do.
Half of the scenarios are processed first, so the state the partitions recover is not
empty; then the fault is switched on and the other half produced: batches fail,
``/healthz`` answers 503 naming the stopped partitions and when they are retried, the
failed-partitions gauge is above 0, the failure is logged. The fault goes away: the
worker turns healthy without a restart, its outputs equal the oracle's, and the group's
committed offsets reach the end of every input partition (the held records were read
again and acknowledged).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

import harness as h
import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from afflux.cli.processes import Child, free_port
from afflux.cli.topic_to_end import high_watermarks
from afflux.oracle import Scenario, attribute, generate
from afflux.shared.topics import CLICKS, ORDERS

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GROUP = "afflux-attribution"  # the worker's default consumer group
BEFORE = range(300, 306)  # processed before the fault
DURING = range(306, 314)  # produced while sends fail


def faulty_worker() -> int:
    """``python -m afflux.attribution`` whose sends fail while the fault file exists."""
    from faust.exceptions import ProducerSendError

    from afflux.attribution import __main__ as worker
    from afflux.attribution import faust_bridge
    from afflux.attribution.stage import Transport

    fault = Path(os.environ["AFFLUX_TEST_FAULT_FILE"])
    original = faust_bridge.transport

    def transport(app: Any, bootstrap: str = "") -> Transport:
        usual = original(app, bootstrap)
        assert usual.send_many is not None

        def refuse() -> None:
            if fault.exists():
                raise ProducerSendError("Error while sending: NotEnoughReplicasError (injected)")

        async def send(topic: str, key: bytes | None, value: bytes | None, p: int | None) -> Any:
            refuse()
            return await usual.send(topic, key, value, p)

        async def send_many(topic: str, p: int, items: Any) -> Any:
            refuse()
            assert usual.send_many is not None
            return await usual.send_many(topic, p, items)

        return replace(usual, send=send, send_many=send_many)

    faust_bridge.transport = transport  # type: ignore[assignment]
    return worker.main()


def healthz(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return str(resp.read().decode())


def gauge(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


async def until(check: Any, timeout_s: float, what: str) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.3)
    pytest.fail(f"{what} within {timeout_s:.0f} s", pytrace=False)


async def input_lag(bootstrap: str) -> dict[TopicPartition, int]:
    """Per input partition with records: its end (as a Fetch answers it) minus the
    group's committed offset."""
    # Here, not at the top: this file also runs as the worker's script, where only its
    # own folder is on the path.
    from bounded_reads import bounded

    return await bounded(lambda: _input_lag_once(bootstrap), "the input lag")


async def _input_lag_once(bootstrap: str) -> dict[TopicPartition, int]:
    ends = await high_watermarks(bootstrap, (CLICKS.name, ORDERS.name))
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(GROUP, partitions=list(ends))
    finally:
        await admin.close()
    return {
        tp: end - (committed[tp].offset if tp in committed else 0)
        for tp, end in ends.items()
        if end
    }


def expected_of(scenarios: dict[int, Scenario]) -> set[str]:
    out: set[str] = set()
    for s in scenarios.values():
        out |= h.expected_sets(attribute(s.events, s.campaigns))
    return out


def test_a_batch_failing_for_a_while_is_retried_and_the_partition_resumes_by_itself(
    store_broker: tuple[str, Path, dict[str, str]],
) -> None:
    bootstrap, work, store = store_broker
    before = {seed: generate(seed, grace_seconds=2, prefix="f") for seed in BEFORE}
    during = {seed: generate(seed, grace_seconds=2, prefix="f") for seed in DURING}
    asyncio.run(h.publish_campaigns(bootstrap, next(iter(before.values())).campaigns))
    fault = work / "fault"
    port = free_port()
    env = {
        "AFFLUX_KAFKA_BOOTSTRAP": bootstrap,
        "AFFLUX_ATTRIBUTION_PORT": str(port),
        "AFFLUX_TOPIC_PARTITIONS": "4",
        "AFFLUX_DATA_DIR": str(work / "data"),
        # Refunds wait long enough for their order's outcome across the stop, as across a
        # restart (the worker fault tests' setting).
        "AFFLUX_REFUND_WAIT_SECONDS": "20",
        "AFFLUX_TEST_FAULT_FILE": str(fault),
        **store,
    }
    log_path = work / "logs" / "attribution-faulty.log"
    worker = Child("attribution-faulty", [sys.executable, __file__], log_path, env=env).start()

    async def healthy() -> bool:
        return h.healthy(port)

    async def scenario() -> tuple[dict[str, Any], str, set[str]]:
        await h.produce(bootstrap, [e for s in before.values() for e in s.events], 4)
        first = expected_of(before)
        got = await h.wait_for(bootstrap, first, timeout_s=90)
        h.assert_same(first, got, work)

        fault.touch()
        await h.produce(bootstrap, [e for s in during.values() for e in s.events], 4)

        async def failed() -> dict[str, Any] | None:
            status, body = healthz(port)
            return body if status == 503 and body["status"] == "failed" else None

        body = await until(failed, 60, "/healthz 503 failed")

        async def counted() -> str | None:  # a retry's recovery may come in between
            text = metrics(port)
            return text if gauge(text, "afflux_attribution_failed_partitions{") else None

        text = await until(counted, 10, "afflux_attribution_failed_partitions above 0")
        await asyncio.sleep(3)  # a few retries fail too, backing off
        fault.unlink()

        await until(healthy, 90, "/healthz 200 again")
        everything = expected_of(before) | expected_of(during)
        got = await h.wait_for(bootstrap, everything, timeout_s=90)
        h.assert_same(everything, got, work)

        async def committed_to_the_end() -> bool:
            return not any((await input_lag(bootstrap)).values())

        await until(committed_to_the_end, 30, "every input offset committed")
        return body, text, got

    try:
        worker.wait_until(lambda: h.healthy(port), timeout_s=60)
        body, text, _ = asyncio.run(scenario())
        assert healthz(port)[1]["problems"] == []
        assert gauge(metrics(port), "afflux_attribution_failed_partitions{") == 0
    finally:
        fault.unlink(missing_ok=True)
        worker.stop()

    stopped = [x for x in body["problems"] if " stopped: a batch failed: " in x]
    assert stopped, body
    assert all("NotEnoughReplicasError (injected)" in x and "retried in" in x for x in stopped)
    assert not any("agent died" in x for x in body["problems"]), body
    assert body["recovery"].startswith("none once the cause is gone")
    assert gauge(text, "afflux_attribution_failed_partitions{") > 0
    assert gauge(text, "afflux_attribution_batch_failures_total{") > 0
    logged = log_path.read_text(errors="replace")
    assert "they are retried from their changelogs" in logged
    assert "recovered from the changelog after a failed batch" in logged
    assert "agent died" not in logged


if __name__ == "__main__":
    sys.exit(faulty_worker())
