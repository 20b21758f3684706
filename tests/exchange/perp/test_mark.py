"""The mark price (rulebook 5.2.2.5): a median that one print cannot move, the basis
average over its window, the funding carry, the divergence band."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from exchange.perp.funding import FUNDING_ONE
from exchange.perp.mark import BasisAverage, diverged, funding_carried, mark_price

HOUR_NS = 3600 * 10**9


def test_the_funding_carry_by_hand():
    # 0.01% over the whole interval on 40,000: +4; half the interval left: +2; negative: toward the index
    assert funding_carried(40_000, 10_000, 8 * HOUR_NS, 8 * HOUR_NS) == 40_004
    assert funding_carried(40_000, 10_000, 4 * HOUR_NS, 8 * HOUR_NS) == 40_002
    assert funding_carried(40_000, -12_345, 8 * HOUR_NS, 8 * HOUR_NS) == 39_996   # -4.938 toward zero
    assert funding_carried(40_000, FUNDING_ONE, 0, 8 * HOUR_NS) == 40_000


def test_the_mark_is_the_median_and_a_spike_in_our_book_does_not_move_it():
    assert mark_price(40_000, 40_004, 10, last_trade=40_006) == 40_006
    assert mark_price(40_000, 40_004, 10, last_trade=48_000) == 40_010            # a spike: ignored
    assert mark_price(40_000, 40_004, 10, last_trade=1) == 40_004                 # a crash print: ignored
    assert mark_price(40_000, 40_004, 10, last_trade=None) == 40_004              # no trade: the index is third


@given(st.integers(1, 10**9), st.integers(-10**6, 10**6), st.integers(-10**6, 10**6), st.integers(1, 10**9))
def test_the_mark_is_always_one_of_its_three_and_between_the_others(index, carry, basis, trade):
    candidates = sorted([index + carry, index + basis, trade])
    assert mark_price(index, index + carry, basis, trade) == candidates[1]


def test_the_basis_average_covers_its_window_only():
    average = BasisAverage(window_ns=10)
    average.add(0, 40_010, 40_000)
    average.add(5, 40_030, 40_000)
    assert average.average(5) == 20
    assert average.average(10) == 30                 # the sample at 0 left the window (0 <= 10 - 10)
    assert average.average(15) == 0                  # none left
    average.add(20, 39_990, 40_000)
    average.add(21, 39_995, 40_000)
    assert average.average(21) == -7                 # -15 / 2, toward zero
    again = BasisAverage.from_plain(average.to_plain())
    assert again.average(21) == -7 and again.samples == average.samples


def test_the_basis_average_keeps_at_most_its_samples_and_refuses_time_going_back():
    average = BasisAverage(window_ns=10**12, max_samples=2)
    for ts, mid in ((1, 10), (2, 20), (3, 30)):
        average.add(ts, mid, 0)
    assert list(average.samples) == [(2, 20), (3, 30)] and average.average(3) == 25
    with pytest.raises(ValueError):
        average.add(2, 0, 0)


def test_divergence_beyond_the_band():
    assert not diverged(40_400, 40_000, 10_000)      # exactly 1%: inside
    assert diverged(40_401, 40_000, 10_000) and diverged(39_599, 40_000, 10_000)
