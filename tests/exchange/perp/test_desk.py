"""The perpetual desk in the Engine: wallets, settings, orders with their pre-trade checks
(every rejection with its reason and no change), fills that move positions, PnL that sums
to zero, conservation with every check, and the position view's prices."""
from __future__ import annotations

from fractions import Fraction
import math

from hypothesis import given, settings, strategies as st

from exchange.core.reasons import Reason
from exchange.messages.records import (CancelPerpOrder, PlacePerpOrder, PositionChanged, SetMarginMode,
                                       SetPerpLeverage, SetRiskLimit, TransferPerp)
from exchange.perp.prices import bankruptcy_price, liquidation_price
from tests.exchange.support import (ALICE, BOB, BUY, CAROL, GTC, IOC, LIMIT, MARKET, POST_ONLY, SELL, Harness,
                                    assert_rejected, btc, custom_config, funded_harness, names, usdt)

PERP = "BTC-USDT-PERP"
K = 100                                   # 0.1 USDT tick x 0.001 BTC lot = 0.0001 USDT
LISTED_NS = 10**18                        # listing time of the banded contract below


def perp_config(**overrides):
    section = {"base": "BTC", "quote": "USDT", "tick_size": "0.1", "lot_size": "0.001", "min_qty": "0.001",
               "max_qty": "1000", "step_notional": "1000000", "position_limit": "50", **overrides}
    return custom_config(lambda raw: raw.setdefault("perp", {}).update({PERP: section}))


CONFIG = perp_config()


class PerpHarness(Harness):
    def perp_transfer_cmd(self, account, amount, to_perp=True, asset="USDT"):
        rid, ts = self.next_ids()
        return TransferPerp(rid, ts, account, asset, amount, to_perp)

    def leverage_cmd(self, account, leverage, market=PERP):
        rid, ts = self.next_ids()
        return SetPerpLeverage(rid, ts, account, market, leverage)

    def risk_cmd(self, account, tier, market=PERP):
        rid, ts = self.next_ids()
        return SetRiskLimit(rid, ts, account, market, tier)

    def mode_cmd(self, account, isolated, market=PERP):
        rid, ts = self.next_ids()
        return SetMarginMode(rid, ts, account, market, isolated)

    def perp_cmd(self, account, side, price, quantity, *, market=PERP, order_type=LIMIT, tif=GTC,
                 reduce_only=False, client_order_id="", ts_ns=None):
        rid, ts = self.next_ids()
        return PlacePerpOrder(rid, ts if ts_ns is None else ts_ns, account, market, side, order_type, price,
                              quantity, tif, reduce_only, client_order_id)

    def perp_cancel_cmd(self, account, order_id, market=PERP):
        rid, ts = self.next_ids()
        return CancelPerpOrder(rid, ts, account, market, order_id)

    def perp(self, *args, **kw) -> list:
        return self.apply(self.perp_cmd(*args, **kw))

    def view(self, account):
        return self.engine.shard.perp.position_view(account, PERP)

    def cash(self, account):
        return self.engine.shard.perp.accounts[account].cash[self.engine.config.assets["USDT"].index]


def harness(config=CONFIG, index="40000", wallet="100000") -> PerpHarness:
    base = funded_harness(config)
    ex = PerpHarness(base.engine)
    ex.counter = base.counter
    ex.engine.set_index_prices({"BTC": usdt(index)})
    ex.engine.mark_perps(ex.next_ids()[1])
    for account in (ALICE, BOB, CAROL):
        assert names(ex.apply(ex.perp_transfer_cmd(account, usdt(wallet)))) == ["PerpTransferred"]
    return ex


def check(ex: PerpHarness) -> None:
    ex.engine.check_invariants()                  # conservation included: perp wallets, margins, fees


# ---- rejections: every reason, nothing changes ------------------------------------------------

def _resting_buy(ex):
    events = ex.perp(BOB, BUY, usdt("39000"), btc("1"))
    return events[0].order_id


def _long(ex, account=ALICE, qty="1", price="40000"):
    ex.apply(ex.risk_cmd(BOB, 3))                                    # room for Bob's side of it
    assert "OrderAccepted" in names(ex.perp(BOB, SELL, usdt(price), btc(qty)))
    events = ex.perp(account, BUY, usdt(price), btc(qty))
    assert "PositionChanged" in names(events), events
    return events


def _diverged(ex):
    ex.engine.shard.perp.set_mark(PERP, 400_000, 430_000)          # the mark 7.5% above the index
    return ex.perp_cmd(ALICE, BUY, usdt("43010"), btc("1"))          # beyond the mark, away from the index


