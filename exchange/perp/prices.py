"""Bankruptcy and liquidation prices of a position (rulebook 4.2.2, 4.4.5).

``collateral`` is what stands behind the position besides its own PnL:
- isolated margin: the margin set aside for it;
- cross margin: the account's wallet balance plus the other positions'
  unrealized PnL, less their maintenance for the liquidation price (the
  account is liquidated when its equity falls to the sum of maintenance).

Equity at a price ``p`` (ticks) is ``collateral + lots * p * k - basis``
(``k`` = quote minor units per tick per lot).

- **Bankruptcy price**: where equity is zero. A long's is rounded up and a
  short's down, so a closing order at that price never leaves a negative
  equity.
- **Liquidation price**: the last price, coming from the position's
  favourable side, at which ``liquidatable`` holds (equity at or below the
  maintenance requirement at that price, ``RiskTiers.maintenance``, rounded
  up): the highest such tick for a long, the lowest for a short. Solved
  exactly tier by tier (the requirement depends on the notional, so on the
  price), then settled on the tick where the rounded check turns, so the
  price shown and the check the liquidator runs never disagree.

Both are None where no positive price reaches them (a long whose collateral
covers its whole cost is never bankrupt).
"""
from __future__ import annotations

from exchange.core.money import PPM
from exchange.perp.tiers import RiskTiers


def equity(lots: int, basis: int, collateral: int, k: int, price: int) -> int:
    return collateral + lots * price * k - basis


def liquidatable(lots: int, basis: int, collateral: int, k: int, tiers: RiskTiers, price: int) -> bool:
    """Whether equity is at or below the maintenance requirement at ``price``."""
    return equity(lots, basis, collateral, k, price) <= tiers.maintenance(abs(lots) * price * k)


def bankruptcy_price(lots: int, basis: int, collateral: int, k: int) -> int | None:
    """The price (ticks) at which the position's equity is zero; None if no positive one."""
    if lots == 0:
        return None
    if lots > 0:
        price = -((collateral - basis) // (lots * k))      # ceil((basis - collateral) / (lots k))
    else:
        price = (collateral - basis) // (-lots * k)        # basis < 0: (collateral + |basis|) / (|lots| k)
    return price if price > 0 else None


def liquidation_price(lots: int, basis: int, collateral: int, k: int, tiers: RiskTiers) -> int | None:
    """The liquidation price in ticks (module docstring); None if no positive price reaches it."""
    return _line_price(lots, basis, collateral, k, tiers, False)


def warning_price(lots: int, basis: int, collateral: int, k: int, tiers: RiskTiers) -> int | None:
    """Where equity meets the warning line (``RiskTiers.warning``), found as the liquidation
    price is: the highest tick at or under which a long is at or under the line, the lowest
    at or over which a short is; None if no positive price reaches it."""
    return _line_price(lots, basis, collateral, k, tiers, True)


def _line_price(lots: int, basis: int, collateral: int, k: int, tiers: RiskTiers, warning: bool) -> int | None:
    if lots == 0:
        return None
    exact = _exact(lots, basis, collateral, k, tiers, warning)
    if exact is None:
        return None
    num, den = exact
    line = tiers.warning if warning else tiers.maintenance
    check = lambda p: equity(lots, basis, collateral, k, p) <= line(abs(lots) * p * k)     # noqa: E731
    if lots > 0:                           # at or under the line at and below the price
        price = num // den
        while check(price + 1):
            price += 1
        while price >= 1 and not check(price):
            price -= 1
        return price if price >= 1 else None
    price = max(1, -(-num // den))         # a short: at and above the price
    while price > 1 and check(price - 1):
        price -= 1
    while not check(price):
        price += 1
    return price


def _exact(lots: int, basis: int, collateral: int, k: int, tiers: RiskTiers, warning: bool = False
           ) -> tuple[int, int] | None:
    """The exact price where equity meets the unrounded requirement (maintenance, or the warning
    line: the mean of maintenance and initial), as (numerator, denominator)."""
    size = abs(lots) * k                                   # notional per tick of price
    if lots > 0 and basis - collateral <= 0:
        return None                                        # the collateral covers the whole cost
    if lots < 0 and collateral - basis <= 0:
        return 0, 1                                        # at or under the line at every price
    one = 2 * PPM if warning else PPM                      # the requirement is (notional x rate - deduction) / one
    for tier in range(tiers.steps + 1):
        if warning:
            rate, deduction = tiers.maintenance_ppm(tier) + tiers.initial_ppm(tier), 2 * tiers.deduction(tier)
        else:
            rate, deduction = tiers.maintenance_ppm(tier), tiers.deduction(tier)
        if lots > 0:     # collateral + size p - basis = (size p rate - deduction) / one
            num, den = (basis - collateral) * one - deduction, size * (one - rate)
        else:            # collateral - basis - size p = (size p rate - deduction) / one  (basis < 0)
            num, den = (collateral - basis) * one + deduction, size * (one + rate)
        low = tier * tiers.step_notional
        if low * den <= size * num and (tier == tiers.steps or size * num <= tiers.ceiling(tier) * den):
            return num, den                                # its notional is in this tier's bracket
    raise AssertionError("the brackets cover every notional")
