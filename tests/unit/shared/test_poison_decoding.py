"""Decoding is bounded before parsing, and whatever a record holds, decoding it only ever
raises UndecodableRecord, naming the reason and the exception's class."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from afflux.shared.events import ClickRecorded
from afflux.shared.wire import (
    MAX_DEPTH,
    MAX_DIGIT_RUN,
    MAX_RECORD_BYTES,
    UndecodableRecord,
    decode_record,
    encode_packed,
)

pytestmark = pytest.mark.unit


def click(n: int, referrer: str | None = None) -> ClickRecorded:
    return ClickRecorded(
        event_id=f"ev-{n}",
        occurred_at=1_764_547_200_000 + n,
        click_id=f"c-{n}",
        link_code="lnk",
        affiliate_id="anna",
        campaign_id="camp",
        visitor_id=f"v-{n}",
        referrer=referrer,
    )


@dataclass(frozen=True)
class Poison:
    value: bytes | None
    reason: str
    error_class: str


POISON = [
    # the probe's record: 100,000 brackets deep
    Poison(b"[" * 100_000 + b"]" * 100_000, "nested deeper", "NestedTooDeep"),
    # one level past the bound
    Poison(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), "nested deeper", "NestedTooDeep"),
    # deep and never closed
    Poison(b'{"a":' * 10_000, "nested deeper", "NestedTooDeep"),
    # more digits than Python parses (4,300)
    Poison(b'{"amount_minor":' + b"9" * 5_000 + b"}", "digits", "NumberTooLong"),
    # one digit past the bound
    Poison(b"[" + b"1" * (MAX_DIGIT_RUN + 1) + b"]", "digits", "NumberTooLong"),
    # one byte past the size bound
    Poison(b" " * (MAX_RECORD_BYTES + 1), "exceeds", "RecordTooLarge"),
    Poison(b'{"a": "\xff"}', "not JSON", "JSONDecodeError"),
    Poison(b"{not json", "not JSON", "JSONDecodeError"),
    Poison(None, "tombstone", "UndecodableRecord"),
    # not JSON (RFC 8259), whatever Python's own parser accepts
    Poison(b"[NaN]", "not JSON", "JSONDecodeError"),
    Poison(b'{"type":"ClickRecorded","occurred_at":Infinity}', "not JSON", "JSONDecodeError"),
    # an integer beyond 64 bits is read exactly (the fast parser would make it a float)
    Poison(
        b'{"type":"ClickRecorded","event_id":"e","occurred_at":123456789012345678901}',
        "invalid event",
        "ValidationError",
    ),
    Poison(b'{"type":"NoSuchEvent","event_id":"x","occurred_at":0}', "invalid", "ValidationError"),
    # a schema_version that is not a version: "1" and true were read as 1, -1 raised KeyError
    *(
        Poison(
            b'{"type":"ClickRecorded","event_id":"e","occurred_at":1,"schema_version":'
            + raw
            + b"}",
            reason,
            "ValidationError",
        )
        for raw, reason in (
            (b'"1"', "schema_version: Input should be a valid integer"),
            (b"true", "schema_version: Input should be a valid integer"),
            (b"1.0", "schema_version: Input should be a valid integer"),
            (b"0", "schema_version: Input should be greater than or equal to 1"),
            (b"-1", "schema_version: Input should be greater than or equal to 1"),
        )
    ),
    # a packed record of no events: once dropped by every consumer without a dead letter
    Poison(b"[]", "an empty array", "UndecodableRecord"),
    Poison(b" [ ] ", "an empty array", "UndecodableRecord"),
    # more events than any producer packs: read item by item, 250,000 empty objects made
    # a million dead letters and held the topic's consumers behind them for hours
    Poison(
        b"[" + b",".join([b"{}"] * 201) + b"]",
        "a packed record holds at most 200 events; this one holds 201",
        "UndecodableRecord",
    ),
    Poison(
        b"[" + b",".join([b"{}"] * 250_000) + b"]",
        "this one holds 250000",
        "UndecodableRecord",
    ),
]


@pytest.mark.parametrize("poison", POISON, ids=lambda p: p.error_class + ":" + p.reason)
def test_poison_is_refused_with_its_reason_and_class(poison: Poison) -> None:
    with pytest.raises(UndecodableRecord) as refused:
        decode_record(poison.value)

    assert poison.reason in str(refused.value)
    assert refused.value.error_class == poison.error_class


def test_brackets_and_digits_inside_strings_do_not_count_against_the_bounds() -> None:
    deep_text = "[" * 100 + "]" * 40
    value = encode_packed([click(1, referrer=deep_text), click(2, referrer="9" * 2_000)])

    assert [e.event_id for e in decode_record(value)] == ["ev-1", "ev-2"]


def test_nesting_at_the_bound_and_the_largest_packed_record_decode() -> None:
    nested: object = "x"
    for _ in range(MAX_DEPTH - 2):  # the record's object and the field add two levels
        nested = [nested]
    value = json.dumps({**click(1).model_dump(mode="json"), "extra": nested}).encode()

    assert decode_record(value) == [click(1)]
    packed = encode_packed([click(n) for n in range(200)])
    assert len(decode_record(packed)) == 200