def test_while_the_mark_diverges_orders_toward_the_index_pass():
    """After a crash the book must be able to follow the index down: a quote at or under a
    mark that stands above the index is accepted; one above the mark is refused."""
    ex = harness()
    ex.engine.shard.perp.set_mark(PERP, 400_000, 430_000)
    for side, price in ((SELL, "42000"), (BUY, "40000"), (SELL, "43000")):
        assert "OrderAccepted" in names(ex.perp(ALICE, side, usdt(price), btc("0.1"))), (side, price)
    events = ex.perp(BOB, SELL, usdt("43000.1"), btc("0.1"))
    assert events[0].reason == Reason.MARK_INDEX_DIVERGED
    check(ex)


SCENARIOS = {
    "perp_transfer_unknown_account": (Reason.UNKNOWN_ACCOUNT, lambda ex: ex.perp_transfer_cmd(99, 5)),
    "perp_transfer_unknown_asset": (Reason.UNKNOWN_ASSET, lambda ex: ex.perp_transfer_cmd(ALICE, 5, asset="DOGE")),
    "perp_transfer_not_settlement": (Reason.NOT_SETTLEMENT_ASSET,
                                     lambda ex: ex.perp_transfer_cmd(ALICE, 5, asset="BTC")),
    "perp_transfer_zero": (Reason.NON_POSITIVE_AMOUNT, lambda ex: ex.perp_transfer_cmd(ALICE, 0)),
    "perp_transfer_in_too_much": (Reason.INSUFFICIENT_BALANCE,
                                  lambda ex: ex.perp_transfer_cmd(ALICE, usdt("100000000"))),
    "perp_transfer_out_too_much": (Reason.INSUFFICIENT_BALANCE,
                                   lambda ex: ex.perp_transfer_cmd(ALICE, usdt("100000.000001"), to_perp=False)),
    "perp_transfer_out_held": (Reason.INSUFFICIENT_BALANCE,
                               lambda ex: (_resting_buy(ex), ex.perp_transfer_cmd(BOB, usdt("99000"), False))[1]),
    "perp_transfer_in_overflow": (Reason.VALUE_OUT_OF_RANGE, None),
    "leverage_zero": (Reason.INVALID_LEVERAGE, lambda ex: ex.leverage_cmd(ALICE, 0)),
    "leverage_above_tier": (Reason.LEVERAGE_ABOVE_TIER, lambda ex: ex.leverage_cmd(ALICE, 101)),
    "leverage_unknown_market": (Reason.UNKNOWN_MARKET, lambda ex: ex.leverage_cmd(ALICE, 5, market="DOGE-PERP")),
    "leverage_unknown_account": (Reason.UNKNOWN_ACCOUNT, lambda ex: ex.leverage_cmd(99, 5)),
    "risk_limit_no_such_tier": (Reason.INVALID_RISK_LIMIT, lambda ex: ex.risk_cmd(ALICE, 10)),
    "risk_limit_leverage_too_high": (Reason.LEVERAGE_ABOVE_TIER,
                                     lambda ex: (ex.apply(ex.leverage_cmd(ALICE, 80)), ex.risk_cmd(ALICE, 1))[1]),
    "risk_limit_below_position": (Reason.RISK_LIMIT_BELOW_POSITION,
                                  lambda ex: (ex.apply(ex.risk_cmd(ALICE, 1)), _long(ex, qty="30"),
                                              ex.risk_cmd(ALICE, 0))[2]),
    "mode_with_position": (Reason.POSITION_OPEN, lambda ex: (_long(ex), ex.mode_cmd(ALICE, True))[1]),
    "mode_with_order": (Reason.POSITION_OPEN, lambda ex: (_resting_buy(ex), ex.mode_cmd(BOB, True))[1]),
    "perp_unknown_market": (Reason.UNKNOWN_MARKET,
                            lambda ex: ex.perp_cmd(ALICE, BUY, usdt("40000"), btc("1"), market="BTC-USDT-X")),
    "perp_off_tick": (Reason.OFF_TICK_PRICE, lambda ex: ex.perp_cmd(ALICE, BUY, usdt("40000.05"), btc("1"))),
    "perp_off_lot": (Reason.OFF_LOT_QUANTITY, lambda ex: ex.perp_cmd(ALICE, BUY, usdt("40000"), btc("0.0005"))),
    "perp_no_mark": (Reason.NO_MARK_PRICE, None),
    "perp_mark_diverged": (Reason.MARK_INDEX_DIVERGED, _diverged),
    "perp_listing_band": (Reason.PRICE_OUTSIDE_LISTING_BAND, None),
    "perp_reduce_only_flat": (Reason.REDUCE_ONLY_WOULD_INCREASE,
                              lambda ex: ex.perp_cmd(ALICE, SELL, usdt("40000"), btc("1"), reduce_only=True)),
    "perp_reduce_only_same_side": (Reason.REDUCE_ONLY_WOULD_INCREASE,
                                   lambda ex: (_long(ex), ex.perp_cmd(ALICE, BUY, usdt("40000"), btc("1"),
                                                                       reduce_only=True))[1]),
    "perp_reduce_only_too_big": (Reason.REDUCE_ONLY_WOULD_INCREASE,
                                 lambda ex: (_long(ex), ex.perp_cmd(ALICE, SELL, usdt("41000"), btc("1.001"),
                                                                     reduce_only=True))[1]),
    "perp_position_limit": (Reason.POSITION_LIMIT_EXCEEDED,
                            lambda ex: (ex.apply(ex.risk_cmd(ALICE, 5)), ex.apply(ex.leverage_cmd(ALICE, 10)),
                                        ex.perp_cmd(ALICE, BUY, usdt("40000"), btc("50.001")))[2]),
    "perp_risk_limit": (Reason.RISK_LIMIT_EXCEEDED, lambda ex: ex.perp_cmd(ALICE, BUY, usdt("40000"), btc("25.1"))),
    "perp_risk_limit_with_orders": (Reason.RISK_LIMIT_EXCEEDED,
                                    lambda ex: (ex.perp(ALICE, BUY, usdt("39000"), btc("20")),
                                                ex.perp_cmd(ALICE, BUY, usdt("39000"), btc("5.7")))[1]),
    "perp_insufficient": (Reason.INSUFFICIENT_BALANCE,
                          lambda ex: (ex.apply(ex.leverage_cmd(ALICE, 1)),
                                      ex.perp_cmd(ALICE, BUY, usdt("40000"), btc("2.5")))[1]),
    "perp_cancel_unknown": (Reason.ORDER_NOT_FOUND, lambda ex: ex.perp_cancel_cmd(ALICE, 12345)),
    "perp_cancel_not_owner": (Reason.NOT_OWNER, lambda ex: ex.perp_cancel_cmd(ALICE, _resting_buy(ex))),
    "perp_cancel_unknown_market": (Reason.UNKNOWN_MARKET, lambda ex: ex.perp_cancel_cmd(ALICE, 1, market="X")),
}


