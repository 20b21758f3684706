"""A dict split into 64 buckets by key, so no single resize is large.

CPython doubles a dict by copying every entry at once; at a few hundred
thousand open orders that is a 5-15 ms stall in the middle of one command
(measured in ``ops/bench/book.py``). Splitting the same mapping over 64 dicts
makes each doubling about 64 times smaller. Keys are ints (order ids); the
bucket is ``(key >> 10) & 63``, which skips the shard bits of an order id.
Hot paths may index ``buckets`` directly with ``bucket_of``.
"""
from __future__ import annotations

from typing import Iterator

SHIFT, MASK = 10, 63


def bucket_of(key: int) -> int:
    return (key >> SHIFT) & MASK


class BucketMap:
    __slots__ = ("buckets",)

    def __init__(self) -> None:
        self.buckets: list[dict] = [{} for _ in range(MASK + 1)]

    def get(self, key, default=None):
        return self.buckets[(key >> SHIFT) & MASK].get(key, default) if type(key) is int else default

    def __getitem__(self, key):
        return self.buckets[(key >> SHIFT) & MASK][key]

    def __setitem__(self, key: int, value) -> None:
        self.buckets[(key >> SHIFT) & MASK][key] = value

    def __delitem__(self, key: int) -> None:
        del self.buckets[(key >> SHIFT) & MASK][key]

    def pop(self, key, default=None):
        return self.buckets[(key >> SHIFT) & MASK].pop(key, default) if type(key) is int else default

    def __contains__(self, key) -> bool:
        return type(key) is int and key in self.buckets[(key >> SHIFT) & MASK]

    def __len__(self) -> int:
        return sum(len(b) for b in self.buckets)

    def __iter__(self) -> Iterator:
        for bucket in self.buckets:
            yield from bucket

    def keys(self):
        return list(self)

    def values(self) -> Iterator:
        for bucket in self.buckets:
            yield from bucket.values()

    def items(self) -> Iterator:
        for bucket in self.buckets:
            yield from bucket.items()

    def __eq__(self, other) -> bool:
        if isinstance(other, BucketMap):
            other = dict(other.items())
        return isinstance(other, dict) and dict(self.items()) == other

    def __repr__(self) -> str:
        return f"BucketMap({dict(self.items())!r})"
