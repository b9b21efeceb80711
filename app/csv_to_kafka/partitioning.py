"""Keyed partitioning exactly as the Java client's default partitioner does it.

A record with a key goes to ``to_positive(murmur2(key)) % partitions``: Kafka's
``Utils.murmur2`` (seed ``0x9747b28c``, the 32-bit MurmurHash2 of the key's bytes, as a signed
Java ``int``) and ``Utils.toPositive`` (``h & 0x7fffffff``, not ``abs``). Java consumers, Kafka
Streams and ksqlDB then find each key in the partition they expect, so they co-partition with
topics that Java producers wrote. (librdkafka's own default is ``consistent_random``, a CRC32: a
different partition for most keys; its ``murmur2_random`` is this one.)

These are the reference functions, tested against the Java client's answers; the copy's hot path
may compute the same in C.
"""

from __future__ import annotations

__all__ = ["murmur2", "partition_for", "to_positive"]

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's ``Utils.murmur2(data)``: a signed 32-bit int, as Java returns it."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    end = length - length % 4
    for i in range(0, end, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = (h * _M) & _MASK
        h ^= k
    tail = length % 4
    if tail:
        if tail == 3:
            h ^= data[end + 2] << 16
        if tail >= 2:
            h ^= data[end + 1] << 8
        h ^= data[end]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def to_positive(number: int) -> int:
    """Kafka's ``Utils.toPositive``: the low 31 bits (so ``-2**31`` gives 0, not ``2**31``)."""
    return number & 0x7FFFFFFF


def partition_for(key: bytes, partitions: int) -> int:
    """The partition the Java client's default partitioner picks for ``key``."""
    if partitions < 1:
        raise ValueError(f"a topic has at least one partition, got {partitions}")
    return to_positive(murmur2(key)) % partitions
