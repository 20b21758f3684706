"""Engine order flow in public units: order types, time in force, self-trade
prevention, amend and cancel rules, holds and their release, replay protection."""
from __future__ import annotations

import pytest

from exchange.messages.records import OrderAccepted, OrderBooked, OrderClosed, OrderRejected
from exchange.matching.orders import StpMode
from exchange.core.reasons import CloseReason, Reason
from tests.exchange.support import (ALICE, BOB, BTC_USDT, BUY, CAROL, CONFIG, EXPIRE_BOTH, EXPIRE_MAKER,
                                    EXPIRE_TAKER, FOK, IOC, MAKER, MARKET, POST_ONLY, SELL, assert_rejected,
                                    btc, ceil_ppm, custom_config, fills_of, funded_harness, names, notional,
                                    snapshot, usdt)

REGULAR = CONFIG.fee_tiers["regular"]
SPEC = CONFIG.markets[BTC_USDT]
LOT = SPEC.lot_minor


def buy_hold(price: int, quantity: int, taker_ppm: int = REGULAR.taker_ppm) -> int:
    """The documented buy hold: per lot, notional plus the ceil'd taker fee at the limit."""
    per_lot = notional(BTC_USDT, price, LOT)
    return quantity // LOT * (per_lot + ceil_ppm(per_lot, taker_ppm))


def closed(events, order_id) -> OrderClosed:
    [event] = [e for e in events if type(e) is OrderClosed and e.order_id == order_id]
    return event


def fill_summary(events) -> list[tuple[int, int, int]]:
    return [(f.maker_order_id, f.price, f.quantity) for f in fills_of(events)]


# ---- limit orders --------------------------------------------------------------

def test_limit_buy_with_empty_book_rests_and_holds_notional_plus_worst_taker_fee(ex):
    price, qty = usdt("50000.01"), btc("0.0003")
    usdt_before = ex.available(BOB, "USDT")
    cmd = ex.place_cmd(BOB, BUY, price, qty, client_order_id="b1")
    events = ex.apply(cmd)
    order_id = events[0].order_id
    assert events == [OrderAccepted(cmd.request_id, cmd.ts_ns, order_id, BOB, BTC_USDT, BUY, price, qty, "b1"),
                      OrderBooked(BTC_USDT, events[1].seq, cmd.ts_ns, order_id, BOB, price, qty)]
    hold = buy_hold(price, qty)
    assert hold >= notional(BTC_USDT, price, qty) + ceil_ppm(notional(BTC_USDT, price, qty), REGULAR.taker_ppm)
    assert (ex.available(BOB, "USDT"), ex.held(BOB, "USDT")) == (usdt_before - hold, hold)
    assert ex.depth() == ([(price, qty, 1)], [])
    ex.engine.check_invariants()


def test_limit_sell_with_empty_book_rests_and_holds_base(ex):
    btc_before = ex.available(ALICE, "BTC")
    ex.rest(ALICE, SELL, usdt("50000"), btc("1.5"))
    assert (ex.available(ALICE, "BTC"), ex.held(ALICE, "BTC")) == (btc_before - btc("1.5"), btc("1.5"))
    assert ex.held(ALICE, "USDT") == 0


