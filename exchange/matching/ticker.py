"""A market's rolling 24-hour statistics (issue 18: ``GET /api/v3/ticker/24hr``).

Trades are summed into one bucket per minute of their market time (``Fill.ts_ns``): open,
high, low, close, base volume, quote volume, count, first and last trade id. The window
asked for at ``now_ns`` is every bucket from the minute ``WINDOW_MINUTES`` minutes before
now's to now's, so, as with Binance's rolling windows, it opens on a minute and is up to
59.999 s wider than 24 hours. The close of the newest trade before the
window is kept as ``prev_close`` when its bucket leaves.

Pure: the caller gives the time; the market actor keeps one per market and its snapshot
carries the buckets.
"""
from __future__ import annotations

from collections import deque

from exchange.core.money import mul_div_floor

NS_PER_MINUTE = 60 * 10**9
WINDOW_MINUTES = 24 * 60
OPEN, HIGH, LOW, CLOSE, VOLUME, QUOTE, COUNT, FIRST, LAST = range(1, 10)     # a bucket's fields after its minute


class RollingTicker:
    def __init__(self, base_scale: int):
        self.unit = 10 ** base_scale            # a trade's quote: price * quantity / unit, floored (quote minor)
        self.buckets: deque = deque()           # [minute, open, high, low, close, volume, quote, count, first, last]
        self.prev_close = 0                     # the close of the newest trade that left the window

    def record(self, ts_ns: int, trade_id: int, price: int, quantity: int) -> None:
        minute = ts_ns // NS_PER_MINUTE
        buckets = self.buckets
        quote = mul_div_floor(price, quantity, self.unit)
        if buckets and buckets[-1][0] >= minute:         # (market time never goes back; a tie joins the last)
            b = buckets[-1]
            b[HIGH], b[LOW], b[CLOSE] = max(b[HIGH], price), min(b[LOW], price), price
            b[VOLUME] += quantity
            b[QUOTE] += quote
            b[COUNT] += 1
            b[LAST] = trade_id
        else:
            buckets.append([minute, price, price, price, price, quantity, quote, 1, trade_id, trade_id])
        self._forget(minute)

    def _forget(self, minute: int) -> None:
        oldest = minute - WINDOW_MINUTES
        buckets = self.buckets
        while buckets and buckets[0][0] < oldest:
            self.prev_close = buckets.popleft()[CLOSE]

    def window(self, now_ns: int) -> dict:
        """The statistics of the 24 hours to ``now_ns`` (minor units; zeros and ids -1 with no trade)."""
        now_minute = now_ns // NS_PER_MINUTE
        oldest = now_minute - WINDOW_MINUTES
        inside = [b for b in self.buckets if oldest <= b[0] <= now_minute]
        before = [b for b in self.buckets if b[0] < oldest]
        prev_close = before[-1][CLOSE] if before else self.prev_close
        out = {"open_ns": oldest * NS_PER_MINUTE, "close_ns": now_ns, "prev_close": prev_close}
        if not inside:
            return {**out, "open": 0, "high": 0, "low": 0, "close": 0, "volume": 0, "quote_volume": 0, "count": 0,
                    "first_id": -1, "last_id": -1}
        return {**out, "open": inside[0][OPEN], "high": max(b[HIGH] for b in inside),
                "low": min(b[LOW] for b in inside), "close": inside[-1][CLOSE],
                "volume": sum(b[VOLUME] for b in inside), "quote_volume": sum(b[QUOTE] for b in inside),
                "count": sum(b[COUNT] for b in inside), "first_id": inside[0][FIRST], "last_id": inside[-1][LAST]}

    def state(self) -> dict:
        return {"buckets": list(self.buckets), "prev_close": self.prev_close}

    def restore(self, state: dict) -> None:
        self.buckets, self.prev_close = deque(state["buckets"]), state["prev_close"]
