"""When an input partition no longer matches the state built from it, at each boundary."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from afflux.attribution.divergence import Position, fingerprint, judge

pytestmark = pytest.mark.unit

SAME = fingerprint(b"v", b'{"type":"ClickRecorded"}', 1_700_000_000_000)


@dataclass(frozen=True)
class Case:
    high: int  # the log end (fetch high watermark)
    committed: int | None
    recorded: Position | None  # offset of the last record consumed, its fingerprint
    record: str | None  # fingerprint of the record the log holds at that offset
    says: str  # '' when the partition matches
    start: int | None = None  # where the log was read from when the record was not there


CASES = [
    Case(10, None, None, None, ""),  # nothing committed, nothing recorded: a fresh start
    Case(10, 10, None, None, ""),  # committed at the log end: everything consumed
    Case(10, 11, None, None, "committed offset 11 is beyond the log end 10"),  # one past
    Case(0, 500, None, None, "committed offset 500 is beyond the log end 0"),  # log gone
    Case(10, 10, (9, SAME), SAME, ""),  # the last record of the log, the same one
    Case(9, 9, (9, SAME), None, "built up to offset 9, beyond the log end 9"),  # at the end
    Case(0, None, (9, SAME), None, "built up to offset 9, beyond the log end 0"),  # recreated
    Case(20, 10, (9, SAME), "other", "record at offset 9 is not the one"),  # refilled
    Case(20, 10, (9, SAME), None, "record at offset 9 is not the one"),  # below the log start
    # Retention took consumed records only: the log starts at the next offset to read, or
    # is empty up to its end there (a quiet partition restarted after its retention).
    Case(20, 10, (9, SAME), None, "", start=10),
    Case(10, 10, (9, SAME), None, "", start=10),
    # Retention took records never read: they are named as lost, not as a recreated log.
    Case(20, 10, (9, SAME), None, "the log now starts at offset 12", start=12),
    Case(30, None, (9, SAME), None, "after the next offset to read 10", start=30),
    # the commit lagged the recorded position (a crash within a second): offset 9 was read
    Case(10, 8, (9, SAME), None, "", start=10),
]


@pytest.mark.parametrize("case", CASES)
def test_an_input_partition_diverges_only_when_the_log_no_longer_holds_the_state(
    case: Case,
) -> None:
    said = judge(case.high, case.committed, case.recorded, case.record, case.start)
    if case.says:
        assert case.says in said
    else:
        assert said == ""


def test_a_fingerprint_tells_key_value_and_timestamp_apart() -> None:
    prints = {
        fingerprint(b"k", b"v", 1),
        fingerprint(b"k", b"v", 2),
        fingerprint(b"kv", b"", 1),
        fingerprint(b"k", b"w", 1),
        fingerprint(None, b"kv", 1),
    }
    assert len(prints) == 5
