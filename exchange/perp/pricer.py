"""One perpetual market's price state: its mark and its funding clock.

``PerpPricer.update(ts_ns, index, best bid, best ask, last trade)`` is called
on every index update: it samples the book's basis (for the mark's moving
average) and the premium (for the funding rate), and returns the mark
(``exchange.perp.mark``). Funding times are the multiples of the interval; a
sample taken at or after one belongs to the next interval, whatever order
the caller runs things in: the interval that ended is closed first, with
its premium index (``exchange.perp.funding``). ``due(ts_ns)`` says whether a
closed interval waits to be settled; ``settle_funding()`` takes the oldest,
its rate (remembered as the last rate, which the mark's carry uses).

An interval with no sample at all (the market was not priced: a stopped
venue) charges no funding: nothing was observed to charge it on, and a venue
coming back after days does not settle every missed interval at today's
mark. Whoever owns the market's clock (the Engine, later the market's actor)
calls these; nothing here reads a clock.
"""
from __future__ import annotations

from exchange.perp.funding import FundingRules, PremiumIndex, funding_rate, premium
from exchange.perp.mark import BasisAverage, funding_carried, mark_price


class PerpPricer:
    def __init__(self, basis_window_ns: int, rules: FundingRules):
        self.rules = rules
        self.basis = BasisAverage(basis_window_ns)
        self.premiums = PremiumIndex(rules.max_samples)
        self.closed: list[tuple[int, int]] = []      # (funding time, premium index) waiting to be settled
        self.funding_rate = 0                        # the last interval's, FUNDING_ONE units
        self.next_funding_ns: int | None = None      # set by the first update
        self.mark: int | None = None

    def update(self, ts_ns: int, index: int, best_bid: int | None, best_ask: int | None,
               last_trade: int | None) -> int:
        """Sample the book at ``ts_ns`` against ``index``; return the new mark (ticks)."""
        interval = self.rules.interval_ns
        if self.next_funding_ns is None:
            self.next_funding_ns = (ts_ns // interval + 1) * interval
        self._roll(ts_ns)
        if best_bid is not None and best_ask is not None:
            self.basis.add(ts_ns, (best_bid + best_ask) // 2, index)
        self.premiums.add(premium(index, best_bid, best_ask))
        carried = funding_carried(index, self.funding_rate, self.next_funding_ns - ts_ns, interval)
        self.mark = mark_price(index, carried, self.basis.average(ts_ns), last_trade)
        return self.mark

    def _roll(self, ts_ns: int) -> None:
        """Close the interval that ended by ``ts_ns`` (if it had samples); skip unpriced ones."""
        interval = self.rules.interval_ns
        if self.next_funding_ns is None or ts_ns < self.next_funding_ns:
            return
        if self.premiums.samples:
            self.closed.append((self.next_funding_ns, self.premiums.average()))
            self.premiums.reset()
        self.next_funding_ns = (ts_ns // interval + 1) * interval

    def due(self, ts_ns: int) -> bool:
        """Whether an interval closed by ``ts_ns`` waits to be settled (at a known mark)."""
        self._roll(ts_ns)
        return bool(self.closed) and self.mark is not None

    def settle_funding(self) -> tuple[int, int]:
        """The oldest closed interval: (its funding time, its rate)."""
        at, average = self.closed.pop(0)
        self.funding_rate = funding_rate(average, self.rules)
        return at, self.funding_rate
