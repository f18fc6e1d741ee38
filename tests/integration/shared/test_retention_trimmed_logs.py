"""A log whose consumed records were deleted (retention, DeleteRecords) is not a diverged
log: the attribution worker and the ledger go on when only records they had read are
gone, and say that records were lost when unread ones are. Before, the worker stopped
every such partition at its next start as "recreated" (a quiet partition past its
retention stopped the join for good), and the ledger's check waited for good on an
emptied log with /healthz green while conversions it never read were gone.

The embedded broker deletes no records: there, the logs keep them and both checks see the
records they recorded."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.records_to_delete import RecordsToDelete

from afflux.attribution.divergence import check_inputs, fingerprint
from afflux.payouts.divergence import Fingerprint, LogProbe, judge
from afflux.shared.io.kafka import new_producer

pytestmark = [pytest.mark.integration, pytest.mark.kafka_conformance]

RECORDS = 5


async def _trimmed_log(bootstrap: str, broker_kind: str) -> tuple[TopicPartition, Any]:
    """A topic of one partition holding ``RECORDS`` records, every one deleted on Kafka;
    the last record's metadata."""
    tp = TopicPartition(f"trimmed-{uuid.uuid4().hex[:8]}", 0)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        await admin.create_topics([NewTopic(tp.topic, 1, 1)])
        last = None
        for n in range(RECORDS):
            last = await producer.send_and_wait(tp.topic, b"v%d" % n, key=b"k", partition=0)
        if broker_kind == "kafka":
            await admin.delete_records({tp: RecordsToDelete(RECORDS)})
        return tp, last
    finally:
        await producer.stop()
        await admin.close()


def test_the_worker_goes_on_when_only_consumed_records_were_deleted(
    infra: Any, broker_kind: str
) -> None:
    async def scenario() -> tuple[dict[TopicPartition, str], dict[TopicPartition, str]]:
        tp, last = await _trimmed_log(infra.kafka_bootstrap, broker_kind)
        recorded = {tp: (last.offset, fingerprint(b"k", b"v4", last.timestamp))}
        consumed = await check_inputs(infra.kafka_bootstrap, {tp: RECORDS}, recorded, [tp])
        behind = await check_inputs(infra.kafka_bootstrap, {tp: 3}, {tp: (2, "x")}, [tp])
        return consumed, behind

    consumed, behind = asyncio.run(scenario())

    assert consumed == {}
    if broker_kind == "kafka":  # records 3 and 4 were never read, and are gone
        [said] = behind.values()
        assert "the log now starts at offset 5, after the next offset to read 3" in said
    else:  # the record at offset 2 is another than the one recorded
        [said] = behind.values()
        assert "not the one the state was built from" in said


def test_the_ledger_answers_at_once_for_an_emptied_log(infra: Any, broker_kind: str) -> None:
    async def scenario() -> tuple[str | None, str | None]:
        tp, last = await _trimmed_log(infra.kafka_bootstrap, broker_kind)
        applied = Fingerprint.of(last.offset, last.timestamp, b"k", b"v4")
        probe = LogProbe(infra.kafka_bootstrap, timeout_s=10)
        await probe.start()
        try:
            looks = await probe.look({tp: last.offset})
            early = Fingerprint.of(1, 0, b"k", b"v1")
            looks_behind = await probe.look({tp: 1})
        finally:
            await probe.stop()
        assert tp in looks, "the probe never answered"
        assert tp in looks_behind, "the probe never answered"
        return judge(RECORDS, applied, looks[tp]), judge(2, early, looks_behind[tp])

    caught_up, behind = asyncio.run(scenario())

    assert caught_up is None
    if broker_kind == "kafka":
        assert behind == "the log now starts at offset 5, after the stored offset"
    else:
        assert behind is not None  # the record at offset 1 is another than the one applied
