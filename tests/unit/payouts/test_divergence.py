"""When the log no longer holds what the ledger applied: the decision, at each boundary."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from afflux.payouts.divergence import Fingerprint, Look, judge

pytestmark = pytest.mark.unit

APPLIED = Fingerprint.of(29, 1_000, b"order-29", b'{"n":29}')
OTHER = Fingerprint.of(29, 2_000, b"order-x", b'{"n":"x"}')


@dataclass(frozen=True)
class Case:
    name: str
    stored: int | None
    last: Fingerprint | None
    look: Look
    diverged: bool


CASES = [
    # nothing stored: the partition is read from its beginning, nothing to compare
    Case("nothing stored", None, None, Look(0, None), False),
    # the stored offset is the log end: caught up
    Case("stored at the log end", 30, APPLIED, Look(30, APPLIED), False),
    # one record more than the log holds: a lost or recreated log
    Case("stored one past the log end", 31, APPLIED, Look(30, APPLIED), True),
    # a shorter recreated log, no fingerprint stored (a ledger written before them)
    Case("beyond the end, no fingerprint", 30, None, Look(5, None), True),
    # the log grew again past the stored offset, another record at the applied offset
    Case("another record at the applied offset", 30, APPLIED, Look(40, OTHER), True),
    # same offset, same key and value, another timestamp: not the same record
    Case(
        "same bytes at another time",
        30,
        APPLIED,
        Look(40, Fingerprint(29, 1_001, APPLIED.digest)),
        True,
    ),
    # the applied record is still there and the log went on: consume on
    Case("the applied record is there", 30, APPLIED, Look(45, APPLIED), False),
    # retention deleted the applied record, the log starts at the stored offset: nothing lost
    Case("log starts at the stored offset", 30, APPLIED, Look(45, Fingerprint(30, 5, "x")), False),
    # the log starts after the stored offset: records the ledger never read are gone
    Case("log starts past the stored offset", 30, APPLIED, Look(45, Fingerprint(31, 5, "x")), True),
    # the log holds nothing at or after the applied offset, yet its end is not below
    Case("no record at the applied offset", 30, APPLIED, Look(30, None), True),
    # retention emptied the log up to its end, which is the stored offset: nothing lost
    Case("emptied log starting at the stored offset", 30, APPLIED, Look(30, None, 30), False),
    # retention emptied the log past the stored offset: unread records are gone
    Case("emptied log starting past the stored offset", 30, APPLIED, Look(45, None, 45), True),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_a_partition_diverged_only_when_the_log_lost_what_the_ledger_applied(case: Case) -> None:
    assert (judge(case.stored, case.last, case.look) is not None) is case.diverged


def test_a_fingerprint_survives_its_encoding_and_tells_key_from_value() -> None:
    assert Fingerprint.parse(APPLIED.encode()) == APPLIED
    # the key's length is hashed: moving a byte between key and value changes the digest
    assert Fingerprint.of(1, 1, b"ab", b"c") != Fingerprint.of(1, 1, b"a", b"bc")
    assert Fingerprint.of(1, 1, None, b"") != Fingerprint.of(1, 1, b"", b"")
