"""Replay protection memory: (account, request id) -> the command's body and
the events it produced.

A retry must carry the same body as the request it repeats: the memory keeps
each command itself next to its events, and the shard answers a re-used id
whose command differs (``same_request``: its type or any field but the
``ts_ns`` the accepting actor stamps) ``REQUEST_ID_REUSED`` instead of the
first answer. Keeping the command rather than a hash of it costs nothing to
build (a blake2b digest cost 5-10 us a command, measured), compares exactly,
and admitted commands hold only small plain values.

Holds the last ``window`` requests, evicting the oldest first (deterministic,
so a journal replay evicts the same ones). Stored in 64 buckets chosen by
account id rather than one dict: a single dict of a million entries stalls the
engine for several milliseconds each time it doubles (measured: 7-9 ms at
175k entries); buckets keep every resize about 64 times smaller.
"""
from __future__ import annotations

from collections import deque
from typing import Iterator

BUCKETS = 64


def same_request(first, second) -> bool:
    """Two commands with one id are the same request: the same type and every field
    equal except ``ts_ns`` (field 1 of every client command)."""
    return type(first) is type(second) and first[0] == second[0] and first[2:] == second[2:]


class RequestMemory:
    __slots__ = ("window", "buckets", "order")

    def __init__(self, window: int):
        self.window = window
        self.buckets: list[dict] = [{} for _ in range(BUCKETS)]
        self.order: deque = deque()      # (key, command, events), oldest first: snapshots copy it as is

    @staticmethod
    def _bucket_index(key: tuple) -> int:
        account = key[0]
        return (account if type(account) is int else hash(account)) & (BUCKETS - 1)

    def __contains__(self, key: tuple) -> bool:
        return key in self.buckets[self._bucket_index(key)]

    def get(self, key: tuple, default=None):
        """``(command, events)`` remembered for ``key``, or ``default``."""
        return self.buckets[self._bucket_index(key)].get(key, default)

    def remember(self, key: tuple, command, events: list) -> None:
        """Store a request's command and events (first answer wins) and evict beyond the window."""
        bucket = self.buckets[self._bucket_index(key)]
        if key in bucket:
            return
        bucket[key] = (command, events)
        order = self.order
        order.append((key, command, events))
        if len(order) > self.window:
            oldest = order.popleft()[0]
            del self.buckets[self._bucket_index(oldest)][oldest]

    def items(self) -> Iterator[tuple[tuple, str, list]]:
        """(key, command, events), oldest first."""
        return iter(self.order)

    def __len__(self) -> int:
        return len(self.order)

    def __eq__(self, other) -> bool:
        return isinstance(other, RequestMemory) and list(self.items()) == list(other.items())
