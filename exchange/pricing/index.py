"""Index prices: a weighted average of component feeds, robust to bad feeds.

A component is dropped when it is stale (older than ``stale_ns`` at the
computing time) or an outlier (further than ``outlier_bps`` from the median
of the fresh components). What remains is averaged by weight, rounding down to
the price unit. Pure: time comes in as ``now_ns``.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ComponentQuote:
    source: str
    price: int        # quote minor units per whole base unit
    weight: int       # any positive integer weight
    ts_ns: int


@dataclass(frozen=True, slots=True)
class IndexPrice:
    asset: str
    price: int        # 0 when no component is usable
    used: tuple[str, ...]
    dropped: tuple[str, ...]
    ts_ns: int


def compute_index(asset: str, quotes: list[ComponentQuote], now_ns: int, stale_ns: int,
                  outlier_bps: int) -> IndexPrice:
    """Combine component quotes into one index price (see module docstring)."""
    fresh = [q for q in quotes if now_ns - q.ts_ns <= stale_ns and q.price > 0 and q.weight > 0]
    dropped = [q.source for q in quotes if q not in fresh]
    if not fresh:
        return IndexPrice(asset, 0, (), tuple(sorted(dropped)), now_ns)
    prices = sorted(q.price for q in fresh)
    mid = len(prices) // 2
    median = prices[mid] if len(prices) % 2 else (prices[mid - 1] + prices[mid]) // 2
    used = []
    for q in fresh:
        if abs(q.price - median) * 10_000 > outlier_bps * median:
            dropped.append(q.source)
        else:
            used.append(q)
    total_weight = sum(q.weight for q in used)
    price = sum(q.price * q.weight for q in used) // total_weight
    return IndexPrice(asset, price, tuple(sorted(q.source for q in used)), tuple(sorted(dropped)), now_ns)


def index_ticks(markets, quote_asset: str, asset_prices: dict[str, int]) -> dict[str, int]:
    """Each market's index price in ticks (at least 1), for the markets quoted in the
    index's quote asset whose base has an index price: the reference a market order
    falls back to when the book's opposite side is empty."""
    ticks = {}
    for market in markets:
        price = asset_prices.get(market.base.name, 0)
        if market.quote.name == quote_asset and price:
            ticks[market.name] = max(1, price // market.tick_minor)
    return ticks
