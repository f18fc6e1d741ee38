"""The note ``afflux up`` prints when the embedded broker's durable log has grown long."""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition

from afflux.cli.log_growth import LONG_LOG_RECORDS, growth_note

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("records", "noted"),
    [(0, False), (LONG_LOG_RECORDS - 1, False), (LONG_LOG_RECORDS, True), (10**9, True)],
)
def test_a_note_once_the_longest_partition_reaches_the_threshold(records: int, noted: bool) -> None:
    ends = {TopicPartition("clicks", 0): 10, TopicPartition("orders", 2): records}
    assert (growth_note(ends) is not None) is noted


def test_the_note_names_the_longest_partition_and_its_records() -> None:
    ends = {
        TopicPartition("clicks", 1): 61_234,
        TopicPartition("orders", 0): 50_000,
        TopicPartition("conversions", 3): 7,
    }
    note = growth_note(ends, data_dir=".afflux/up")
    assert note is not None
    assert note.startswith("the broker's log holds 61,234 records in clicks partition 1:")
    assert note.endswith("use --broker kafka; to start afresh, stop it and remove .afflux/up.")


def test_no_partition_known_is_no_note() -> None:
    assert growth_note({}) is None
