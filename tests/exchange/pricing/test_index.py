"""Index prices from component feeds: weighting, stale and outlier components."""
from __future__ import annotations

from hypothesis import given, strategies as st

from exchange.pricing.index import ComponentQuote, compute_index

SECOND = 1_000_000_000


def quote(source: str, price: int, weight: int = 1, ts_ns: int = 100 * SECOND) -> ComponentQuote:
    return ComponentQuote(source, price, weight, ts_ns)


def test_index_with_fresh_components_is_their_weighted_mean_rounded_down():
    index = compute_index("BTC", [quote("a", 100, 3), quote("b", 101, 1)], 100 * SECOND, 5 * SECOND, 300)
    assert index.price == (100 * 3 + 101) // 4 == 100
    assert index.used == ("a", "b") and index.dropped == ()


def test_index_with_stale_component_drops_it():
    quotes = [quote("a", 100), quote("b", 200, ts_ns=90 * SECOND)]
    index = compute_index("BTC", quotes, 100 * SECOND, 5 * SECOND, 300)
    assert (index.price, index.used, index.dropped) == (100, ("a",), ("b",))


def test_index_with_outlier_component_drops_it():
    quotes = [quote("a", 50_000), quote("b", 50_010), quote("c", 60_000)]
    index = compute_index("BTC", quotes, 100 * SECOND, 5 * SECOND, 300)
    assert index.dropped == ("c",) and index.price == 50_005


def test_index_with_no_usable_component_is_zero():
    index = compute_index("BTC", [quote("a", 100, ts_ns=0)], 100 * SECOND, 5 * SECOND, 300)
    assert index.price == 0 and index.dropped == ("a",)


@given(st.lists(st.tuples(st.integers(1, 10**12), st.integers(1, 100)), min_size=1, max_size=8))
def test_index_with_any_fresh_components_lies_within_the_used_prices(components):
    quotes = [quote(f"s{i}", p, w) for i, (p, w) in enumerate(components)]
    index = compute_index("X", quotes, 100 * SECOND, 5 * SECOND, 10_000)
    used = [q.price for q in quotes if q.source in index.used]
    assert used and min(used) <= index.price <= max(used)
