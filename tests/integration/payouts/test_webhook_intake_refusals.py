"""What the webhook sender cannot use is dead-lettered item by item, and never stops it.

A conversion dated in the year 10000, written straight to the topic, decoded: building
its delivery's timestamp raised, the exception left the intake, and the payouts process
exited, then again on every restart (the batch was never committed). A packed record
with one bad item was skipped whole: its good conversion, in the ledger, never reached
an endpoint, and nothing was dead-lettered for it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord
from test_webhooks import Program, conversion, directory_of, harness, new_program, until
from webhook_receiver import Receiver

from afflux.cli.scenario_checks import read_topic
from afflux.payouts.webhooks.intake import decoded_items
from afflux.payouts.webhooks.routing import jobs_for
from afflux.shared.events import ConversionAttributed, DeadLetter
from afflux.shared.io.kafka import new_producer
from afflux.shared.topics import CONVERSIONS, DLQ
from afflux.shared.wire import encode

pytestmark = pytest.mark.integration

YEAR_10000 = 253_402_300_800_000


def _value(event: ConversionAttributed, **changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(encode(event))
    value.update(changes)
    return value


async def _send(bootstrap: str, values: list[bytes]) -> None:
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(CONVERSIONS.name, value, key=b"k")
    finally:
        await producer.stop()


async def _letters(bootstrap: str, consumer: str) -> list[DeadLetter]:
    found = await read_topic(bootstrap, DLQ.name, idle_s=1.0)
    return [e for e in found if isinstance(e, DeadLetter) and e.consumer == consumer]


async def test_bad_items_are_dead_lettered_and_the_good_ones_delivered(infra: Any) -> None:
    program = new_program(creators=1)
    receiver = Receiver()
    async with harness(infra, program, receiver) as h:
        await h.register("affiliate", program.creators[0], "/creator", ["conversion.attributed"])
        far = _value(conversion(program, 0), occurred_at=YEAR_10000)
        packed = [_value(conversion(program, 1)), {"type": "Bogus"}]
        await _send(
            infra.kafka_bootstrap,
            [json.dumps(far).encode(), json.dumps(packed).encode(), encode(conversion(program, 2))],
        )
        wanted = {conversion(program, n).event_id for n in (1, 2)}
        await until(
            lambda: receiver.events("/creator") == {"conversion.attributed": wanted},
            60,
            "the packed record's good item and the later conversion delivered",
        )
        letters = await _letters(infra.kafka_bootstrap, h.settings.webhooks_group_id)
        reasons = sorted(letter.reason for letter in letters)
        assert len(reasons) == 2, reasons
        assert "event time must be at most 253402300799999" in reasons[0] + reasons[1]
        assert any("Bogus" in r or "type" in r for r in reasons), reasons


async def test_an_event_whose_delivery_cannot_be_built_is_reported_the_rest_routed(
    infra: Any,
) -> None:
    """Past the decoder (an event made in this process, or a bound loosened later): one
    event whose body raises is reported by index, the others get their jobs."""
    program: Program = new_program(creators=1)
    async with harness(infra, program, Receiver()) as h:
        await h.register("affiliate", program.creators[0], "/c", ["conversion.attributed"])
        good = conversion(program, 0)
        far = conversion(program, 1).model_copy(update={"occurred_at": YEAR_10000})
        routed = await jobs_for(h.store, directory_of(program), [far, good], now=0)
        assert [n for n, _ in routed.failed] == [0]
        assert isinstance(routed.failed[0][1], ValueError)
        assert [job.event_id for job in routed.jobs] == [good.event_id]


def test_a_packed_record_is_read_item_by_item() -> None:
    good = encode(conversion(new_program(creators=1), 0))
    record: ConsumerRecord[bytes, bytes] = ConsumerRecord(
        CONVERSIONS.name, 0, 7, 0, 0, b"k", b"[" + good + b', {"type": "Bogus"}, 3]', None, 0, 0, []
    )
    items, refused = decoded_items({"tp": [record]})  # type: ignore[dict-item]
    assert [(i.index, i.event.event_id) for i in items] == [(0, json.loads(good)["event_id"])]
    assert [r.index for r in refused] == [1, 2]
    assert "must be a JSON object" in refused[1].reason
