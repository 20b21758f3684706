"""exchange.matching.market: one market's matching, fees, sequence numbers and refusals,
driven with shard requests (ticks and lots) and checked in public units."""
from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given, settings, strategies as st

from exchange.matching.market import MarketEngine
from exchange.messages.records import (AmendRequest, CancelRequest, Deposit, Fill, OrderAmended, OrderBooked, OrderClosed,
                               RequestRejected, SubmitOrder)
from exchange.core.reasons import CloseReason, Reason
from tests.exchange.support import (BTC_USDT, BUY, CONFIG, EXPIRE_TAKER, FOK, GTC, IOC, POST_ONLY,
                                    SELL)

SPEC = CONFIG.markets[BTC_USDT]
TICK, LOT = SPEC.tick_minor, SPEC.lot_minor


def submit(order_id, account, side, price, qty, *, tif=GTC, is_market=False, stp=EXPIRE_TAKER,
           maker_ppm=1000, taker_ppm=1000, ts_ns=0) -> SubmitOrder:
    return SubmitOrder(order_id, account, side, price, qty, tif, is_market=is_market, stp=stp, maker_ppm=maker_ppm,
                       taker_ppm=taker_ppm, ts_ns=ts_ns)


def public_notional(price_ticks: int, lots: int) -> int:
    value = Fraction(price_ticks * TICK * lots * LOT, 10**SPEC.base.scale)
    assert value.denominator == 1
    return int(value)


def seqs(events) -> list[int]:
    return [e.seq for e in events]


@pytest.fixture
def market() -> MarketEngine:
    return MarketEngine(SPEC)


def test_submit_with_empty_book_rests_in_public_units(market):
    events = market.handle(submit(1, 10, BUY, 5_000_000, 3, ts_ns=11))
    assert events == [OrderBooked(BTC_USDT, 1, 11, 1, 10, 5_000_000 * TICK, 3 * LOT)]
    assert market.book.best_bid() == 5_000_000


@pytest.mark.parametrize("maker_ppm,taker_ppm", [(1000, 1000), (800, 900), (-100, 500), (0, 0), (-500, 500)])
def test_submit_with_cross_charges_taker_ceil_and_maker_rounded_against_payer(market, maker_ppm, taker_ppm):
    price, lots = 5_000_001, 3                         # notional 15,000,003 quote minor: fees are fractional
    market.handle(submit(1, 10, SELL, price, lots, maker_ppm=maker_ppm))
    events = market.handle(submit(2, 20, BUY, price + 100, lots, taker_ppm=taker_ppm, ts_ns=77))
    fill = events[0]
    value = public_notional(price, lots)
    assert type(fill) is Fill
    assert (fill.price, fill.quantity, fill.ts_ns) == (price * TICK, lots * LOT, 77)
    assert fill.taker_fee == math.ceil(Fraction(value * taker_ppm, 10**6))
    if maker_ppm >= 0:
        assert fill.maker_fee == math.ceil(Fraction(value * maker_ppm, 10**6))
    else:                                             # a rebate: the exchange pays, so it is floored
        assert fill.maker_fee == -math.floor(Fraction(value * -maker_ppm, 10**6))
    assert fill.taker_fee + fill.maker_fee >= 0


@settings(max_examples=200, deadline=None, database=None)
@given(st.integers(1, 10**8), st.integers(1, 10**6), st.integers(0, 100_000), st.data())
def test_fill_fees_with_any_rates_round_against_the_payer(price, lots, taker_ppm, data):
    maker_ppm = data.draw(st.integers(-taker_ppm, taker_ppm))
    market = MarketEngine(SPEC)
    market.handle(submit(1, 10, BUY, price, lots, maker_ppm=maker_ppm))
    fill = market.handle(submit(2, 20, SELL, price, lots, taker_ppm=taker_ppm))[0]
    exact_taker = Fraction(public_notional(price, lots) * taker_ppm, 10**6)
    exact_maker = Fraction(public_notional(price, lots) * maker_ppm, 10**6)
    assert exact_taker <= fill.taker_fee < exact_taker + 1          # the taker pays at least the exact fee
    assert exact_maker <= fill.maker_fee < exact_maker + 1          # a rebate is at most the exact rebate
    assert fill.taker_fee + fill.maker_fee >= 0                     # the fee account never pays out net


