"""The kinked rate curve and the hourly interest index."""
from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, strategies as st

from exchange.margin.lending import (HOURS_PER_YEAR, INDEX_SCALE, RateCurve, debt_of, grow_index, scaled_principal,
                              utilization_ppm)

CURVE = RateCurve(base_ppm=20_000, slope1_ppm=40_000, slope2_ppm=600_000, optimal_utilization_ppm=800_000,
                  reserve_factor_ppm=100_000)


def test_curve_at_its_corners_matches_the_formula():
    assert CURVE.borrow_rate_ppm(0) == 20_000                      # base
    assert CURVE.borrow_rate_ppm(400_000) == 20_000 + 20_000       # half way to the kink
    assert CURVE.borrow_rate_ppm(800_000) == 60_000                # at the kink
    assert CURVE.borrow_rate_ppm(1_000_000) == 660_000             # fully used: base + slope1 + slope2


def test_curve_with_fractional_rate_rounds_against_the_borrower():
    curve = RateCurve(0, 1, 0, 300_000, 0)
    assert CURVE.borrow_rate_ppm(1) == 20_001 and curve.borrow_rate_ppm(1) == 1


@given(st.integers(0, 1_000_000), st.integers(0, 1_000_000))
def test_curve_is_monotonic_and_supply_never_exceeds_borrow(u1, u2):
    low, high = sorted((u1, u2))
    assert CURVE.borrow_rate_ppm(low) <= CURVE.borrow_rate_ppm(high)
    exact = Fraction(CURVE.borrow_rate_ppm(high) * high * (1_000_000 - 100_000), 10**12)
    assert CURVE.supply_rate_ppm(high) == int(exact) <= CURVE.borrow_rate_ppm(high)


def test_curve_with_bad_parameters_is_refused():
    with pytest.raises(ValueError):
        RateCurve(0, 1, 1, 1_000_000, 0)
    with pytest.raises(ValueError):
        RateCurve(-1, 1, 1, 500_000, 0)


def test_utilization_of_an_empty_pool_is_zero_and_of_a_used_pool_rounds_up():
    assert utilization_ppm(5, 0) == 0
    assert utilization_ppm(1, 3) == 333_334


@given(st.integers(1, 10**12), st.lists(st.integers(0, 2_000_000), max_size=48))
def test_debt_with_hourly_index_never_decreases_and_covers_simple_compounding(amount, hourly_rates):
    index = INDEX_SCALE
    scaled = scaled_principal(amount, index)
    previous = debt_of(scaled, index)
    assert previous >= amount
    exact = Fraction(amount)
    for rate in hourly_rates:
        index = grow_index(index, rate)
        exact *= 1 + Fraction(rate, 1_000_000 * HOURS_PER_YEAR)
        debt = debt_of(scaled, index)
        assert debt >= previous                  # interest owed never decreases without a repayment
        assert debt >= exact                     # rounding never favours the borrower
        previous = debt


@pytest.mark.parametrize("kind,asset,amount,reason", [
    (99, "USDT", 1, "UNKNOWN_POOL_REQUEST"),         # was MALFORMED_COMMAND (Core v2 §4)
    (1, "DOGE", 1, "NO_LENDING_POOL"),               # was UNKNOWN_ASSET
    (1, "USDT", 0, "NON_POSITIVE_AMOUNT"),
    (99, "DOGE", 0, "NO_LENDING_POOL"),              # the checks run in this order: pool, amount, kind
])
def test_pool_refuses_a_bad_request_with_that_checks_reason_and_changes_nothing(kind, asset, amount, reason):
    from exchange.core.reasons import Reason
    from exchange.margin.lending import LendingEngine
    from exchange.messages.records import LendingRefused, PoolRequest
    pools = LendingEngine({"USDT": CURVE})
    (refused,) = pools.handle(PoolRequest(kind, 7, "", asset, 1, amount, 0))
    assert type(refused) is LendingRefused and refused.reason == Reason[reason]
    assert pools.pools["USDT"].cash == 0 and not pools.pools["USDT"].loans
