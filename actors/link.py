"""Ordered delivery over Ray calls that may run out of order.

Ray does not promise that an async actor runs calls from one caller in the
order they were sent. Each sender therefore numbers its messages per
receiver (1, 2, 3, ...), and the receiver keeps an ``InboundLinks``: it
applies message ``n`` only after ``n - 1``, buffers early arrivals, and drops
numbers it has already applied (a re-send), so the effect is exactly-once,
in-order delivery on every link.
"""
from __future__ import annotations

from typing import Callable, Hashable


class InboundLinks:
    def __init__(self) -> None:
        self.applied: dict[Hashable, int] = {}          # sender -> last number applied
        self.early: dict[Hashable, dict[int, object]] = {}

    def receive(self, sender: Hashable, number: int, message, apply: Callable[[object], None]) -> int:
        """Apply ``message`` and any buffered successors in order; return how many were applied."""
        last = self.applied.get(sender, 0)
        if number <= last:
            return 0                                     # duplicate
        if number > last + 1:
            self.early.setdefault(sender, {})[number] = message
            return 0
        apply(message)
        count, last = 1, number
        waiting = self.early.get(sender)
        while waiting and last + 1 in waiting:
            last += 1
            apply(waiting.pop(last))
            count += 1
        self.applied[sender] = last
        return count

    def backlog(self) -> int:
        return sum(len(w) for w in self.early.values())


class OutboundLinks:
    """Numbers outgoing messages per receiver."""

    def __init__(self) -> None:
        self.sent: dict[Hashable, int] = {}

    def next(self, receiver: Hashable) -> int:
        number = self.sent.get(receiver, 0) + 1
        self.sent[receiver] = number
        return number
