"""Funding: premium samples, the weighted premium index, the rate's clamp and cap, and
payments that sum to zero (over a simulated week too)."""
from __future__ import annotations

import random
from fractions import Fraction

from hypothesis import given, strategies as st

from exchange.perp.funding import (FUNDING_ONE, FundingRules, PremiumIndex, funding_rate, payments, per_lot,
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
    # one lot at 40,000 ticks x K 1,000 x 0.01% = 4,000: 10 long lots pay 40,000; shorts of 3 and 7 get theirs
    assert payments([(1, 10), (2, -3), (3, -7)], 40_000, 1_000, 10_000) == {1: 40_000, 2: -12_000, 3: -28_000}
    assert payments([(1, 10), (2, -10)], 40_000, 1_000, -10_000) == {2: 40_000, 1: -40_000}
    assert payments([(1, 10), (2, -10)], 40_000, 1_000, 0) == {}


def test_a_lot_s_funding_is_rounded_up_against_the_payers_and_received_whole():
    assert per_lot(1, 1, 1) == 1                                     # 10^-8 of a unit: one unit
    assert per_lot(40_000, 100, 12_345) == 494                      # 493.8
    assert payments([(9, 3), (4, -1), (5, -2)], 40_000, 100, 12_345) == {9: 1_482, 4: -494, 5: -988}


balanced = st.lists(st.integers(-1_000, 1_000).filter(bool), min_size=1, max_size=40)


@given(balanced, st.integers(1, 10**7), st.integers(1, 1_000), st.integers(-RULES.cap, RULES.cap))
def test_payments_sum_to_zero_and_each_is_within_one_unit_a_lot_of_exact(sizes, mark, k, rate):
    positions = [(i, lots) for i, lots in enumerate(sizes, 1)] + [(0, -sum(sizes))]   # open interest balances
    paid = payments(positions, mark, k, rate)
    assert sum(paid.values()) == 0
    for account, lots in positions:
        exact = Fraction(lots * mark * k * rate, FUNDING_ONE)          # > 0: owes
        assert 0 <= abs(paid.get(account, 0)) - abs(exact) < max(abs(lots), 1)


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