def test_limit_buy_with_better_ask_fills_at_maker_price_and_releases_difference(ex):
    ask, limit, qty = usdt("50000"), usdt("51000"), btc("0.5")
    start = {a: (ex.available(a, "USDT"), ex.available(a, "BTC")) for a in (ALICE, BOB)}
    maker_id = ex.rest(ALICE, SELL, ask, qty)
    events = ex.place(BOB, BUY, limit, qty)
    taker_id = events[0].order_id
    value = notional(BTC_USDT, ask, qty)
    taker_fee = maker_fee = ceil_ppm(value, REGULAR.taker_ppm)
    assert names(events) == ["OrderAccepted", "Fill", "OrderClosed", "OrderClosed"]
    fill = events[1]
    assert (fill.price, fill.quantity, fill.taker_order_id, fill.maker_order_id, fill.taker_side) == \
        (ask, qty, taker_id, maker_id, BUY)
    assert (fill.taker_fee, fill.maker_fee) == (taker_fee, ceil_ppm(value, REGULAR.maker_ppm))
    assert closed(events, maker_id).reason == closed(events, taker_id).reason == CloseReason.FILLED
    assert (ex.available(BOB, "USDT"), ex.held(BOB, "USDT")) == (start[BOB][0] - value - taker_fee, 0)
    assert ex.available(BOB, "BTC") == start[BOB][1] + qty
    assert (ex.available(ALICE, "USDT"), ex.held(ALICE, "BTC")) == (start[ALICE][0] + value - maker_fee, 0)
    assert ex.available(ALICE, "BTC") == start[ALICE][1] - qty
    assert ex.fee_account("USDT") == taker_fee + maker_fee
    assert ex.depth() == ([], [])
    ex.engine.check_invariants()


def test_limit_buy_with_several_makers_fills_by_price_then_time(ex):
    first = ex.rest(ALICE, SELL, usdt("50000"), btc("0.1"))
    second = ex.rest(CAROL, SELL, usdt("50000"), btc("0.1"))
    best = ex.rest(MAKER, SELL, usdt("49999"), btc("0.1"))
    events = ex.place(BOB, BUY, usdt("50000"), btc("0.25"))
    assert fill_summary(events) == [(best, usdt("49999"), btc("0.1")), (first, usdt("50000"), btc("0.1")),
                                    (second, usdt("50000"), btc("0.05"))]
    assert ex.queue(BTC_USDT, SELL) == [second]
    assert ex.depth()[1] == [(usdt("50000"), btc("0.05"), 1)]


def test_limit_buy_with_too_little_liquidity_rests_remainder_at_limit(ex):
    ex.rest(ALICE, SELL, usdt("50000"), btc("0.1"))
    usdt_before = ex.available(BOB, "USDT")
    events = ex.place(BOB, BUY, usdt("50010"), btc("0.3"))
    assert names(events) == ["OrderAccepted", "Fill", "OrderClosed", "OrderBooked"]
    assert (events[-1].price, events[-1].remaining) == (usdt("50010"), btc("0.2"))
    value = notional(BTC_USDT, usdt("50000"), btc("0.1"))
    remaining_hold = buy_hold(usdt("50010"), btc("0.2"))
    assert ex.held(BOB, "USDT") == remaining_hold
    assert ex.available(BOB, "USDT") == usdt_before - value - ceil_ppm(value, REGULAR.taker_ppm) - remaining_hold
    assert ex.depth() == ([(usdt("50010"), btc("0.2"), 1)], [])


# ---- market orders ---------------------------------------------------------------

def ladder(ex, side, prices, qty=btc("0.1")):
    return [ex.rest(account, side, price, qty) for account, price in zip((ALICE, CAROL, MAKER), prices)]


def test_market_buy_with_protection_price_fills_up_to_it_and_expires_rest(ex):
    ids = ladder(ex, SELL, [usdt("50000"), usdt("50100"), usdt("50300")])
    usdt_before = ex.available(BOB, "USDT")
    events = ex.place(BOB, BUY, usdt("50200"), btc("0.5"), order_type=MARKET)
    assert fill_summary(events) == [(ids[0], usdt("50000"), btc("0.1")), (ids[1], usdt("50100"), btc("0.1"))]
    last = events[-1]
    assert (last.reason, last.remaining) == (CloseReason.EXPIRED_IOC, btc("0.3"))
    assert "OrderBooked" not in names(events)
    spent = sum(notional(BTC_USDT, p, q) + ceil_ppm(notional(BTC_USDT, p, q), REGULAR.taker_ppm)
                for _, p, q in fill_summary(events))
    assert (ex.available(BOB, "USDT"), ex.held(BOB, "USDT")) == (usdt_before - spent, 0)
    assert ex.queue(BTC_USDT, SELL) == [ids[2]]