def test_every_perpetual_rejection_names_its_reason_and_changes_nothing():
    for name, (reason, build) in SCENARIOS.items():
        if build is None:
            continue                                                 # their own tests below
        ex = harness()
        assert_rejected(ex, build(ex), reason)
        check(ex)


def test_no_order_before_the_market_has_a_mark():
    base = funded_harness(CONFIG)
    ex = PerpHarness(base.engine)
    ex.counter = base.counter
    ex.apply(ex.perp_transfer_cmd(ALICE, usdt("1000")))
    assert_rejected(ex, ex.perp_cmd(ALICE, BUY, usdt("40000"), btc("0.01")), Reason.NO_MARK_PRICE)


def test_a_new_contract_trades_only_within_the_band_for_its_first_minutes():
    ex = harness(perp_config(listing_ts_ns=LISTED_NS))
    within = LISTED_NS + 899 * 10**9
    assert_rejected(ex, ex.perp_cmd(ALICE, BUY, usdt("42000.1"), btc("0.01"), ts_ns=within),
                    Reason.PRICE_OUTSIDE_LISTING_BAND)
    assert_rejected(ex, ex.perp_cmd(ALICE, SELL, usdt("37999.9"), btc("0.01"), ts_ns=within),
                    Reason.PRICE_OUTSIDE_LISTING_BAND)
    assert "OrderAccepted" in names(ex.perp(ALICE, BUY, usdt("42000"), btc("0.01"), ts_ns=within))
    assert "OrderAccepted" in names(ex.perp(ALICE, BUY, usdt("42000.1"), btc("0.01"), ts_ns=LISTED_NS + 900 * 10**9))


