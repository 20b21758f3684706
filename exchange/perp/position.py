"""A perpetual position: signed size, cost basis, realized PnL, fees and funding.

``lots`` is signed (> 0 long, < 0 short) in the market's lots; ``basis`` is
the signed entry notional of the open lots, in quote minor units (what they
cost: ``price_ticks * lots * quote_per_tick_lot`` summed over the fills that
opened them), so the entry price is ``basis / (lots * quote_per_tick_lot)``
ticks, exact, and never stored rounded. Unrealized PnL at a mark price is
``lots * mark * k - basis``.

Reducing a position releases its basis in proportion to the lots closed;
the released part is rounded toward zero's far side for the account
(``mul_div_ceil`` of a signed basis: a long releases a little more cost, a
short a little less), so the PnL realized now is never more than exact, and
the remainder stays in the basis of the lots still open: over a position's
life the realized PnL is exactly what its fills paid and received. So the
PnL of every account sums to zero over the market (every fill's notional is
a buyer's cost and a seller's proceeds).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from exchange.core.money import mul_div_ceil


class MarginMode(IntEnum):
    CROSS = 0
    ISOLATED = 1


@dataclass(slots=True)
class Position:
    lots: int = 0
    basis: int = 0                   # signed entry notional of the open lots (quote minor units)
    realized: int = 0                # realized PnL, quote minor units
    fees: int = 0                    # fees paid on this market (a rebate is negative)
    funding: int = 0                 # funding paid (received is negative)
    mode: MarginMode = MarginMode.CROSS
    leverage: int = 20
    risk_tier: int = 0               # the risk limit the account chose (``RiskTiers``)
    margin: int = 0                  # isolated: the margin set aside for it

    def fill(self, lots: int, price_ticks: int, quote_per_tick_lot: int) -> int:
        """Apply a fill of ``lots`` (> 0 bought, < 0 sold) at ``price_ticks``; return the PnL it realized."""
        if lots == 0:
            return 0
        if self.lots == 0 or (self.lots > 0) == (lots > 0):       # opens or adds
            self.lots += lots
            self.basis += lots * price_ticks * quote_per_tick_lot
            return 0
        closed = min(abs(lots), abs(self.lots))
        if closed == abs(self.lots):
            released = self.basis
        else:
            released = mul_div_ceil(self.basis, closed, abs(self.lots))
        closed_signed = closed if self.lots > 0 else -closed
        pnl = closed_signed * price_ticks * quote_per_tick_lot - released
        self.lots -= closed_signed
        self.basis -= released
        self.realized += pnl
        rest = lots + closed_signed                                  # what flips the position, if anything
        if rest:
            self.lots = rest
            self.basis = rest * price_ticks * quote_per_tick_lot
        return pnl

    def notional(self, price_ticks: int, quote_per_tick_lot: int) -> int:
        """The absolute value of the open lots at ``price_ticks``."""
        return abs(self.lots) * price_ticks * quote_per_tick_lot

    def unrealized(self, mark_ticks: int, quote_per_tick_lot: int) -> int:
        return self.lots * mark_ticks * quote_per_tick_lot - self.basis

    def check_invariants(self) -> None:
        assert (self.lots == 0) == (self.basis == 0), "a flat position has no basis, an open one has one"
        assert self.lots == 0 or (self.basis > 0) == (self.lots > 0), "the basis has the position's sign"