def test_market_buy_with_zero_price_derives_protection_from_best_ask(ex):
    assert SPEC.max_slippage_bps == 500                        # the levels below straddle +5%
    ids = ladder(ex, SELL, [usdt("50000"), usdt("52000"), usdt("53000")])   # +4% and +6%
    events = ex.place(BOB, BUY, 0, btc("1"), order_type=MARKET)
    assert [f[0] for f in fill_summary(events)] == ids[:2]
    assert (events[-1].reason, events[-1].remaining) == (CloseReason.EXPIRED_IOC, btc("0.8"))
    assert ex.queue(BTC_USDT, SELL) == [ids[2]] and ex.held(BOB, "USDT") == 0
    assert events[0].price == usdt("52500")    # the accepted order reports its protection price


def test_market_sell_with_zero_price_derives_protection_from_best_bid(ex):
    ids = ladder(ex, BUY, [usdt("50000"), usdt("48000"), usdt("47000")])    # -4% and -6%
    btc_before = ex.available(BOB, "BTC")
    events = ex.place(BOB, SELL, 0, btc("1"), order_type=MARKET)
    assert [f[0] for f in fill_summary(events)] == ids[:2]
    assert ex.queue(BTC_USDT, BUY) == [ids[2]]
    assert (ex.available(BOB, "BTC"), ex.held(BOB, "BTC")) == (btc_before - btc("0.2"), 0)


def test_market_buy_with_zero_price_and_enough_liquidity_fills_completely(ex):
    ladder(ex, SELL, [usdt("50000"), usdt("50001")])
    events = ex.place(BOB, BUY, 0, btc("0.15"), order_type=MARKET)
    assert sum(f.quantity for f in fills_of(events)) == btc("0.15")
    assert events[-1].reason == CloseReason.FILLED and ex.held(BOB, "USDT") == 0


# ---- time in force -------------------------------------------------------------------

def test_ioc_with_partial_liquidity_fills_and_expires_remainder(ex):
    ex.rest(ALICE, SELL, usdt("50000"), btc("0.1"))
    events = ex.place(BOB, BUY, usdt("50000"), btc("0.3"), tif=IOC)
    assert sum(f.quantity for f in fills_of(events)) == btc("0.1")
    assert (events[-1].reason, events[-1].remaining) == (CloseReason.EXPIRED_IOC, btc("0.2"))
    assert ex.depth() == ([], []) and ex.held(BOB, "USDT") == 0


def test_ioc_with_no_cross_expires_whole_order_and_changes_no_balance(ex):
    ex.rest(ALICE, SELL, usdt("50000"), btc("0.1"))
    before = ex.engine.balances(BOB)
    events = ex.place(BOB, BUY, usdt("49000"), btc("0.3"), tif=IOC)
    assert names(events) == ["OrderAccepted", "OrderClosed"]
    assert (events[1].reason, events[1].remaining) == (CloseReason.EXPIRED_IOC, btc("0.3"))
    assert ex.engine.balances(BOB) == before


def test_fok_with_enough_liquidity_over_two_levels_fills_completely(ex):
    ladder(ex, SELL, [usdt("50000"), usdt("50001")])
    events = ex.place(BOB, BUY, usdt("50001"), btc("0.2"), tif=FOK)
    assert sum(f.quantity for f in fills_of(events)) == btc("0.2")
    assert events[-1].reason == CloseReason.FILLED and ex.depth() == ([], [])


@pytest.mark.parametrize("limit,qty", [("50001", "0.21"), ("50000", "0.2")])
def test_fok_with_too_little_liquidity_within_limit_is_rejected_untouched(ex, limit, qty):
    ladder(ex, SELL, [usdt("50000"), usdt("50001")])
    assert_rejected(ex, ex.place_cmd(BOB, BUY, usdt(limit), btc(qty), tif=FOK), Reason.FOK_CANNOT_FILL,
                    market_stage=True)


