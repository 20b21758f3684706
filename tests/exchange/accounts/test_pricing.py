"""exchange.accounts.pricing: one rule for what a command is priced at (Core v2 §1),
used by the Engine and the shard actor alike."""
from __future__ import annotations

from exchange.accounts.pricing import NO_PRICES, PriceContext, context_from, price_context
from exchange.messages.records import Borrow, Deposit, PlaceMarginOrder, PlaceOrder, Withdraw
from exchange.pricing.index import index_ticks
from tests.exchange.support import ALICE, BTC_USDT, BUY, CONFIG, LIMIT, MARKET, SELL

PRICES = (5_000_000_000_000, 300_000_000_000, 1_000_000)


def tops(bid, ask):
    return lambda market: (bid, ask)


def ticks(index) -> dict:
    return {} if index is None else {BTC_USDT: index}


def market_order(side: int, price: int = 0) -> PlaceOrder:
    return PlaceOrder("m", 0, ALICE, BTC_USDT, side, MARKET, price, 10_000, 2, "", 0)


def test_a_market_order_is_protected_from_the_best_opposite_price_then_the_index():
    assert price_context(market_order(BUY), tops(100, 200), ticks(150), PRICES).reference_ticks == 200
    assert price_context(market_order(SELL), tops(100, 200), ticks(150), PRICES).reference_ticks == 100
    assert price_context(market_order(BUY), tops(100, None), ticks(150), PRICES).reference_ticks == 150   # empty side: index
    assert price_context(market_order(BUY), tops(None, None), ticks(None), PRICES) == NO_PRICES


def test_only_market_orders_without_a_protection_price_get_a_reference():
    assert price_context(market_order(BUY, price=5_000_000), tops(100, 200), ticks(150), PRICES) == NO_PRICES
    limit = PlaceOrder("l", 0, ALICE, BTC_USDT, BUY, LIMIT, 5_000_000, 10_000, 1, "", 0)
    assert price_context(limit, tops(100, 200), ticks(None), PRICES) == NO_PRICES


def test_a_limit_order_carries_its_market_index_for_the_price_band():
    limit = PlaceOrder("l", 0, ALICE, BTC_USDT, BUY, LIMIT, 5_000_000, 10_000, 1, "", 0)
    assert price_context(limit, tops(100, 200), ticks(150), PRICES) == PriceContext(None, (), 150)
    assert context_from([None, [], 150]) == PriceContext(None, (), 150)


def test_margin_commands_and_withdrawals_are_valued_at_index_prices_others_are_not():
    for command in (Withdraw("w", 0, ALICE, "USDT", 1), Borrow("b", 0, ALICE, "USDT", 1, "")):
        assert price_context(command, tops(None, None), ticks(None), list(PRICES)) == PriceContext(None, PRICES)
    margin = PlaceMarginOrder("p", 0, ALICE, BTC_USDT, BUY, MARKET, 0, 10_000, 2, False, True, True, "")
    assert price_context(margin, tops(None, 200), ticks(None), PRICES) == PriceContext(200, PRICES)
    assert price_context(Deposit("d", 0, ALICE, "USDT", 1), tops(1, 2), ticks(3), PRICES) == NO_PRICES


def test_a_journaled_context_comes_back_equal():
    context = PriceContext(7, PRICES)
    assert context_from([*context]) == context and context_from(None) == NO_PRICES
    assert context_from([None, list(PRICES)]) == PriceContext(None, PRICES)


def test_index_ticks_price_markets_quoted_in_the_index_quote_asset():
    ticks = index_ticks(CONFIG.market_list, "USDT", {"BTC": 50_000_000_000, "ETH": 0})
    spec = CONFIG.markets[BTC_USDT]
    assert ticks == {BTC_USDT: 50_000_000_000 // spec.tick_minor}
    assert index_ticks(CONFIG.market_list, "BTC", {"BTC": 1}) == {}
