"""Bankruptcy and liquidation prices (rulebook 4.2.2, 4.4.5): long and short, isolated
and cross, in every tier, against figures computed by hand (an independent bisection
with exact fractions, one worked below), and the boundary property on random positions."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from exchange.perp.prices import bankruptcy_price, equity, liquidatable, liquidation_price
from exchange.perp.tiers import RiskTiers

S = 10**12                       # 1,000,000 USDT per tier (USDT scale 6)
K = 100                          # a tick of 0.1 USDT on a lot of 0.001 BTC = 0.0001 USDT
ENTRY = 400_000                  # 40,000.0 USDT
TIERS = RiskTiers(step_notional=S)

# Tier t: 25 x (t + 1/2) BTC long or short at 40,000, i.e. a notional of (t + 1/2) M USDT.
# Isolated at 10x: margin = notional / 10. Cross: collateral = 13% of the notional (the
# wallet less the other positions' losses and maintenance). Bankruptcy is the same in every
# tier (36,000 / 44,000 isolated; 34,800 / 45,200 cross); liquidation rises with the tier.
#
# Worked, tier 0 long isolated: 12,500 lots, basis 5e11, margin 5e10, K = 100.
#   equity(p) = 5e10 + 1.25e6 p - 5e11; maintenance = 0.5% of 1.25e6 p = 6,250 p
#   1,243,750 p = 4.5e11  ->  p = 361,809.85  ->  the highest tick still liquidatable: 361,809
ISOLATED = [  # tier: (long liquidation, short liquidation)
    (361_809, 437_811), (362_289, 436_964), (363_045, 435_863), (363_848, 434_734), (364_672, 433_605),
    (365_510, 432_481), (366_375, 431_361), (367_253, 430_240), (368_137, 429_132), (369_027, 428_071)]
CROSS = [
    (349_748, 449_752), (350_168, 448_845), (350_862, 447_685), (351_603, 446_499), (352_380, 445_308),
    (353_193, 444_094), (354_004, 442_900), (354_818, 441_723), (355_637, 440_561), (356_461, 439_499)]


def _position(tier: int) -> tuple[int, int]:
    lots = 25_000 * (2 * tier + 1) // 2
    return lots, lots * ENTRY * K


@pytest.mark.parametrize("tier", range(10))
def test_isolated_prices_in_every_tier_match_the_hand_figures(tier):
    lots, notional = _position(tier)
    assert TIERS.tier_of(notional) == tier
    margin = notional // 10
    long_liquidation, short_liquidation = ISOLATED[tier]
    assert liquidation_price(lots, notional, margin, K, TIERS) == long_liquidation
    assert liquidation_price(-lots, -notional, margin, K, TIERS) == short_liquidation
    assert bankruptcy_price(lots, notional, margin, K) == 360_000
    assert bankruptcy_price(-lots, -notional, margin, K) == 440_000


@pytest.mark.parametrize("tier", range(10))
def test_cross_prices_in_every_tier_match_the_hand_figures(tier):
    lots, notional = _position(tier)
    collateral = 13 * notional // 100
    long_liquidation, short_liquidation = CROSS[tier]
    assert liquidation_price(lots, notional, collateral, K, TIERS) == long_liquidation
    assert liquidation_price(-lots, -notional, collateral, K, TIERS) == short_liquidation
    assert bankruptcy_price(lots, notional, collateral, K) == 348_000
    assert bankruptcy_price(-lots, -notional, collateral, K) == 452_000


def test_a_long_covered_in_full_has_neither_price_and_a_flat_position_none():
    assert liquidation_price(10, 10 * ENTRY * K, 10 * ENTRY * K, K, TIERS) is None
    assert bankruptcy_price(10, 10 * ENTRY * K, 10 * ENTRY * K, K) is None
    assert liquidation_price(0, 0, 5, K, TIERS) is None and bankruptcy_price(0, 0, 5, K) is None


def test_a_short_without_collateral_is_liquidatable_at_every_price():
    assert liquidation_price(-10, -1, -1, K, TIERS) == 1


positions = st.tuples(st.integers(1, 300_000), st.integers(100_000, 800_000), st.integers(1, 100),
                      st.booleans())


def _sized(position) -> tuple[int, int, int, bool]:
    """(signed lots, signed basis, margin, short) of a generated position at its leverage."""
    lots, entry, leverage, short = position
    notional = lots * entry * K
    return (-lots, -notional, notional // leverage, True) if short else (lots, notional, notional // leverage, False)


@given(positions)
def test_the_liquidation_price_is_where_the_check_turns(position):
    signed, basis, margin, short = _sized(position)
    notional = abs(basis)
    price = liquidation_price(signed, basis, margin, K, TIERS)
    if price is None:
        assert not short and margin >= notional
        return
    assert liquidatable(signed, basis, margin, K, TIERS, price)
    beyond = price - 1 if short else price + 1
    assert beyond < 1 or not liquidatable(signed, basis, margin, K, TIERS, beyond)


@given(positions)
def test_at_the_bankruptcy_price_equity_is_not_negative_and_one_tick_worse_it_is(position):
    signed, basis, margin, short = _sized(position)
    price = bankruptcy_price(signed, basis, margin, K)
    if price is None:
        return
    assert equity(signed, basis, margin, K, price) >= 0
    worse = price + 1 if short else price - 1
    assert worse < 1 or equity(signed, basis, margin, K, worse) < 0
