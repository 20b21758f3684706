"""An independent reference for the lending arithmetic the tests check against.

Written from the rules in the issue and ``exchange/margin/lending.py``'s docstring,
with Python's exact ``Fraction`` and explicit ceilings, not by calling the
code under test: a yearly rate from the kinked curve read at each hour's
start, the index compounding hourly, a started hour charged whole (a borrow
is scaled at the index when its hour began).
"""
from __future__ import annotations

import math
from fractions import Fraction

PPM = 1_000_000
SCALE = 10**18
HOURS_PER_YEAR = 8_760
HOUR_NS = 3_600 * 10**9


def ceil(x: Fraction) -> int:
    return math.ceil(x)


def rate_ppm(curve: dict, borrowed: int, liquidity: int) -> int:
    """The curve's yearly rate (ppm, rounded up) at utilization borrowed / liquidity."""
    u = 0 if liquidity <= 0 else min(PPM, ceil(Fraction(borrowed * PPM, liquidity)))
    base, s1, s2, opt = curve["base"], curve["slope1"], curve["slope2"], curve["optimal"]
    if u <= opt:
        return base + ceil(Fraction(s1 * u, opt))
    return base + s1 + ceil(Fraction(s2 * (u - opt), PPM - opt))


class ReferencePool:
    """One asset's pool with one loan at a time, hour by hour."""

    def __init__(self, curve: dict, cash: int, first_ts_ns: int):
        self.curve = curve
        self.cash = cash
        self.hour = first_ts_ns // HOUR_NS
        self.index = SCALE + ceil(Fraction(SCALE * rate_ppm(curve, 0, cash), PPM * HOURS_PER_YEAR))
        self.prev_index = SCALE
        self.scaled = 0

    def debt(self) -> int:
        return ceil(Fraction(self.scaled * self.index, SCALE))

    def borrow(self, amount: int) -> None:
        self.scaled += ceil(Fraction(amount * SCALE, self.prev_index))
        self.cash -= amount

    def advance_to(self, ts_ns: int) -> None:
        while self.hour < ts_ns // HOUR_NS:
            self.hour += 1
            rate = rate_ppm(self.curve, self.debt(), self.cash + self.debt())
            self.prev_index = self.index
            self.index += ceil(Fraction(self.index * rate, PPM * HOURS_PER_YEAR))


USDT_CURVE = {"base": 20_000, "slope1": 40_000, "slope2": 600_000, "optimal": 800_000}   # config/default.toml