def test_post_only_with_no_cross_rests_and_later_fills_as_maker(ex):
    post = ex.rest(ALICE, SELL, usdt("50000"), btc("0.1"), tif=POST_ONLY)
    events = ex.place(BOB, BUY, usdt("50000"), btc("0.1"))
    [fill] = fills_of(events)
    assert fill.maker_order_id == post and fill.taker_account == BOB


def test_post_only_with_cross_is_rejected_untouched(ex):
    ex.rest(ALICE, SELL, usdt("50000"), btc("0.1"))
    cmd = ex.place_cmd(BOB, BUY, usdt("50000"), btc("0.1"), tif=POST_ONLY, client_order_id="po-1")
    rejected = assert_rejected(ex, cmd, Reason.POST_ONLY_WOULD_TAKE, market_stage=True)
    assert rejected.order_id and (rejected.market, rejected.side, rejected.price, rejected.quantity,
                                  rejected.client_order_id, rejected.order_type, rejected.tif) == \
        (cmd.market, BUY, usdt("50000"), btc("0.1"), "po-1", cmd.order_type, POST_ONLY)     # the order as placed


# ---- self-trade prevention -----------------------------------------------------------

def test_stp_with_expire_taker_fills_others_then_expires_incoming(ex):
    own = ex.rest(ALICE, SELL, usdt("50000"), btc("0.1"))
    other = ex.rest(BOB, SELL, usdt("49999"), btc("0.1"))
    events = ex.place(ALICE, BUY, usdt("50000"), btc("0.2"), stp=EXPIRE_TAKER)
    taker = events[0].order_id
    assert fill_summary(events) == [(other, usdt("49999"), btc("0.1"))]
    assert (closed(events, taker).reason, closed(events, taker).remaining) == (CloseReason.EXPIRED_STP, btc("0.1"))
    assert ex.queue(BTC_USDT, SELL) == [own]
    assert ex.held(ALICE, "USDT") == 0 and ex.held(ALICE, "BTC") == btc("0.1")
    ex.engine.check_invariants()


def test_stp_with_expire_maker_expires_own_resting_order_and_fills_the_next(ex):
    own = ex.rest(ALICE, SELL, usdt("49999"), btc("0.1"))
    other = ex.rest(BOB, SELL, usdt("50000"), btc("0.1"))
    btc_before = ex.available(ALICE, "BTC")
    events = ex.place(ALICE, BUY, usdt("50000"), btc("0.1"), stp=EXPIRE_MAKER)
    assert (closed(events, own).reason, closed(events, own).remaining) == (CloseReason.EXPIRED_STP, btc("0.1"))
    assert fill_summary(events) == [(other, usdt("50000"), btc("0.1"))]
    assert closed(events, events[0].order_id).reason == CloseReason.FILLED
    assert ex.held(ALICE, "BTC") == 0
    assert ex.available(ALICE, "BTC") == btc_before + btc("0.1") + btc("0.1")   # released + bought
    assert ex.depth() == ([], [])


def test_stp_with_expire_both_expires_own_maker_and_incoming_only(ex):
    own = ex.rest(ALICE, SELL, usdt("49999"), btc("0.1"))
    other = ex.rest(BOB, SELL, usdt("50000"), btc("0.1"))
    events = ex.place(ALICE, BUY, usdt("50000"), btc("0.1"), stp=EXPIRE_BOTH)
    assert fills_of(events) == []
    assert closed(events, own).reason == closed(events, events[0].order_id).reason == CloseReason.EXPIRED_STP
    assert ex.queue(BTC_USDT, SELL) == [other]
    assert ex.held(ALICE, "BTC") == ex.held(ALICE, "USDT") == 0


def test_stp_with_default_mode_uses_configured_expire_taker(ex):
    assert CONFIG.default_stp == StpMode.EXPIRE_TAKER
    own = ex.rest(ALICE, SELL, usdt("50000"), btc("0.1"))
    events = ex.place(ALICE, BUY, usdt("50000"), btc("0.1"))
    assert closed(events, events[0].order_id).reason == CloseReason.EXPIRED_STP
    assert ex.queue(BTC_USDT, SELL) == [own]


