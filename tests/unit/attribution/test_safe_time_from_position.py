"""A partition's safe time counts its input from where its state stands: past the last
record handled since it was assigned, or else past the input position its state
recorded. Records the state holds already, which the consumer hands out again from
the committed offset, neither hold the safe time nor are applied twice once handled."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from recording_runtime import recording_runtime, ten_percent_sale

from afflux.attribution.stage import Owned, Record
from afflux.shared.topics import DLQ

pytestmark = pytest.mark.unit

NOW = 1_793_491_200_000


@pytest.mark.parametrize(
    ("position", "high", "safe"),
    [
        (None, 0, True),  # an empty log: nothing to wait for
        (None, 1, False),  # one record, none held
        (8, 10, False),  # the record at 9 is not held yet
        (9, 10, True),  # held through offset 9: the state holds all that was written
    ],
)
def test_a_recorded_position_counts_as_processed_for_the_safe_time(
    position: int | None, high: int, safe: bool
) -> None:
    stage = recording_runtime([], ten_percent_sale(), "safe", clock=lambda: NOW).refunds
    owned = stage.owned[0] = Owned(stage.new_state())
    first = stage.inputs[0]
    if position is not None:
        owned.last[first] = (position, "fingerprint")
    stage.transport = replace(
        stage.transport,
        highwater=lambda t, p: (high if t == first else 0, NOW),
    )

    stage.note()
    stage.note()  # the first note is taken; the second finds it held (or not)

    assert (owned.safe_ms == NOW - stage.arrival_margin_ms) is safe


def test_records_handled_since_the_assignment_are_skipped_when_handed_out_again() -> None:
    sent: list[tuple[str, bytes | None]] = []
    stage = recording_runtime(sent, ten_percent_sale(), "again", clock=lambda: NOW).refunds
    owned = stage.owned[0] = Owned(stage.new_state())
    topic = stage.inputs[0]
    owned.consumed[topic] = 5  # offsets 0..4 read back before the consumer handed them

    def record(offset: int) -> Record:
        return Record(topic, 0, offset, b"k", b"not json at all", NOW)

    asyncio.run(stage.handle_many([record(3), record(4)]))
    assert sent == []  # neither applied (a bad record would be dead-lettered)
    assert owned.consumed[topic] == 5

    asyncio.run(stage.handle(record(5)))
    assert [t for t, _ in sent if t != stage.changelog] == [DLQ.name]
    assert owned.consumed[topic] == 6
