"""A stage whose send is refused for good stops its partition, says so, retries it and
loses nothing.

The worker runs as ``python -m afflux.attribution`` does, on a broker of its own, with
one change: its Faust producer takes no record over ``TINY`` bytes (run as a script,
this module starts that worker). A record on ``clicks`` that is not JSON makes a dead
letter larger than that: aiokafka refuses it (MessageSizeTooLargeError, not retried)
and Faust raises ProducerSendError in the join's batch, as a record too large for the
broker would. ``/healthz`` then answers 503 naming the stopped partition and its next
retry (the agent goes on), and the exception is logged at error with its traceback. The
retries fail the same way: nothing of the partition is written or committed meanwhile.
A worker started again with the usual producer sends the dead letter, and handles the
click that came after it; nothing of the partition was committed past the refused record
meanwhile. (A failure that goes away: test_failed_batch_retry.py.)
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import harness as h
import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from afflux.bench.feed import partition_of
from afflux.cli.processes import Child, free_port
from afflux.shared.events import ClickRecorded, DeadLetter
from afflux.shared.io.kafka import new_producer
from afflux.shared.topics import CLICKS, DLQ
from afflux.shared.wire import encode

pytestmark = pytest.mark.integration

PARTITIONS = 4
GROUP = "afflux-attribution"  # the worker's default consumer group
TINY = 300  # bytes: a dead letter is larger; the worker sends nothing else in this test
VISITOR = "v-refused-send"


def tiny_producer_worker() -> int:
    """``python -m afflux.attribution`` with the producer's max_request_size at ``TINY``."""
    from afflux.attribution import __main__ as worker
    from afflux.attribution.app import create_app
    from afflux.attribution.runtime import Runtime
    from afflux.attribution.settings import AttributionSettings

    def tiny(settings: AttributionSettings) -> tuple[Any, Runtime]:
        app, runtime = create_app(settings)
        app.conf.producer_max_request_size = TINY  # read when the producer is built
        return app, runtime

    worker.create_app = tiny  # type: ignore[attr-defined]
    return worker.main()


def healthz(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def until(check: Any, timeout_s: float, what: str) -> Any:
    """``check()`` again until it answers something, at most ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    pytest.fail(f"{what} within {timeout_s:.0f} s", pytrace=False)


async def produce(bootstrap: str, p: int, value: bytes) -> int:
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        sent = await producer.send_and_wait(CLICKS.name, value, key=VISITOR.encode(), partition=p)
        return int(sent.offset)
    finally:
        await producer.stop()


def click() -> bytes:
    return encode(
        ClickRecorded(
            event_id="click-refused-send",
            occurred_at=1_700_000_000_000,
            click_id="refused-send",
            link_code="refusedcode",
            affiliate_id="creator-refused",
            campaign_id="refused-campaign",
            visitor_id=VISITOR,
        )
    )


async def committed(bootstrap: str, p: int) -> int:
    """The group's committed offset of clicks[p]; -1: none."""
    # Here, not at the top: this file also runs as the worker's script, where only its
    # own folder is on the path.
    from bounded_reads import bounded

    return await bounded(lambda: _committed_once(bootstrap, p), "the group's offset")


async def _committed_once(bootstrap: str, p: int) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        tp = TopicPartition(CLICKS.name, p)
        found = await admin.list_consumer_group_offsets(GROUP, partitions=[tp])
    finally:
        await admin.close()
    return found[tp].offset if tp in found else -1


def dead_letters(bootstrap: str, p: int) -> list[DeadLetter]:
    events = asyncio.run(h.read_topics(bootstrap, [DLQ.name]))[DLQ.name]
    return [
        e
        for e in events
        if isinstance(e, DeadLetter) and (e.source_topic, e.source_partition) == (CLICKS.name, p)
    ]


def test_a_send_refused_for_good_answers_503_with_why_and_loses_nothing(
    private_broker: tuple[str, Path],
) -> None:
    bootstrap, work = private_broker
    p = partition_of(VISITOR, PARTITIONS)
    port = free_port()
    env = {
        "AFFLUX_KAFKA_BOOTSTRAP": bootstrap,
        "AFFLUX_ATTRIBUTION_PORT": str(port),
        "AFFLUX_TOPIC_PARTITIONS": str(PARTITIONS),
        "AFFLUX_DATA_DIR": str(work / "data"),
    }
    log_path = work / "logs" / "attribution-tiny.log"
    tiny = Child("attribution-tiny", [sys.executable, __file__], log_path, env=env).start()
    try:
        tiny.wait_until(lambda: h.healthy(port), timeout_s=60)
        garbage = asyncio.run(produce(bootstrap, p, b"not json"))
        status, body = until(
            lambda: (found := healthz(port))[0] == 503 and found, 60, "/healthz 503"
        )
        after = asyncio.run(produce(bootstrap, p, click()))  # held, never written

        def failed_again() -> bool:
            found = healthz(port)
            return found[0] == 503 and any("failure 2 in a row" in x for x in found[1]["problems"])

        # The retry recovers the partition, reads the refused record again and fails again.
        until(failed_again, 30, "a retry that failed the same way")
    finally:
        tiny.stop()
    assert asyncio.run(committed(bootstrap, p)) <= garbage  # nothing committed past it
    assert status == 503
    assert body["status"] == "failed"
    refused = 'ProducerSendError("Error while sending: MessageSizeTooLargeError('
    assert not any("agent died" in x for x in body["problems"]), body
    assert any(
        x.startswith(f"join[{p}] stopped: a batch failed: {refused}") and "retried in" in x
        for x in body["problems"]
    ), body
    assert body["recovery"].startswith("none once the cause is gone")
    assert p not in body["join_partitions"]
    logged = log_path.read_text(errors="replace")
    assert "ERROR" in logged
    assert "the join agent died" not in logged
    assert f"join[{p}] stopped" in logged
    assert "Traceback" in logged
    assert "MessageSizeTooLargeError" in logged
    # Faust's own restart of a crashed agent is what answered 200 before.
    assert "Crashed reason=" not in logged
    assert "wait_empty" not in logged  # no reference to the failed records left behind
    assert dead_letters(bootstrap, p) == []

    worker, port = h.start_worker(bootstrap, work)  # the usual producer
    try:
        [letter] = until(lambda: dead_letters(bootstrap, p), 60, "the dead letter")
        assert letter.source_offset == garbage
        # The click after it handled too: both offsets committed.
        until(lambda: asyncio.run(committed(bootstrap, p)) == after + 1, 30, "the commit")
        assert healthz(port)[1]["problems"] == []
    finally:
        worker.stop()
    assert "ERROR" not in (work / "logs" / "attribution.log").read_text(errors="replace")


if __name__ == "__main__":
    sys.exit(tiny_producer_worker())
