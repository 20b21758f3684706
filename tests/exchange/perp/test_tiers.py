"""Tiered risk limits (rulebook 4.3.2): rates per tier, the continuous maintenance
requirement, risk-limit ceilings and leverage, the warning line."""
from __future__ import annotations

from fractions import Fraction
import math

import pytest
from hypothesis import given, strategies as st

from exchange.perp.tiers import RiskTiers

S = 10**12                                  # 1,000,000 USDT (scale 6) per tier
TIERS = RiskTiers(step_notional=S)


def test_rates_follow_the_rulebook_table():
    assert [TIERS.maintenance_ppm(t) for t in (0, 1, 9)] == [5_000, 10_000, 50_000]      # 0.50% + t x 0.50%
    assert [TIERS.initial_ppm(t) for t in (0, 1, 9)] == [10_000, 15_000, 55_000]         # 1.00% + t x 0.50%
    assert [TIERS.max_leverage(t) for t in range(10)] == [100, 66, 50, 40, 33, 28, 25, 22, 20, 18]


def test_tier_of_a_notional_and_the_ceilings():
    assert [TIERS.tier_of(n) for n in (0, 1, S, S + 1, 2 * S, 10 * S)] == [0, 0, 0, 1, 1, 9]
    assert TIERS.tier_of(10 * S + 1) is None and TIERS.bracket(10 * S + 1) == 9
    assert TIERS.ceiling(0) == S and TIERS.ceiling(9) == 10 * S


def test_maintenance_by_hand_in_the_first_three_tiers():
    # tier 0: 0.5% of 500k = 2,500 USDT
    assert TIERS.maintenance(S // 2) == 2_500 * 10**6
    # tier 1: 1.0% of 1.5M less the deduction 1M x 0.5% = 15,000 - 5,000 = 10,000 USDT
    assert TIERS.maintenance(3 * S // 2) == 10_000 * 10**6
    # tier 2: 1.5% of 2.5M less (1M x 0.5% + 2M x 0.5%) = 37,500 - 15,000 = 22,500 USDT
    assert TIERS.maintenance(5 * S // 2) == 22_500 * 10**6
    assert TIERS.initial(3 * S // 2) == 17_500 * 10**6          # 1.5% of 1.5M = 22,500, less the same 5,000
    assert TIERS.warning(S // 2) == (2_500 + 5_000) * 10**6 // 2


def test_a_requirement_is_rounded_up():
    assert TIERS.maintenance(1) == 1 and TIERS.maintenance(199) == 1 and TIERS.maintenance(201) == 2


@given(st.integers(min_value=0, max_value=12 * S))
def test_maintenance_matches_a_sum_over_the_brackets(notional):
    """Reference: each slice of the notional pays its own bracket's rate (the top one beyond)."""
    exact = Fraction(0)
    for tier in range(10):
        low, high = tier * S, (tier + 1) * S if tier < 9 else 12 * S
        part = max(0, min(notional, high) - low)
        exact += Fraction(part * TIERS.maintenance_ppm(tier), 10**6)
    assert TIERS.maintenance(notional) == math.ceil(exact)


@given(st.integers(min_value=0, max_value=12 * S - 1))
def test_requirements_never_fall_as_the_notional_grows_and_never_jump(notional):
    for requirement in (TIERS.maintenance, TIERS.initial):
        step = requirement(notional + 1) - requirement(notional)
        assert 0 <= step <= 1          # at most 5.5% of one minor unit, rounded up: no jump at a boundary


def test_bad_tables_are_refused():
    for bad in (dict(base_maintenance_ppm=10_000, base_initial_ppm=10_000), dict(step_notional=0),
                dict(steps=-1), dict(step_ppm=-1), dict(steps=200)):
        with pytest.raises(ValueError):
            RiskTiers(**{"step_notional": S, **bad})