def test_a_transfer_that_would_overflow_the_wallet_is_refused():
    """A guard: spot and perpetual balances together never exceed what was deposited, so only
    PnL could bring a wallet this close to the bound; the wallet is set there directly."""
    ex = harness()
    ex.engine.shard.perp.accounts[ALICE].cash[ex.engine.config.assets["USDT"].index] = 2**63 - 10
    events = ex.apply(ex.perp_transfer_cmd(ALICE, 11))
    assert names(events) == ["OrderRejected"] and events[0].reason == Reason.VALUE_OUT_OF_RANGE


# ---- fills, positions, PnL, fees ----------------------------------------------------------

def test_a_trade_opens_a_long_and_a_short_and_closing_realizes_pnl_that_sums_to_zero():
    ex = harness()
    fee = lambda price, qty: math.ceil(Fraction(price * qty, 10**8) * Fraction(1, 1000))   # noqa: E731 0.1%
    ex.perp(BOB, SELL, usdt("40000"), btc("2"))
    events = ex.perp(ALICE, BUY, usdt("40000"), btc("2"))
    assert names(events) == ["OrderAccepted", "PositionChanged", "PositionChanged", "Fill", "OrderClosed",
                             "OrderClosed"]                          # both orders filled whole
    alice, bob = (e for e in events if type(e) is PositionChanged)
    assert (alice.account_id, alice.size, alice.entry_notional) == (ALICE, btc("2"), 2_000 * 400_000 * K)
    assert (bob.account_id, bob.size, bob.entry_notional) == (BOB, -btc("2"), -2_000 * 400_000 * K)
    assert alice.fee == bob.fee == fee(usdt("40000"), btc("2")) == usdt("80")
    check(ex)
    ex.perp(ALICE, SELL, usdt("41000"), btc("2"))                   # Alice closes at 41,000 against Bob
    events = ex.perp(BOB, BUY, usdt("41000"), btc("2"))
    changed = {e.account_id: e for e in events if type(e) is PositionChanged}
    assert changed[ALICE].realized == usdt("2000") and changed[BOB].realized == -usdt("2000")
    assert changed[ALICE].size == changed[BOB].size == 0
    assert ex.cash(ALICE) == usdt("100000") + usdt("2000") - usdt("80") - usdt("82")
    assert ex.cash(BOB) == usdt("100000") - usdt("2000") - usdt("80") - usdt("82")
    assert ex.fee_account("USDT") == 2 * (usdt("80") + usdt("82"))
    check(ex)


def test_an_isolated_position_carries_its_own_margin_and_gives_it_back_as_it_closes():
    ex = harness()
    assert names(ex.apply(ex.mode_cmd(ALICE, True))) == ["PerpSettingsChanged"]
    assert names(ex.apply(ex.leverage_cmd(ALICE, 10))) == ["PerpSettingsChanged"]
    _long(ex, qty="1")                                               # 1 BTC at 40,000, 10x: 4,000 margin
    assert ex.view(ALICE)["margin"] == usdt("4000")
    assert ex.cash(ALICE) == usdt("100000") - usdt("4000") - usdt("40")
    ex.perp(BOB, BUY, usdt("39000"), btc("0.25"))
    ex.perp(ALICE, SELL, usdt("39000"), btc("0.25"))                # a quarter closed at a loss of 250
    assert ex.view(ALICE)["margin"] == usdt("3000")
    assert ex.cash(ALICE) == usdt("100000") - usdt("3000") - usdt("40") - usdt("250") - usdt("9.75")
    check(ex)


def test_a_reduce_only_order_holds_no_margin_and_a_cancel_releases_the_hold():
    ex = harness()
    _long(ex, qty="1")
    desk = ex.engine.shard.perp
    q = ex.engine.config.assets["USDT"].index
    events = ex.perp(ALICE, SELL, usdt("45000"), btc("1"), reduce_only=True)
    order = events[0].order_id
    assert desk.accounts[ALICE].held[q] == usdt("45")               # the fee only
    assert names(ex.apply(ex.perp_cancel_cmd(ALICE, order))) == ["OrderClosed"]
    assert desk.accounts[ALICE].held[q] == 0
    check(ex)


