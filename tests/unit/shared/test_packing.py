"""Packing encoded events into records, per partition and in order."""

from __future__ import annotations

import json

import pytest

from afflux.shared.wire import (
    MAX_PACKED_BYTES,
    MAX_PACKED_EVENTS,
    chunk_by_partition,
    pack_by_partition,
)

pytestmark = pytest.mark.unit


def _event(n: int, size: int = 0) -> bytes:
    return json.dumps({"n": n, "pad": "x" * size}).encode()


def test_events_of_one_partition_share_a_record_in_their_order() -> None:
    items = [(b"a", _event(1)), (b"c", _event(2)), (b"a", _event(3))]

    records = pack_by_partition(items, lambda key: 0)

    assert len(records) == 1
    partition, key, value = records[0]
    assert (partition, key) == (0, b"a")
    assert [e["n"] for e in json.loads(value)] == [1, 2, 3]


def test_a_lone_event_is_a_plain_record_not_an_array() -> None:
    records = pack_by_partition([(b"k", _event(7))], lambda key: 3)

    assert records == [(3, b"k", _event(7))]


def test_each_record_holds_only_events_of_its_own_partition() -> None:
    items = [(bytes([i]), _event(i)) for i in range(40)]

    records = pack_by_partition(items, lambda key: key[0] % 4)

    assert len(records) == 4
    for partition, key, value in records:
        assert key[0] % 4 == partition
        assert all(e["n"] % 4 == partition for e in json.loads(value))


def test_a_record_never_exceeds_the_event_limit() -> None:
    items = [(b"k", _event(i)) for i in range(MAX_PACKED_EVENTS + 1)]

    records = pack_by_partition(items, lambda key: 0)

    assert [len(json.loads(v)) if v.startswith(b"[") else 1 for _, _, v in records] == [
        MAX_PACKED_EVENTS,
        1,
    ]
    assert json.loads(records[1][2])["n"] == MAX_PACKED_EVENTS


def test_a_record_never_exceeds_the_byte_limit() -> None:
    big = MAX_PACKED_BYTES // 3
    items = [(b"k", _event(i, big)) for i in range(4)]

    records = pack_by_partition(items, lambda key: 0)

    assert all(len(v) <= MAX_PACKED_BYTES for _, _, v in records)
    assert [e["n"] for _, _, v in records for e in _events(v)] == [0, 1, 2, 3]


def _events(value: bytes) -> list[dict[str, int]]:
    parsed = json.loads(value)
    return parsed if isinstance(parsed, list) else [parsed]


def test_each_chunk_gives_back_what_its_caller_gave_per_event() -> None:
    items = [(i % 2, bytes([i]), _event(i), f"member-{i}") for i in range(5)]

    chunks = chunk_by_partition(items)

    assert [(c.partition, c.key, c.members) for c in chunks] == [
        (0, bytes([0]), ["member-0", "member-2", "member-4"]),
        (1, bytes([1]), ["member-1", "member-3"]),
    ]


def test_an_event_larger_than_the_byte_limit_gets_a_record_of_its_own() -> None:
    items = [(0, b"k", _event(i, MAX_PACKED_BYTES if i == 1 else 0), i) for i in range(3)]

    chunks = chunk_by_partition(items)

    assert [c.members for c in chunks] == [[0], [1], [2]]
