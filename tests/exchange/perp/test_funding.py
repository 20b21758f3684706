"""Funding: premium samples, the weighted premium index, the rate's clamp and cap, and
payments that sum to zero (over a simulated week too)."""
from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest
from hypothesis import given, strategies as st

from exchange.perp.funding import (FUNDING_ONE, FundingRules, PremiumIndex, funding_rate, payments,
                                   premium)

RULES = FundingRules()


def test_a_premium_sample_counts_only_a_book_through_the_index():
    assert premium(40_000, 40_040, 40_050) == 100_000                 # bid 0.1% above: +0.1%
    assert premium(40_000, 39_950, 39_960) == -100_000                # ask 0.1% below: -0.1%
    assert premium(40_000, 39_990, 40_010) == 0                       # the index inside the spread
    assert premium(40_000, None, None) == 0
    assert premium(30_000, 30_001, None) == 3_333                     # 1/30,000 = 0.00333..%, toward zero
    assert premium(30_000, None, 29_999) == -3_333


def test_the_premium_index_weighs_later_samples_more_by_hand():
    index = PremiumIndex(max_samples=10)
    for sample in (100, 200, 300, 400):
        assert index.add(sample)
    # (1 x 100 + 2 x 200 + 3 x 300 + 4 x 400) / (1 + 2 + 3 + 4) = 3,000 / 10
    assert index.average() == 300
    index.reset()
    for sample in (0, 0, 0, 1_000):                                   # a burst at the end counts 4/10
        index.add(sample)
    assert index.average() == 400
    index.reset()
    for sample in (-5, -5, -6):
        index.add(sample)
    assert index.average() == -5                                      # -33/6 = -5.5, toward zero


def test_the_premium_index_holds_at_most_its_samples():
    index = PremiumIndex(max_samples=2)
    assert index.add(1) and index.add(2) and not index.add(3)
    assert index.samples == [1, 2]


def test_the_rate_is_premium_plus_the_clamped_interest_then_capped():
    assert funding_rate(0, RULES) == 10_000                           # no premium: the interest, 0.01%
    assert funding_rate(30_000, RULES) == 10_000                      # within the clamp: the interest
    assert funding_rate(100_000, RULES) == 50_000                     # 0.1% - 0.05%
    assert funding_rate(-100_000, RULES) == -50_000
    assert funding_rate(10 * FUNDING_ONE // 100, RULES) == RULES.cap  # 10%: capped at 0.75%
    assert funding_rate(-10 * FUNDING_ONE // 100, RULES) == -RULES.cap


def test_payments_by_hand_longs_pay_shorts_when_positive():
    # 10 lots long at 40,000 ticks x K 1,000 x 0.01% = 40,000; shorts of 3 and 7 get 12,000 and 28,000
    assert payments([(1, 10), (2, -3), (3, -7)], 40_000, 1_000, 10_000) == {1: 40_000, 2: -12_000, 3: -28_000}
    assert payments([(1, 10), (2, -10)], 40_000, 1_000, -10_000) == {2: 40_000, 1: -40_000}
    assert payments([(1, 10), (2, -10)], 40_000, 1_000, 0) == {}


def test_rounding_goes_against_the_payers_and_the_units_left_by_largest_remainder():
    # each long owes 1 x 1 x 1 x 1 / 10^8, rounded up to 1: 3 paid; shorts of 1 and 2 share 3
    assert payments([(1, 1), (2, 1), (3, 1), (4, -1), (5, -2)], 1, 1, 1) == {1: 1, 2: 1, 3: 1, 4: -1, 5: -2}
    # one long of 3 owes 3 / 10^8, rounded up to 1; three shorts of 1 share it: a tie, to the lowest id
    assert payments([(9, 3), (6, -1), (5, -1), (4, -1)], 1, 1, 1) == {9: 1, 4: -1, 5: 0, 6: 0}
    # 10 owed (9.99 rounded up), shared 1:2:2 -> 2, 4, 4 exactly
    assert payments([(9, 999), (4, -199), (5, -400), (6, -400)], 1, 1, 1_000_000) == {9: 10, 4: -2, 5: -4, 6: -4}
    # 7 owed shared 1:1:1 -> 2 each, the unit left to the largest remainder (all equal: the lowest id)
    assert payments([(9, 700), (4, -233), (5, -233), (6, -234)], 1, 1, 1_000_000) == {9: 7, 4: -2, 5: -2, 6: -3}


def test_payers_without_receivers_are_a_broken_invariant():
    with pytest.raises(ValueError):
        payments([(1, 5)], 100, 1, 10_000)


balanced = st.lists(st.integers(-1_000, 1_000).filter(bool), min_size=1, max_size=40)


@given(balanced, st.integers(1, 10**7), st.integers(1, 1_000), st.integers(-RULES.cap, RULES.cap))
def test_payments_sum_to_zero_payers_round_up_and_receivers_get_at_least_their_floor(sizes, mark, k, rate):
    positions = [(i, lots) for i, lots in enumerate(sizes, 1)] + [(0, -sum(sizes))]   # open interest balances
    paid = payments(positions, mark, k, rate)
    assert sum(paid.values()) == 0
    for account, lots in positions:
        exact = Fraction(lots * mark * k * rate, FUNDING_ONE)          # > 0: owes
        amount = paid.get(account, 0)
        if exact > 0:
            assert amount == math.ceil(exact)
        else:
            assert -amount >= math.floor(-exact)                       # a receiver: at least its floor


def test_a_simulated_week_of_funding_sums_to_zero_across_accounts():
    """21 intervals of 8 h, positions traded between them, premiums sampled every 5 s."""
    rng = random.Random(14)
    lots = {account: 0 for account in range(1, 41)}
    totals = {account: 0 for account in lots}
    index = PremiumIndex(RULES.max_samples)
    for interval in range(21):
        for _ in range(200):                                          # trades between two accounts
            buyer, seller = rng.sample(sorted(lots), 2)
            size = rng.randint(1, 50)
            lots[buyer] += size
            lots[seller] -= size
        for _ in range(5_760):
            index.add(rng.randint(-60_000, 80_000))
        rate = funding_rate(index.average(), RULES)
        index.reset()
        for account, amount in payments(sorted(lots.items()), rng.randint(350_000, 450_000), 100, rate).items():
            totals[account] += amount
    assert sum(lots.values()) == 0
    assert sum(totals.values()) == 0 and any(totals.values())
