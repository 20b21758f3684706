"""A bounded, awaitable log of events with consecutive cursors.

Used for the per-account and per-market event streams: a consumer asks for
everything after its cursor and waits (long-poll) when nothing is new. Cursors
are consecutive from 1, so a consumer can prove it saw every event (no gaps);
if it falls more than ``capacity`` behind, ``wait_after`` says so with
``lost=True`` instead of silently skipping.
"""
from __future__ import annotations

import asyncio
from collections import deque


class EventLog:
    def __init__(self, capacity: int = 100_000):
        self.entries: deque = deque(maxlen=capacity)
        self.last = 0                      # cursor of the newest entry
        self._changed = asyncio.Event()

    def append(self, item) -> None:
        self.last += 1
        self.entries.append((self.last, item))
        self._changed.set()

    def extend(self, items: list) -> None:
        """Append many items and wake waiters once."""
        if not items:
            return
        start = self.last + 1
        self.entries.extend(zip(range(start, start + len(items)), items))
        self.last += len(items)
        self._changed.set()

    def after(self, cursor: int, limit: int) -> tuple[list, bool]:
        """Entries with cursor > ``cursor`` (at most ``limit``), and whether some were lost."""
        if cursor >= self.last:
            return [], False
        first = self.entries[0][0] if self.entries else self.last + 1
        lost = cursor + 1 < first
        start = max(0, cursor + 1 - first)
        out = [self.entries[i] for i in range(start, min(len(self.entries), start + limit))]
        return out, lost

    async def wait_after(self, cursor: int, timeout_s: float, limit: int = 10_000) -> dict:
        """Return ``{"events": [(cursor, event)...], "lost": bool, "last": the newest cursor}``,
        waiting up to ``timeout_s`` (a consumer whose cursor is past ``last`` reads a log that
        began again: its actor restarted)."""
        items, lost = self.after(cursor, limit)
        if not items and timeout_s > 0:
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout_s)
            except asyncio.TimeoutError:
                pass
            items, lost = self.after(cursor, limit)
        return {"events": items, "lost": lost, "last": self.last}
