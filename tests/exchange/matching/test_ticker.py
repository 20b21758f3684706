"""The rolling 24-hour ticker (``exchange.matching.ticker``) against a reference that keeps
every trade and sums the ones inside the window (from the minute 1,440 minutes before
now's to now), for any trades and any time asked; and through a snapshot."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from exchange.matching.ticker import NS_PER_MINUTE, WINDOW_MINUTES, RollingTicker

HOUR = 60 * NS_PER_MINUTE
trades = st.lists(st.tuples(st.integers(0, 30 * HOUR), st.integers(1, 10**6), st.integers(1, 10**9)),
                  max_size=60)


def reference(kept: list, now_ns: int) -> dict:
    start = (now_ns // NS_PER_MINUTE - WINDOW_MINUTES) * NS_PER_MINUTE
    inside = [t for t in kept if start <= t[0] <= now_ns]
    before = [t for t in kept if t[0] < start]
    out = {"open_ns": start, "close_ns": now_ns, "prev_close": before[-1][2] if before else 0}
    if not inside:
        return {**out, "open": 0, "high": 0, "low": 0, "close": 0, "volume": 0, "quote_volume": 0, "count": 0,
                "first_id": -1, "last_id": -1}
    prices = [t[2] for t in inside]
    return {**out, "open": prices[0], "high": max(prices), "low": min(prices), "close": prices[-1],
            "volume": sum(t[3] for t in inside), "quote_volume": sum(t[2] * t[3] // 10**8 for t in inside),
            "count": len(inside), "first_id": inside[0][1], "last_id": inside[-1][1]}


@settings(max_examples=300, deadline=None)
@given(trades, st.integers(0, 2 * HOUR))
def test_the_window_is_the_sum_of_the_trades_inside_it(drawn, after):
    kept, ticker = [], RollingTicker(8)
    for seq, (ts, quantity, price) in enumerate(sorted(drawn), 1):
        ticker.record(ts, seq, price, quantity)
        kept.append((ts, seq, price, quantity))
    last = kept[-1][0] if kept else 0
    for now in (last, last + after):
        assert ticker.window(now) == reference(kept, now)
    again = RollingTicker(8)
    again.restore(ticker.state())
    assert again.window(last + after) == ticker.window(last + after)
    assert len(ticker.buckets) <= WINDOW_MINUTES + 1


def test_a_quiet_day_shows_zeros_and_the_last_close_before_it():
    ticker = RollingTicker(8)
    ticker.record(0, 1, 50_000, 10**8)
    later = ticker.window(25 * HOUR)
    assert later["count"] == 0 and later["prev_close"] == 50_000 and later["first_id"] == -1
