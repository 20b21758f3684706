"""The mark price: a fair price that a spike in our own book cannot move (rulebook 5.2.2.5).

``mark_price`` is the median of three prices, the construction the large
venues use:

1. the index carried to the next funding: ``index * (1 + last funding rate *
   time to next funding / interval)``;
2. the index plus a moving average of our book's basis (mid - index) over a
   configured window (``BasisAverage``);
3. our last trade, or the index itself while the market has none.

So one print far from the index moves at most one of the three, and the
median ignores it. Margin, liquidation and ADL use the mark, never the last
trade alone. ``diverged`` tells whether the mark is further from the index
than a band (orders priced beyond the mark, away from the index, are refused
then: ``PerpDesk.place``). Prices are ticks; adjustments are
truncated toward the index. Times are ``ts_ns`` from the caller.
"""
from __future__ import annotations

from collections import deque

from exchange.core.money import PPM
from exchange.perp.funding import FUNDING_ONE


def _toward_zero(numerator: int, denominator: int) -> int:
    quotient = abs(numerator) // denominator
    return quotient if numerator >= 0 else -quotient


def funding_carried(index: int, rate: int, to_next_ns: int, interval_ns: int) -> int:
    """Price 1: the index carried by the last funding rate (``FUNDING_ONE`` units) over
    the time left to the next funding, as a fraction of the interval."""
    return index + _toward_zero(index * rate * to_next_ns, FUNDING_ONE * interval_ns)


def mark_price(index: int, carried: int, basis_average: int, last_trade: int | None) -> int:
    """The median of (``carried``, index + ``basis_average``, the last trade or the index)."""
    a, b, c = carried, index + basis_average, index if last_trade is None else last_trade
    return max(min(a, b), min(max(a, b), c))


def diverged(mark: int, index: int, band_ppm: int) -> bool:
    """Whether the mark is further from the index than ``band_ppm`` of it."""
    return abs(mark - index) * PPM > band_ppm * index


class BasisAverage:
    """The moving average of (book mid - index), in ticks, over the last ``window_ns``;
    at most ``max_samples`` kept (the oldest go first)."""

    def __init__(self, window_ns: int, max_samples: int = 4_096):
        if window_ns <= 0 or max_samples <= 0:
            raise ValueError("window_ns and max_samples must be positive")
        self.window_ns = window_ns
        self.samples: deque[tuple[int, int]] = deque(maxlen=max_samples)
        self.total = 0

    def add(self, ts_ns: int, mid: int, index: int) -> None:
        """Record the basis at ``ts_ns`` (times must not go back)."""
        if self.samples and ts_ns < self.samples[-1][0]:
            raise ValueError("basis samples must come in time order")
        if len(self.samples) == self.samples.maxlen:
            self.total -= self.samples[0][1]
        self.samples.append((ts_ns, mid - index))
        self.total += mid - index
        self._expire(ts_ns)

    def average(self, ts_ns: int) -> int:
        """The average basis of the samples within the window ending at ``ts_ns``; 0 if none."""
        self._expire(ts_ns)
        return _toward_zero(self.total, len(self.samples)) if self.samples else 0

    def _expire(self, ts_ns: int) -> None:
        while self.samples and self.samples[0][0] <= ts_ns - self.window_ns:
            self.total -= self.samples.popleft()[1]

    def to_plain(self) -> list:
        return [self.window_ns, self.samples.maxlen, [list(s) for s in self.samples]]

    @classmethod
    def from_plain(cls, data: list) -> "BasisAverage":
        average = cls(data[0], data[1])
        for ts_ns, basis in data[2]:
            average.samples.append((ts_ns, basis))
            average.total += basis
        return average
