"""afflux's murmur2 picks the partition the Java and aiokafka clients pick for every key."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from afflux.shared.core.partitioner import murmur2, partition_for

pytestmark = pytest.mark.unit


@dataclass(frozen=True)
class Case:
    key: bytes
    partition_of_12: int


# The partitions are the aiokafka client's for 12 partitions.
CASES = [
    Case(b"21", 0),
    # a tail of 0, 1, 2 and 3 bytes after the whole 4-byte words
    Case(b"", 9),
    Case(b"a", 4),
    Case(b"ab", 2),
    Case(b"abc", 3),
    Case(b"abcd", 8),
    # a visitor id, the key every click is produced under
    Case(b"v_0123456789abcdef0123456789abcdef", 5),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: repr(c.key))
def test_a_key_goes_where_aiokafka_sends_it(case: Case) -> None:
    assert partition_for(case.key, 12) == case.partition_of_12
    assert murmur2(case.key) == aiokafka_murmur2(case.key) & 0xFFFFFFFF


def test_random_keys_of_every_length_hash_as_aiokafka_hashes_them() -> None:
    chosen = random.Random(20261201)
    for length in range(0, 80):
        for _ in range(25):
            key = chosen.randbytes(length)
            assert murmur2(key) == aiokafka_murmur2(key) & 0xFFFFFFFF, key