@pytest.mark.parametrize("stp,filled", [(EXPIRE_TAKER, False), (EXPIRE_BOTH, False), (EXPIRE_MAKER, True)])
def test_fok_with_own_order_in_the_way_follows_stp_mode(ex, stp, filled):
    ex.rest(ALICE, SELL, usdt("50000"), btc("0.1"))
    ex.rest(BOB, SELL, usdt("50000"), btc("0.1"))
    cmd = ex.place_cmd(ALICE, BUY, usdt("50000"), btc("0.1"), tif=FOK, stp=stp)
    if filled:
        events = ex.apply(cmd)
        assert sum(f.quantity for f in fills_of(events)) == btc("0.1")
        assert ex.depth() == ([], [])
    else:
        assert_rejected(ex, cmd, Reason.FOK_CANNOT_FILL, market_stage=True)


# ---- amend -------------------------------------------------------------------------

def test_amend_with_lower_quantity_at_same_price_keeps_priority_and_releases_hold(ex):
    first = ex.rest(ALICE, SELL, usdt("50000"), btc("0.3"))
    second = ex.rest(CAROL, SELL, usdt("50000"), btc("0.3"))
    events = ex.amend(ALICE, first, quantity=btc("0.2"))
    assert names(events) == ["OrderAmended"] and events[0].kept_priority is True
    assert (events[0].price, events[0].remaining) == (usdt("50000"), btc("0.2"))
    assert ex.held(ALICE, "BTC") == btc("0.2")
    assert ex.queue(BTC_USDT, SELL) == [first, second]
    assert fill_summary(ex.place(BOB, BUY, usdt("50000"), btc("0.2")))[0][0] == first
    ex.engine.check_invariants()


def test_amend_with_higher_quantity_at_same_price_loses_priority_and_holds_more(ex):
    first = ex.rest(ALICE, SELL, usdt("50000"), btc("0.3"))
    second = ex.rest(CAROL, SELL, usdt("50000"), btc("0.3"))
    events = ex.amend(ALICE, first, quantity=btc("0.4"))
    assert names(events) == ["OrderAmended", "OrderBooked"] and events[0].kept_priority is False
    assert ex.held(ALICE, "BTC") == btc("0.4")
    assert ex.queue(BTC_USDT, SELL) == [second, first]
    assert fill_summary(ex.place(BOB, BUY, usdt("50000"), btc("0.2")))[0][0] == second


def test_amend_with_price_change_loses_priority_even_when_moved_back(ex):
    first = ex.rest(ALICE, SELL, usdt("50000"), btc("0.3"))
    second = ex.rest(CAROL, SELL, usdt("50000"), btc("0.3"))
    away = ex.amend(ALICE, first, price=usdt("50001"))
    assert away[0].kept_priority is False and ex.queue(BTC_USDT, SELL) == [second, first]
    back = ex.amend(ALICE, first, price=usdt("50000"))
    assert back[0].kept_priority is False and ex.queue(BTC_USDT, SELL) == [second, first]
    assert ex.depth()[1] == [(usdt("50000"), btc("0.6"), 2)]


def test_amend_with_partially_filled_order_keeps_total_semantics(ex):
    order = ex.rest(ALICE, SELL, usdt("50000"), btc("0.5"))
    ex.place(BOB, BUY, usdt("50000"), btc("0.3"))
    events = ex.amend(ALICE, order, quantity=btc("0.4"))      # new total 0.4, 0.3 filled: 0.1 open
    assert events[0].kept_priority is True and events[0].remaining == btc("0.1")
    assert ex.held(ALICE, "BTC") == btc("0.1")
    assert ex.depth()[1] == [(usdt("50000"), btc("0.1"), 1)]


@pytest.mark.parametrize("total", ["0.3", "0.2"])
def test_amend_with_total_at_or_below_filled_is_rejected(ex, total):
    order = ex.rest(ALICE, SELL, usdt("50000"), btc("0.5"))
    ex.place(BOB, BUY, usdt("50000"), btc("0.3"))
    assert_rejected(ex, ex.amend_cmd(ALICE, order, quantity=btc(total)), Reason.AMEND_BELOW_FILLED,
                    market_stage=True)


@pytest.mark.parametrize("price,qty", [(0, 0), ("50000", "0.5"), ("50000", 0), (0, "0.5")])
def test_amend_with_unchanged_terms_is_rejected(ex, price, qty):
    order = ex.rest(ALICE, SELL, usdt("50000"), btc("0.5"))
    cmd = ex.amend_cmd(ALICE, order, price=usdt(price) if price else 0, quantity=btc(qty) if qty else 0)
    assert_rejected(ex, cmd, Reason.AMEND_NO_CHANGE, market_stage=True)


def test_amend_with_buy_moved_across_the_spread_trades_as_taker(ex):
    ask = ex.rest(ALICE, SELL, usdt("50000"), btc("0.1"))
    bid = ex.rest(BOB, BUY, usdt("49000"), btc("0.3"))
    usdt_before = ex.available(BOB, "USDT") + ex.held(BOB, "USDT")
    events = ex.amend(BOB, bid, price=usdt("50000"))
    assert names(events) == ["OrderAmended", "Fill", "OrderClosed", "OrderBooked"]
    [fill] = fills_of(events)
    assert (fill.taker_order_id, fill.maker_order_id, fill.price, fill.quantity) == \
        (bid, ask, usdt("50000"), btc("0.1"))
    value = notional(BTC_USDT, usdt("50000"), btc("0.1"))
    assert fill.taker_fee == ceil_ppm(value, REGULAR.taker_ppm)
    assert ex.held(BOB, "USDT") == buy_hold(usdt("50000"), btc("0.2"))
    assert ex.available(BOB, "USDT") + ex.held(BOB, "USDT") == usdt_before - value - fill.taker_fee
    assert ex.depth() == ([(usdt("50000"), btc("0.2"), 1)], [])
    ex.engine.check_invariants()


def test_amend_with_buy_price_raised_holds_for_the_new_price(ex):
    bid = ex.rest(BOB, BUY, usdt("49000"), btc("0.3"))
    ex.amend(BOB, bid, price=usdt("49500"))
    assert ex.held(BOB, "USDT") == buy_hold(usdt("49500"), btc("0.3"))
    ex.engine.check_invariants()


def test_amend_with_post_only_moved_across_is_rejected_and_keeps_order(ex):
    ex.rest(ALICE, SELL, usdt("50000"), btc("0.1"))
    bid = ex.rest(BOB, BUY, usdt("49000"), btc("0.1"), tif=POST_ONLY)
    assert_rejected(ex, ex.amend_cmd(BOB, bid, price=usdt("50000")), Reason.POST_ONLY_WOULD_TAKE,
                    market_stage=True)
    assert ex.held(BOB, "USDT") == buy_hold(usdt("49000"), btc("0.1"))


# ---- cancel ------------------------------------------------------------------------

def test_cancel_with_resting_buy_releases_the_whole_hold(ex):
    before = ex.engine.balances(BOB)
    order = ex.rest(BOB, BUY, usdt("49000.37"), btc("0.0007"))
    events = ex.cancel(BOB, order)
    assert names(events) == ["OrderClosed"]
    assert (events[0].reason, events[0].remaining) == (CloseReason.CANCELLED, btc("0.0007"))
    assert ex.engine.balances(BOB) == before and ex.depth() == ([], [])


def test_cancel_with_partially_filled_order_reports_open_quantity(ex):
    order = ex.rest(ALICE, SELL, usdt("50000"), btc("0.5"))
    ex.place(BOB, BUY, usdt("50000"), btc("0.2"))
    events = ex.cancel(ALICE, order)
    assert events[0].remaining == btc("0.3") and ex.held(ALICE, "BTC") == 0


