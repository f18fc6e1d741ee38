"""A link value (a ``links`` record or a link stored in Redis) is bounded before it is
parsed and must be exactly a link; whatever it holds, decoding it only ever raises
UndecodableRecord, and a restore skips such a record on its own."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord

from afflux.clicks.link_log import CONSUMER, MAX_LETTERS, LinkLog, link_record
from afflux.clicks.links import Link, decode_link, reason_label
from afflux.shared.wire import UndecodableRecord

pytestmark = pytest.mark.unit

LINK = Link(
    code="spring-24",
    affiliate_id="anna",
    campaign_id="camp",
    destination_url="https://shop.example.com/p?x=1",
    active=True,
    created_at=1_764_547_200_000,
)


def value_of(**changes: Any) -> bytes:
    return json.dumps({**asdict(LINK), **changes}).encode()


def without(name: str) -> bytes:
    doc = asdict(LINK)
    del doc[name]
    return json.dumps(doc).encode()


def record(value: bytes | None, offset: int = 0) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic="links",
        partition=1,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=b"spring-24",
        value=value,
        checksum=None,
        serialized_key_size=9,
        serialized_value_size=len(value or b""),
        headers=(),
    )


def test_a_published_link_decodes_to_itself() -> None:
    assert decode_link(link_record(LINK)) == LINK
    assert decode_link(json.dumps(asdict(LINK)).encode()) == LINK


def test_fields_a_newer_version_added_are_ignored() -> None:
    assert decode_link(value_of(note="added later")) == LINK


@pytest.mark.parametrize(
    ("value", "error_class", "label"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "NestedTooDeep", "too_deep"),
        (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "NestedTooDeep", "too_deep"),
        (b" " * (1024 * 1024 + 1), "RecordTooLarge", "too_large"),
        (b"[" + b"9" * 5_000 + b"]", "NumberTooLong", "number_too_long"),
        (b"not json {", "JSONDecodeError", "not_json"),
        (b"\xff\xfe", "JSONDecodeError", "not_json"),
        (b"", "JSONDecodeError", "not_json"),
        (None, "Tombstone", "tombstone"),
        (b"[1, 2]", "NotALink", "not_a_link"),
        (b"null", "NotALink", "not_a_link"),
        (without("destination_url"), "NotALink", "not_a_link"),
        (value_of(code=7), "NotALink", "not_a_link"),
        (value_of(code=["a"]), "NotALink", "not_a_link"),
        (value_of(code="a:b c"), "NotALink", "not_a_link"),
        (value_of(code=""), "NotALink", "not_a_link"),
        (value_of(destination_url={"x": 1}), "NotALink", "not_a_link"),
        (value_of(active="yes"), "NotALink", "not_a_link"),
        (value_of(created_at=True), "NotALink", "not_a_link"),
        (value_of(created_at=1.5), "NotALink", "not_a_link"),
    ],
)
def test_a_value_that_is_not_a_link_is_refused_with_its_reason(
    value: bytes | None, error_class: str, label: str
) -> None:
    with pytest.raises(UndecodableRecord) as refused:
        decode_link(value)
    assert refused.value.error_class == error_class
    assert str(refused.value)
    assert reason_label(refused.value.error_class) == label


def test_a_deep_value_is_refused_before_it_is_parsed() -> None:
    with pytest.raises(UndecodableRecord, match="nested deeper than 32 levels"):
        decode_link(b"[" * 100_000 + b"]" * 100_000)


def test_an_unknown_exception_class_gets_a_bounded_label() -> None:
    assert reason_label("RecursionError") == "other"
    assert reason_label("anything at all") == "other"


def test_a_poison_record_is_skipped_and_the_next_records_are_read() -> None:
    labels: list[str] = []
    read = LinkLog(labels.append)
    other = Link(**{**asdict(LINK), "code": "other"})
    read.add(record(link_record(LINK), 0))
    read.add(record(b"[" * 100_000 + b"]" * 100_000, 1))
    read.add(record(b"not json", 2))
    read.add(record(link_record(other), 3))

    assert read.links == {"spring-24": LINK, "other": other}
    assert read.skipped == 2
    assert labels == ["too_deep", "not_json"]
    letters = [letter for letter, _ in read.letters]
    assert [(letter.source_partition, letter.source_offset) for letter in letters] == [
        (1, 1),
        (1, 2),
    ]
    assert {letter.consumer for letter in letters} == {CONSUMER}
    assert letters[0].error_class == "NestedTooDeep"
    assert "nested deeper than 32 levels" in letters[0].reason
    assert letters[1].error_class == "JSONDecodeError"
    assert [reason for _, reason in read.letters] == ["too_deep", "not_json"]


def test_a_bad_record_never_undoes_a_deactivation() -> None:
    read = LinkLog()
    read.add(record(link_record(Link(**{**asdict(LINK), "active": False}))))
    read.add(record(value_of(active="yes")))
    read.add(record(link_record(LINK)))
    assert read.links["spring-24"].active is False


def test_a_flood_of_poison_keeps_at_most_max_letters_but_counts_every_record() -> None:
    labels: list[str] = []
    read = LinkLog(labels.append)
    for offset in range(MAX_LETTERS + 50):
        read.add(record(b"{", offset))
    read.add(record(link_record(LINK), MAX_LETTERS + 50))
    assert read.skipped == len(labels) == MAX_LETTERS + 50
    assert len(read.letters) == MAX_LETTERS
    assert read.links == {"spring-24": LINK}
