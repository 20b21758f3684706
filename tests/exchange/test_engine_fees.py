"""Fees through the whole engine: who pays what, rounding against the payer,
maker rebates, the fee account, buy holds, and exact conservation."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from exchange.core.reasons import Reason
from tests.exchange.support import (ALICE, BOB, BTC_USDT, BUY, CAROL, CONFIG, ETH_USDT, FUNDING, MAKER, SELL, TIERS,
                                    VIP, assert_rejected, btc, ceil_ppm, fills_of, floor_ppm, funded_harness, notional,
                                    usdt)

LOT = CONFIG.markets[BTC_USDT].lot_minor


def rates(account: int) -> tuple[int, int]:
    tier = CONFIG.fee_tiers[TIERS[account]]
    return tier.maker_ppm, tier.taker_ppm


def expected_maker_fee(value: int, maker_ppm: int) -> int:
    return ceil_ppm(value, maker_ppm) if maker_ppm >= 0 else -floor_ppm(value, -maker_ppm)


def test_fill_with_fractional_fee_charges_both_sides_ceil_into_fee_account(ex):
    price, qty = usdt("50000.01"), btc("0.0003")          # notional 15.000003 USDT
    value = notional(BTC_USDT, price, qty)
    seller_before, buyer_before = ex.available(ALICE, "USDT"), ex.available(BOB, "USDT")
    ex.rest(ALICE, SELL, price, qty)
    [fill] = fills_of(ex.place(BOB, BUY, price, qty))
    taker_fee = ceil_ppm(value, rates(BOB)[1])
    maker_fee = ceil_ppm(value, rates(ALICE)[0])
    assert value * rates(BOB)[1] % 10**6 != 0            # the exact fee is fractional: rounding matters
    assert (fill.taker_fee, fill.maker_fee) == (taker_fee, maker_fee)
    assert ex.available(BOB, "USDT") == buyer_before - value - taker_fee
    assert ex.available(ALICE, "USDT") == seller_before + value - maker_fee
    assert ex.fee_account("USDT") == taker_fee + maker_fee
    assert ex.fee_account("BTC") == 0


def test_fill_with_market_maker_resting_pays_floored_rebate_from_taker_fee(ex):
    price, qty = usdt("50000.01"), btc("0.0003")
    value = notional(BTC_USDT, price, qty)
    maker_ppm, _ = rates(MAKER)
    assert maker_ppm < 0
    before = ex.available(MAKER, "USDT")
    ex.rest(MAKER, SELL, price, qty)
    [fill] = fills_of(ex.place(BOB, BUY, price, qty))
    rebate = floor_ppm(value, -maker_ppm)
    assert fill.maker_fee == -rebate
    assert ex.available(MAKER, "USDT") == before + value + rebate
    assert ex.fee_account("USDT") == ceil_ppm(value, rates(BOB)[1]) - rebate >= 0
    assert all(v == 0 for v in ex.engine.conservation().values())


def test_fill_with_market_maker_resting_buy_receives_rebate_in_quote(ex):
    price, qty = usdt("49999.99"), btc("0.0007")
    value = notional(BTC_USDT, price, qty)
    usdt_before, btc_before = ex.available(MAKER, "USDT"), ex.available(MAKER, "BTC")
    ex.rest(MAKER, BUY, price, qty)
    [fill] = fills_of(ex.place(CAROL, SELL, price, qty))
    rebate = floor_ppm(value, -rates(MAKER)[0])
    assert fill.maker_fee == -rebate
    assert (ex.available(MAKER, "USDT"), ex.held(MAKER, "USDT")) == (usdt_before - value + rebate, 0)
    assert ex.available(MAKER, "BTC") == btc_before + qty
    assert ex.available(CAROL, "USDT") - usdt(FUNDING["USDT"]) == value - ceil_ppm(value, rates(CAROL)[1])


def test_fill_with_vip_taker_uses_vip_rate(ex):
    price, qty = usdt("3000.07"), 3 * CONFIG.markets[ETH_USDT].lot_minor
    value = notional(ETH_USDT, price, qty)
    ex.rest(ALICE, SELL, price, qty, market=ETH_USDT)
    [fill] = fills_of(ex.place(VIP, BUY, price, qty, market=ETH_USDT))
    assert fill.taker_fee == ceil_ppm(value, rates(VIP)[1]) != ceil_ppm(value, rates(ALICE)[1])


def test_buy_hold_with_exact_funds_for_notional_plus_fee_is_accepted_and_one_less_refused(ex):
    price, qty = usdt("50000.01"), btc("0.0003")
    per_lot = notional(BTC_USDT, price, LOT)
    hold = qty // LOT * (per_lot + ceil_ppm(per_lot, CONFIG.fee_tiers["regular"].taker_ppm))
    ex.open(40)
    ex.open(41)
    ex.deposit(40, "USDT", hold - 1)
    ex.deposit(41, "USDT", hold)
    assert_rejected(ex, ex.place_cmd(40, BUY, price, qty), Reason.INSUFFICIENT_BALANCE)
    ex.rest(41, BUY, price, qty)
    assert (ex.available(41, "USDT"), ex.held(41, "USDT")) == (0, hold)
    [fill] = fills_of(ex.place(ALICE, SELL, price, qty))          # 41 is the maker: pays the maker fee
    value = notional(BTC_USDT, price, qty)
    assert fill.maker_fee == ceil_ppm(value, CONFIG.fee_tiers["regular"].maker_ppm)
    assert (ex.available(41, "USDT"), ex.held(41, "USDT")) == (hold - value - fill.maker_fee, 0)
    assert ex.available(41, "BTC") == qty


def test_buy_hold_with_fill_at_better_price_releases_unused_part_and_keeps_open_part(ex):
    limit, ask = usdt("51000"), usdt("50000")
    ex.rest(ALICE, SELL, ask, btc("0.0004"))
    before = ex.available(BOB, "USDT")
    ex.place(BOB, BUY, limit, btc("0.001"))
    per_lot = notional(BTC_USDT, limit, LOT)
    open_hold = 6 * (per_lot + ceil_ppm(per_lot, rates(BOB)[1]))
    value = notional(BTC_USDT, ask, btc("0.0004"))
    assert ex.held(BOB, "USDT") == open_hold
    assert ex.available(BOB, "USDT") == before - open_hold - value - ceil_ppm(value, rates(BOB)[1])


trades = st.lists(st.tuples(st.sampled_from(sorted(TIERS)), st.sampled_from(sorted(TIERS)),
                            st.sampled_from([BUY, SELL]), st.integers(1, 5_000_000), st.integers(1, 50)),
                  min_size=1, max_size=25)


@settings(max_examples=60, deadline=None, database=None)
@given(trades)
def test_random_fills_with_every_tier_pair_conserve_every_minor_unit(trade_list):
    ex = funded_harness()
    expected_fees = 0
    start_total = sum(ex.available(a, "USDT") for a in TIERS)
    for maker, taker, side, ticks, lots in trade_list:
        if maker == taker:
            continue
        price = usdt("0.01") * ticks
        qty = lots * LOT
        ex.rest(maker, side, price, qty)
        events = ex.place(taker, BUY if side == SELL else SELL, price, qty)
        [fill] = fills_of(events)
        value = notional(BTC_USDT, price, qty)
        assert fill.taker_fee == ceil_ppm(value, rates(taker)[1])
        assert fill.maker_fee == expected_maker_fee(value, rates(maker)[0])
        expected_fees += fill.taker_fee + fill.maker_fee
        assert ex.fee_account("USDT") == expected_fees >= 0
        ex.engine.check_invariants()
    assert sum(ex.available(a, "USDT") + ex.held(a, "USDT") for a in TIERS) + ex.fee_account("USDT") == start_total
    assert sum(ex.available(a, "BTC") + ex.held(a, "BTC") for a in TIERS) == len(TIERS) * btc("100")
    assert set(ex.engine.conservation().values()) == {0}
