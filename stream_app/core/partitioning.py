"""Kafka's default partitioner (murmur2 of the key), so offline code knows where a key's events land.

The Java client, librdkafka's ``murmur2_random`` and aiokafka all place a
keyed message on ``(murmur2(key) & 0x7fffffff) % partitions``; the worker's
event-time clocks are per partition, so reproducing the worker offline
needs the same placement.

Examples
--------
>>> partition_for(b"85123A", 4), partition_for(b"sim-000001", 4)
(0, 1)
"""

from __future__ import annotations

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """MurmurHash2 of ``data`` as Kafka computes it (seed 0x9747b28c), an unsigned 32-bit int."""
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length % 4
    if tail:
        base = length - tail
        if tail >= 3:
            h ^= data[base + 2] << 16
        if tail >= 2:
            h ^= data[base + 1] << 8
        h ^= data[base]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def partition_for(key: bytes, partitions: int) -> int:
    """The partition a message with ``key`` goes to among ``partitions``, as Kafka's default partitioner."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions
