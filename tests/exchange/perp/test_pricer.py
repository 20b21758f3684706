"""A perpetual market's price state: intervals close at funding times whatever the call
order, a sample at a funding time opens the next interval, unpriced intervals charge nothing."""
from __future__ import annotations

from exchange.perp.funding import FundingRules
from exchange.perp.pricer import PerpPricer

RULES = FundingRules(interval_ns=100, interest=10_000, clamp=50_000, cap=750_000, max_samples=1_000)


def test_intervals_close_at_their_funding_times_and_the_rate_carries_into_the_mark():
    pricer = PerpPricer(basis_window_ns=1_000, rules=RULES)
    assert pricer.update(10, 400_000, 400_800, 400_810, None) == 400_000      # no carry yet; last trade absent
    assert pricer.next_funding_ns == 100 and not pricer.due(99)
    pricer.update(50, 400_000, 400_800, 400_810, None)
    pricer.update(100, 400_000, 399_990, 400_010, None)     # at the funding time: the next interval's first
    assert pricer.due(100) and pricer.closed == [(100, 200_000)]
    assert pricer.settle_funding() == (100, 150_000)        # 0.2% premium - 0.05% clamp
    assert not pricer.due(150)
    # the rate now carries: index x 0.15% x (time left 50 of 100) = 300 ticks; basis +402.5 -> 402
    assert pricer.update(150, 400_000, 399_990, 400_010, 400_000) == 400_300


def test_an_unpriced_stretch_charges_no_funding():
    pricer = PerpPricer(basis_window_ns=1_000, rules=RULES)
    pricer.update(10, 400_000, None, None, None)
    assert pricer.due(10_000) and pricer.closed == [(100, 0)]     # the one priced interval
    pricer.settle_funding()
    assert not pricer.due(10_000) and pricer.next_funding_ns == 10_100