def test_the_position_view_shows_the_prices_the_prices_module_computes():
    ex = harness()
    assert names(ex.apply(ex.mode_cmd(ALICE, True))) == ["PerpSettingsChanged"]
    ex.apply(ex.leverage_cmd(ALICE, 20))
    _long(ex, qty="1")                                               # 1,000 lots at 400,000 ticks, 2,000 margin
    view = ex.view(ALICE)
    tiers = ex.engine.perps[PERP].tiers
    assert view["bankruptcy_price"] == bankruptcy_price(1_000, 1_000 * 400_000 * K, usdt("2000"), K) == 380_000
    assert view["liquidation_price"] == liquidation_price(1_000, 1_000 * 400_000 * K, usdt("2000"), K, tiers)
    assert view["liquidation_price"] == 381_909     # 2e9 + 1e5 p - 4e10 = 500 p (0.5%): p = 381,909.5, the tick below
    cross = ex.view(BOB)                                             # Bob's short is cross: his wallet stands behind it
    assert cross["bankruptcy_price"] == (ex.cash(BOB) + 1_000 * 400_000 * K) // (1_000 * K)
    assert view["adl_quintile"] == cross["adl_quintile"] == 5        # alone on each side


# ---- properties ---------------------------------------------------------------------------

orders = st.lists(st.tuples(st.sampled_from([ALICE, BOB, CAROL]), st.sampled_from([BUY, SELL]),
                            st.integers(390_000, 410_000), st.integers(1, 3_000), st.booleans(), st.booleans()),
                  min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(orders, st.integers(380_000, 420_000))
def test_random_flow_conserves_every_unit_and_pnl_sums_to_zero(flow, mark):
    ex = harness()
    desk = ex.engine.shard.perp
    for account, side, ticks, lots, isolated, market_order in flow:
        if isolated and not desk.accounts[account].positions.get(PERP):
            ex.apply(ex.mode_cmd(account, True))
        events = ex.perp(account, side, ticks * 100_000, lots * 100_000, order_type=MARKET if market_order else LIMIT,
                         tif=IOC if market_order else GTC)
        assert events
        check(ex)
    desk.set_mark(PERP, mark, mark)
    total = 0
    for account in (ALICE, BOB, CAROL):
        position = desk.accounts[account].positions.get(PERP)
        if position is not None:
            total += position.realized + position.unrealized(mark, K)
    assert total == 0
    assert sum(p.lots for w in desk.accounts.values() for p in w.positions.values()) == 0


def test_a_snapshot_of_a_shard_and_a_market_with_perpetuals_restores_the_same_state():
    """Through JSON as the actors write it (orjson, messages by ``encode_shallow``), then on:
    the restored shard settles the next fill exactly as the original does."""
    import orjson
    from exchange.messages.codec import encode_shallow
    from exchange.snapshot import market_state, restore_market, restore_shard, shard_state
    ex = harness()
    ex.apply(ex.mode_cmd(CAROL, True))
    _long(ex, qty="2")
    ex.perp(CAROL, SELL, usdt("41000"), btc("0.5"), client_order_id="c-1")
    ex.perp(ALICE, SELL, usdt("42000"), btc("1"), reduce_only=True)
    shard = ex.engine.shard
    through = orjson.loads(orjson.dumps(shard_state(shard), default=encode_shallow))
    restored = restore_shard(ex.engine.config, through)
    assert restored.canonical() == shard.canonical()
    market = ex.engine.markets[PERP]
    assert restore_market(ex.engine.config, orjson.loads(orjson.dumps(market_state(market)))).canonical() \
        == market.canonical()
    before = ex.engine.state_hash()
    ex.engine.shard = restored
    assert ex.engine.state_hash() == before
    assert "PositionChanged" in names(ex.perp(BOB, BUY, usdt("41000"), btc("0.5")))     # Carol's order fills
    check(ex)


# ---- funding ------------------------------------------------------------------------------

HOUR_NS = 3600 * 10**9


def test_funding_over_a_simulated_week_sums_to_zero_and_the_rate_is_the_weighted_premium_by_hand():
    """Three accounts hold positions; a maker quotes around the index every 5 minutes, the
    book's bid above the index for the last third of each interval (a premium), the mark is
    sampled with each quote; funding is settled every 8 h for 7 days."""
    ex = harness()
    ex.apply(ex.mode_cmd(CAROL, True))
    _long(ex, account=ALICE, qty="2")                                # Alice long 2, Bob short 2
    ex.perp(CAROL, SELL, usdt("40000"), btc("1"))
    ex.perp(BOB, BUY, usdt("40000"), btc("1"))                       # Carol short 1 (isolated), Bob short 1
    desk, engine = ex.engine.shard.perp, ex.engine
    cash0 = {a: ex.cash(a) + desk.accounts[a].positions[PERP].margin for a in (ALICE, BOB, CAROL)}
    paid, rates = [], []
    start = 8 * HOUR_NS * 1000                                       # a funding time
    step = 300 * 10**9
    for n in range(21 * 96 + 1):                                     # 96 samples of 5 minutes per 8 h
        ts = start + n * step
        pricer = engine.pricers[PERP]
        position = n % 96 + 1                                        # a sample at a funding time opens the next
        bid, ask = (400_800, 400_810) if position >= 65 else (399_990, 400_010)
        assert engine.markets[PERP].book.best_bid() is None          # the book is empty: quotes go to the pricer
        pricer.update(ts, 400_000, bid, ask, None)
        desk.set_mark(PERP, 400_000, pricer.mark)
        events = engine.run_funding(ts)
        for event in events:
            if event.account_id == ALICE:
                rates.append(event.rate)
        paid.extend(events)
    # The harness's interval (one sample of 0: the interest, 10,000), then 21; the ~1,000 intervals
    # between them were never priced and charge nothing. By hand, one interval: 96 samples
    # weighted 1..96; those at positions 65..96 (a bid of 400,800 over an index of 400,000:
    # +0.2% = 200,000) count, the rest are 0: 2,576 x 200,000 / 4,656 = 110,652.9 -> 110,652;
    # rate = 110,652 + clamp(10,000 - 110,652, +-50,000) = 60,652.
    premium = sum(range(65, 97)) * 200_000 // sum(range(1, 97))
    assert premium == 110_652
    assert rates == [10_000] + [premium - 50_000] * 21
    assert sum(e.amount for e in paid) == 0
    by_account = {a: sum(e.amount for e in paid if e.account_id == a) for a in (ALICE, BOB, CAROL)}
    assert by_account[ALICE] > 0 > by_account[BOB] and by_account[CAROL] < 0    # longs paid the shorts
    # one lot's funding at 400,000 ticks x K 100 x 0.01% = 4,000: Alice's 2,000 lots pay 8,000,000 a time
    assert paid[0].account_id == ALICE and paid[0].amount == 2_000 * 4_000
    # at 60,652: one lot pays 400,000 x 100 x 60,652 / 10^8 = 24,260.8, rounded up to 24,261
    later = [e for e in paid if e.rate == 60_652 and e.account_id == ALICE]
    assert later and all(e.amount == 2_000 * 24_261 for e in later)
    for account in (ALICE, BOB, CAROL):
        now = ex.cash(account) + desk.accounts[account].positions[PERP].margin
        assert now == cash0[account] - by_account[account]
        assert desk.accounts[account].positions[PERP].funding == by_account[account]
    check(ex)


def test_a_position_crossing_the_warning_line_and_maintenance_notifies_its_account():
    from exchange.messages.records import MarkUpdated
    ex = harness()
    ex.apply(ex.mode_cmd(ALICE, True))
    ex.apply(ex.leverage_cmd(ALICE, 10))
    _long(ex, qty="1")                                   # margin 4,000: equity 4e9 + 1e5 (p - 400,000)

    def mark(ticks):
        engine = ex.engine
        return engine.shard.apply_market(MarkUpdated(PERP, engine.markets[PERP].next_seq(), 0, ticks, ticks))
    # warning = 0.75% of 1e5 p: crossed at p <= 362,720.4; maintenance 0.5%: p <= 361,809.0
    assert mark(370_000) == []
    warned = mark(362_720)
    assert [(e.account_id, e.scope, e.zone) for e in warned] == [(ALICE, PERP, 1)]
    assert warned[0].warning == -(-3 * 362_720 * 10**5 // 400)        # (0.5% + 1.0%) / 2, rounded up
    assert mark(362_500) == []                                        # the same zone: no news
    due = mark(361_809)
    assert [(e.account_id, e.zone) for e in due] == [(ALICE, 2)] and due[0].equity <= due[0].maintenance
    assert [(e.account_id, e.zone) for e in mark(380_000)] == [(ALICE, 0)]
    check(ex)


def test_a_post_only_order_that_would_take_is_rejected_with_the_order_as_placed():
    ex = harness()
    assert "OrderAccepted" in names(ex.perp(BOB, SELL, usdt("40000"), btc("0.5")))
    events = ex.perp(ALICE, BUY, usdt("40000"), btc("0.2"), tif=POST_ONLY, client_order_id="po-perp")
    [rejected] = events
    assert rejected.reason == Reason.POST_ONLY_WOULD_TAKE and rejected.order_id
    assert (rejected.market, rejected.side, rejected.price, rejected.quantity, rejected.client_order_id,
            rejected.order_type, rejected.tif) == (PERP, BUY, usdt("40000"), btc("0.2"), "po-perp", LIMIT, POST_ONLY)
    check(ex)