def test_cancel_with_client_order_id_finds_the_order_and_frees_the_id(ex):
    order = ex.rest(ALICE, SELL, usdt("50000"), btc("0.5"), client_order_id="mine")
    assert_rejected(ex, ex.place_cmd(ALICE, SELL, usdt("50001"), btc("0.1"), client_order_id="mine"),
                    Reason.DUPLICATE_CLIENT_ORDER_ID)
    events = ex.cancel(ALICE, client_order_id="mine")
    assert [(type(e), e.order_id) for e in events] == [(OrderClosed, order)]
    ex.rest(ALICE, SELL, usdt("50001"), btc("0.1"), client_order_id="mine")   # reusable once closed


def test_cancel_with_already_cancelled_order_is_rejected(ex):
    order = ex.rest(ALICE, SELL, usdt("50000"), btc("0.5"))
    ex.cancel(ALICE, order)
    assert_rejected(ex, ex.cancel_cmd(ALICE, order), Reason.ORDER_NOT_FOUND, market_stage=True)


def test_client_order_id_with_filled_order_is_reusable(ex):
    ex.rest(ALICE, SELL, usdt("50000"), btc("0.1"))
    events = ex.place(BOB, BUY, usdt("50000"), btc("0.1"), client_order_id="x")
    assert events[-1].reason == CloseReason.FILLED
    ex.rest(BOB, BUY, usdt("40000"), btc("0.1"), client_order_id="x")


# ---- replay protection -----------------------------------------------------------------

def test_repeated_request_with_filled_order_returns_same_events_and_changes_nothing(ex):
    ex.rest(ALICE, SELL, usdt("50000"), btc("0.1"))
    cmd = ex.place_cmd(BOB, BUY, usdt("50000"), btc("0.1"))
    first = ex.apply(cmd)
    state = snapshot(ex.engine)
    balances = ex.engine.balances(BOB)
    again = ex.apply(cmd)
    assert again == first and snapshot(ex.engine) == state and ex.engine.balances(BOB) == balances
    changed = cmd._replace(price=usdt("40000"))          # same id, other body: refused (issue 11)
    assert ex.apply(changed) == [OrderRejected(cmd.request_id, BOB, Reason.REQUEST_ID_REUSED)]
    assert snapshot(ex.engine) == state


def test_repeated_deposit_with_same_request_id_credits_once(ex):
    before = ex.available(ALICE, "ETH")
    cmd = ex.deposit_cmd(ALICE, "ETH", 12345)
    first = ex.apply(cmd)
    assert ex.apply(cmd) == first
    assert ex.available(ALICE, "ETH") == before + 12345


def test_same_request_id_with_different_accounts_is_applied_for_each(ex):
    a = ex.deposit_cmd(ALICE, "ETH", 7)
    b = a._replace(account_id=BOB)
    before = (ex.available(ALICE, "ETH"), ex.available(BOB, "ETH"))
    ex.apply(a)
    ex.apply(b)
    assert (ex.available(ALICE, "ETH"), ex.available(BOB, "ETH")) == (before[0] + 7, before[1] + 7)


def test_repeated_rejected_request_with_cause_fixed_returns_original_rejection(ex):
    ex.open(77)
    cmd = ex.place_cmd(77, SELL, usdt("50000"), btc("0.1"))
    first = ex.apply(cmd)
    assert first[0].reason == Reason.INSUFFICIENT_BALANCE
    ex.deposit(77, "BTC", btc("1"))
    assert ex.apply(cmd) == first and ex.depth() == ([], [])


def test_repeated_request_with_id_beyond_dedup_window_is_applied_again():
    ex = funded_harness(custom_config(lambda raw: raw["exchange"].update(dedup_window=2)))
    cmd = ex.deposit_cmd(ALICE, "ETH", 5)
    before = ex.available(ALICE, "ETH")
    ex.apply(cmd)
    ex.apply(cmd)
    assert ex.available(ALICE, "ETH") == before + 5
    ex.deposit(BOB, "ETH", 1)
    ex.deposit(BOB, "ETH", 1)                 # two newer requests push the first out of the window
    ex.apply(cmd)
    assert ex.available(ALICE, "ETH") == before + 10