def test_submit_with_partial_cross_fills_then_rests_remainder(market):
    market.handle(submit(1, 10, SELL, 100, 2))
    market.handle(submit(2, 11, SELL, 101, 2))
    events = market.handle(submit(3, 20, BUY, 101, 5))
    assert [type(e) for e in events] == [Fill, OrderClosed, Fill, OrderClosed, OrderBooked]
    assert [(e.maker_order_id, e.price // TICK, e.quantity // LOT) for e in events if type(e) is Fill] == \
        [(1, 100, 2), (2, 101, 2)]
    assert [e.order_id for e in events if type(e) is OrderClosed] == [1, 2]
    assert (events[-1].order_id, events[-1].remaining) == (3, 1 * LOT)
    assert (market.last_price, market.trade_count) == (101, 2)


def test_events_with_mixed_requests_are_numbered_consecutively(market):
    out = []
    out += market.handle(submit(1, 10, SELL, 100, 2))
    out += market.handle(submit(2, 20, BUY, 100, 1))
    out += market.handle(CancelRequest("c", 99, 20, 0))
    out += market.handle(submit(3, 20, BUY, 90, 1, tif=FOK))
    out += market.handle(CancelRequest("c2", 1, 10, 0))
    assert seqs(out) == list(range(1, len(out) + 1))
    assert market.seq == len(out)


def test_submit_with_fok_short_of_liquidity_rejects_and_leaves_book(market):
    market.handle(submit(1, 10, SELL, 100, 2))
    before = market.book.canonical()
    events = market.handle(submit(2, 20, BUY, 100, 3, tif=FOK))
    assert events == [OrderClosed(BTC_USDT, 2, 0, 2, 20, int(CloseReason.REJECTED), 3 * LOT,
                                  int(Reason.FOK_CANNOT_FILL))]
    assert market.book.canonical() == before


def test_submit_with_post_only_crossing_rejects(market):
    market.handle(submit(1, 10, SELL, 100, 2))
    events = market.handle(submit(2, 20, BUY, 100, 1, tif=POST_ONLY))
    assert [(e.reason, e.reject_reason) for e in events] == [(int(CloseReason.REJECTED),
                                                               int(Reason.POST_ONLY_WOULD_TAKE))]


def test_submit_with_market_order_and_empty_opposite_side_rejects_no_liquidity(market):
    market.handle(submit(1, 10, BUY, 100, 2))           # same side only
    events = market.handle(submit(2, 20, BUY, 200, 1, is_market=True))
    assert [e.reject_reason for e in events] == [int(Reason.NO_LIQUIDITY)]


@pytest.mark.parametrize("tif,is_market", [(IOC, False), (GTC, True), (IOC, True)])
def test_submit_with_ioc_or_market_remainder_expires_instead_of_resting(market, tif, is_market):
    market.handle(submit(1, 10, SELL, 100, 2))
    market.handle(submit(2, 10, SELL, 105, 2))             # beyond the taker's limit of 101
    events = market.handle(submit(3, 20, BUY, 101, 5, tif=tif, is_market=is_market))
    closed = events[-1]
    assert (type(closed), closed.order_id, closed.reason, closed.remaining) == \
        (OrderClosed, 3, int(CloseReason.EXPIRED_IOC), 3 * LOT)
    assert 3 not in market.book.orders and market.book.best_ask() == 105


def test_submit_with_market_fok_and_enough_liquidity_fills_completely(market):
    market.handle(submit(1, 10, SELL, 100, 2))
    market.handle(submit(2, 10, SELL, 101, 2))
    events = market.handle(submit(3, 20, BUY, 101, 3, tif=FOK, is_market=True))
    assert sum(e.quantity for e in events if type(e) is Fill) == 3 * LOT
    assert events[-1].reason == int(CloseReason.FILLED)


def test_cancel_with_unknown_or_foreign_order_is_refused(market):
    market.handle(submit(1, 10, SELL, 100, 2))
    assert market.handle(CancelRequest("a", 5, 10, 7)) == [
        RequestRejected(BTC_USDT, 2, 7, "a", 5, 10, int(Reason.ORDER_NOT_FOUND))]
    assert market.handle(CancelRequest("b", 1, 11, 8)) == [
        RequestRejected(BTC_USDT, 3, 8, "b", 1, 11, int(Reason.NOT_OWNER))]
    assert 1 in market.book.orders


def test_cancel_with_own_order_closes_it_with_open_quantity(market):
    market.handle(submit(1, 10, SELL, 100, 5))
    market.handle(submit(2, 20, BUY, 100, 2))
    assert market.handle(CancelRequest("a", 1, 10, 9)) == [
        OrderClosed(BTC_USDT, 4, 9, 1, 10, int(CloseReason.CANCELLED), 3 * LOT)]
    assert market.book.orders == {}


def amend(order_id, account, price=0, qty=0, taker_ppm=1000, ts_ns=0) -> AmendRequest:
    return AmendRequest("am", order_id, account, price, qty, taker_ppm, ts_ns)


def test_amend_with_lower_total_at_same_price_keeps_priority(market):
    market.handle(submit(1, 10, SELL, 100, 5))
    market.handle(submit(2, 11, SELL, 100, 5))
    events = market.handle(amend(1, 10, qty=3))
    assert [(type(e), e.kept_priority, e.remaining) for e in events] == [(OrderAmended, True, 3 * LOT)]
    fills = [e for e in market.handle(submit(3, 20, BUY, 100, 4)) if type(e) is Fill]
    assert [(f.maker_order_id, f.quantity) for f in fills] == [(1, 3 * LOT), (2, 1 * LOT)]


@pytest.mark.parametrize("price,qty", [(0, 6), (101, 0), (101, 3)])
def test_amend_with_price_change_or_increase_loses_priority(market, price, qty):
    market.handle(submit(1, 10, SELL, 100, 5))
    market.handle(submit(2, 11, SELL, 100, 5))
    events = market.handle(amend(1, 10, price=price, qty=qty))
    assert type(events[0]) is OrderAmended and events[0].kept_priority is False
    assert type(events[-1]) is OrderBooked
    if price == 0:      # same level, now behind order 2
        assert [o.order_id for o in market.book.asks.levels[100].queue if o.remaining] == [2, 1]
    else:
        assert market.book.orders[1].price == 101 and market.book.best_ask() == 100


def test_amend_with_crossing_price_trades_as_taker_with_new_fee_rate(market):
    market.handle(submit(1, 10, SELL, 100, 2, maker_ppm=0))
    market.handle(submit(2, 20, BUY, 90, 3, maker_ppm=0))
    events = market.handle(amend(2, 20, price=100, taker_ppm=2000, ts_ns=5))
    fill = next(e for e in events if type(e) is Fill)
    assert (fill.taker_order_id, fill.maker_order_id, fill.quantity) == (2, 1, 2 * LOT)
    assert fill.taker_fee == math.ceil(Fraction(public_notional(100, 2) * 2000, 10**6))
    assert market.book.orders[2].remaining == 1 and market.book.orders[2].total == 3


def test_amend_with_crossing_price_into_own_order_expires_the_amended_order(market):
    market.handle(submit(1, 10, SELL, 100, 2))
    market.handle(submit(2, 10, BUY, 90, 3))
    events = market.handle(amend(2, 10, price=100))
    assert type(events[-1]) is OrderClosed and events[-1].reason == int(CloseReason.EXPIRED_STP)
    assert list(market.book.orders) == [1]


@pytest.mark.parametrize("price,qty,reason", [
    (0, 0, Reason.AMEND_NO_CHANGE),
    (100, 5, Reason.AMEND_NO_CHANGE),
    (0, 2, Reason.AMEND_BELOW_FILLED),      # 2 of 5 already filled
    (0, 1, Reason.AMEND_BELOW_FILLED),
])
def test_amend_with_no_change_or_total_at_or_below_filled_is_refused(market, price, qty, reason):
    market.handle(submit(1, 10, SELL, 100, 5))
    market.handle(submit(2, 20, BUY, 100, 2))
    before = market.book.canonical()
    events = market.handle(amend(1, 10, price=price, qty=qty))
    assert [(type(e), e.reason) for e in events] == [(RequestRejected, int(reason))]
    assert market.book.canonical() == before


def test_amend_with_post_only_order_moved_across_is_refused(market):
    market.handle(submit(1, 10, SELL, 100, 5))
    market.handle(submit(2, 20, BUY, 95, 2, tif=POST_ONLY))
    events = market.handle(amend(2, 20, price=100))
    assert [e.reason for e in events] == [int(Reason.POST_ONLY_WOULD_TAKE)]
    assert market.book.orders[2].price == 95


def test_handle_with_client_command_raises_type_error(market):
    with pytest.raises(TypeError):
        market.handle(Deposit("r", 0, 1, "BTC", 1))


def test_amend_with_price_change_stamps_every_event_with_the_amend_ts_ns(market):
    market.handle(submit(1, 10, BUY, 100, 2, ts_ns=1))
    market.handle(submit(2, 20, SELL, 105, 4, ts_ns=2))
    events = market.handle(amend(2, 20, price=100, taker_ppm=1000, ts_ns=9))   # crosses order 1, rests the rest
    assert [type(e) for e in events] == [OrderAmended, Fill, OrderClosed, OrderBooked]
    assert {e.ts_ns for e in events} == {9}
    events = market.handle(amend(2, 20, qty=3, ts_ns=10))                      # smaller at the same price
    assert [(type(e), e.ts_ns, e.kept_priority) for e in events] == [(OrderAmended, 10, True)]
    assert [e.ts_ns for e in market.handle(amend(2, 20, qty=3, ts_ns=12))] == [12]    # refused: no change
