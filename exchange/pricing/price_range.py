"""The lowest and highest price over a sliding time window: the circuit breaker's move
(``exchange.risk.modes``) and the OTC desk's volatility (``exchange.otc.pricing``).

Two monotonic deques of ``(ts, price)``: ``low`` with prices increasing, ``high`` with
prices decreasing, so each price costs O(1) amortized and the window's low and high are
the deques' first entries still inside it.
"""
from __future__ import annotations

from collections import deque


class PriceRange:
    __slots__ = ("low", "high")

    def __init__(self) -> None:
        self.low: deque = deque()      # (ts, price), prices increasing
        self.high: deque = deque()     # (ts, price), prices decreasing

    def add(self, ts: int, price: int, window_ns: int) -> tuple[int, int]:
        """Take a price at ``ts``, drop what left the ``window_ns`` before it; the window's
        (low, high)."""
        low, high = self.low, self.high
        while low and low[-1][1] >= price:
            low.pop()
        low.append((ts, price))
        while high and high[-1][1] <= price:
            high.pop()
        high.append((ts, price))
        horizon = ts - window_ns
        while low[0][0] < horizon:
            low.popleft()
        while high[0][0] < horizon:
            high.popleft()
        return low[0][1], high[0][1]

    def within(self, ts: int, window_ns: int) -> tuple[int, int] | None:
        """(low, high) of the prices in the ``window_ns`` before ``ts`` (None: none), changing nothing."""
        horizon = ts - window_ns
        low = next((p for at, p in self.low if at >= horizon), None)
        high = next((p for at, p in self.high if at >= horizon), None)
        return None if low is None or high is None else (low, high)

    def clear(self) -> None:
        self.low.clear()
        self.high.clear()
