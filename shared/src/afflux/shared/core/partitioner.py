"""Kafka's default partitioner (murmur2 of the key), as a pure function: producers pack
events by the partition their key puts them on, and consumers check that an event came
where its key puts it."""

from __future__ import annotations

import struct


def partition_for(key: bytes, partitions: int) -> int:
    """The default (murmur2) partitioner's choice, as the Java and aiokafka clients make it."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


_M = 0x5BD1E995
_WORD = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (seed 0x9747b28c) as an unsigned 32-bit int.

    The same hash as aiokafka's, a word at a time instead of a byte at a time (about
    twice as fast): a producer hashes every event's key to pack it with its partition.
    """
    length = len(data)
    h = (0x9747B28C ^ length) & _WORD
    whole = length & ~3
    for (k,) in struct.iter_unpack("<I", data[:whole]):
        k = (k * _M) & _WORD
        k ^= k >> 24
        k = (k * _M) & _WORD
        h = ((h * _M) & _WORD) ^ k
    tail = length & 3
    if tail:
        if tail == 3:
            h ^= data[whole + 2] << 16
        if tail >= 2:
            h ^= data[whole + 1] << 8
        h ^= data[whole]
        h = (h * _M) & _WORD
    h ^= h >> 13
    h = (h * _M) & _WORD
    return h ^ (h >> 15)
