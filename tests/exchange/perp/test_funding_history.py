"""A market's funding settlements (``exchange.perp.funding_history``): any window over any run
of settlements is the same window over a plain list (the reference) of the newest
``settlements_max``; a snapshot round trip; time only goes forward. (The market actor's
settlements against the ``FundingDue`` it sends: ``tests/actors/test_funding_history.py``.)"""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from exchange.perp.funding_history import FundingHistory, Settlement

times = st.lists(st.integers(1, 10**6), unique=True, max_size=60).map(sorted)
bounds = st.one_of(st.none(), st.integers(0, 10**6 + 1))


@settings(max_examples=200, deadline=None)
@given(times, st.integers(1, 40), bounds, bounds, st.integers(0, 50))
def test_any_window_is_the_reference_lists(ts, kept_max, start_ns, end_ns, limit):
    fundings = FundingHistory(kept_max)
    for t in ts:
        fundings.record(t, t % 7 - 3, t // 3)
    kept = [Settlement(t, t % 7 - 3, t // 3) for t in ts][-kept_max:]
    chosen = [s for s in kept if (start_ns is None or s.ts_ns >= start_ns) and (end_ns is None or s.ts_ns <= end_ns)]
    expected = [] if not limit else chosen[:limit] if start_ns is not None else chosen[-limit:]
    assert fundings.window(start_ns, end_ns, limit) == expected
    again = FundingHistory(kept_max)
    again.restore(fundings.state())
    assert list(again.settlements) == kept


def test_funding_times_only_go_forward():
    fundings = FundingHistory(3)
    fundings.record(10, 1, 1)
    with pytest.raises(AssertionError):
        fundings.record(10, 1, 1)
    with pytest.raises(ValueError):
        FundingHistory(0)
