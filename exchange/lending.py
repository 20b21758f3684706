"""Lending-pool arithmetic (groundwork for issue 6): the kinked borrow-rate
curve and the hourly cumulative interest index. Pure integers.

Rates are parts per million per year. The curve is the one lending protocols
use, with utilization U in ppm:

    R(U) = base + slope1 * U / U_opt                         for U <= U_opt
    R(U) = base + slope1 + slope2 * (U - U_opt) / (1 - U_opt) for U >  U_opt

rounded up (the borrower owes it). Suppliers earn R * U * (1 - reserve),
rounded down; the reserve goes to the exchange.

Interest is charged by the hour as centralised margin desks do: a started
hour counts as a whole hour, and the rate in force is read again at the start
of every hour. Accrual is O(1) per pool: a cumulative index (scaled by
``INDEX_SCALE``) grows by ``rate / HOURS_PER_YEAR`` each hour; a borrower's
debt is its scaled principal times the index, rounded up.
"""
from __future__ import annotations

from dataclasses import dataclass

from exchange.money import PPM

HOURS_PER_YEAR = 8_760
HOUR_NS = 3_600 * 1_000_000_000
INDEX_SCALE = 10**18


@dataclass(frozen=True, slots=True)
class RateCurve:
    base_ppm: int
    slope1_ppm: int
    slope2_ppm: int
    optimal_utilization_ppm: int
    reserve_factor_ppm: int

    def __post_init__(self) -> None:
        if not 0 < self.optimal_utilization_ppm < PPM:
            raise ValueError("optimal utilization must be strictly between 0 and 100%")
        if min(self.base_ppm, self.slope1_ppm, self.slope2_ppm) < 0 or not 0 <= self.reserve_factor_ppm <= PPM:
            raise ValueError("rates must be non-negative and the reserve factor within 0..100%")

    def borrow_rate_ppm(self, utilization_ppm: int) -> int:
        """Yearly borrow rate at ``utilization_ppm`` (0..1e6), rounded up."""
        u = min(max(utilization_ppm, 0), PPM)
        optimal = self.optimal_utilization_ppm
        if u <= optimal:
            return self.base_ppm + -((-self.slope1_ppm * u) // optimal)
        return self.base_ppm + self.slope1_ppm + -((-self.slope2_ppm * (u - optimal)) // (PPM - optimal))

    def supply_rate_ppm(self, utilization_ppm: int) -> int:
        """Yearly supply rate: R * U * (1 - reserve), rounded down."""
        u = min(max(utilization_ppm, 0), PPM)
        return self.borrow_rate_ppm(u) * u * (PPM - self.reserve_factor_ppm) // (PPM * PPM)


def utilization_ppm(borrowed: int, supplied: int) -> int:
    """Borrowed / supplied in ppm (0 for an empty pool), rounded up."""
    if supplied <= 0:
        return 0
    return min(PPM, -((-borrowed * PPM) // supplied))


def hour_of(ts_ns: int) -> int:
    return ts_ns // HOUR_NS


def grow_index(index: int, rate_ppm: int) -> int:
    """The index after one hour at ``rate_ppm`` per year (rounded up: debt never shrinks)."""
    return index + -((-index * rate_ppm) // (PPM * HOURS_PER_YEAR))


def scaled_principal(amount: int, index: int) -> int:
    """What a borrow of ``amount`` adds to a scaled balance at ``index`` (rounded up)."""
    return -((-amount * INDEX_SCALE) // index)


def debt_of(scaled: int, index: int) -> int:
    """A scaled balance's debt at ``index`` (rounded up: the borrower owes it)."""
    return -((-scaled * index) // INDEX_SCALE)
