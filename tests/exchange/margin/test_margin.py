"""Margin books, lending pools and liquidation in the pure engine: every
margin rejection (right reason, nothing changes), the liquidation rule driven
to the end (with and without a shortfall), snapshots, and properties over
random price paths and margin activity."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from exchange.margin.lending import INDEX_SCALE
from exchange.margin.liquidation import next_action
from exchange.messages.records import (Borrow, CoverShortfall, EnableMargin, FinishLiquidation, LiquidationStage,
                                       LiquidationStep, OpenAccount, OrderRejected, PlaceMarginOrder, Repay,
                                       StartLiquidation, SupplyToPool, TransferMargin, WithdrawFromPool, WriteOffDebt)
from exchange.accounts.pricing import PriceContext
from exchange.core.reasons import Reason
from exchange.snapshot import lending_state, restore_lending, restore_shard, shard_state
from tests.exchange.support import (ALICE, BOB, BTC_USDT, BUY, CAROL, ETH_USDT, GTC, IOC, LIMIT, SELL,
                                    assert_rejected, btc, custom_config, eth, funded_harness, usdt)

HOUR = 3_600 * 10**9
PRICES = {"BTC": usdt("50000"), "ETH": usdt("3000"), "USDT": usdt("1")}


class MarginHarness:
    """A funded engine whose pools hold BOB's supply, with ALICE's cross book
    holding 10,000 USDT at user level L2 (borrow up to 2x equity)."""

    def __init__(self, config=None):
        self.ex = funded_harness(config) if config else funded_harness()
        self.engine = self.ex.engine
        self.engine.set_index_prices(PRICES)
        self.engine.accrue(0)
        self.run(SupplyToPool, BOB, "USDT", usdt("1000000"))
        self.run(SupplyToPool, BOB, "BTC", btc("50"))
        self.run(EnableMargin, ALICE, "L2", "3x")
        self.run(TransferMargin, ALICE, "USDT", usdt("10000"), to_margin=True)

    def cmd(self, kind, account, *fields, **named):
        rid, ts = self.ex.next_ids()
        return kind(rid, ts, account, *fields, **named)

    def run(self, kind, account, *fields, **named) -> list:
        return self.engine.apply(self.cmd(kind, account, *fields, **named))

    def book(self, account=ALICE, market=""):
        desk = self.engine.shard.margin
        return desk.book_view(desk.books[(account, market)], self.engine.prices)

    def crash(self, btc_price: int) -> None:
        self.engine.set_index_prices({"BTC": btc_price})


SCENARIOS = {
    "borrow_without_margin": (Reason.MARGIN_NOT_ENABLED, False,
                              lambda h: h.cmd(Borrow, CAROL, "USDT", usdt("1"), "")),
    "margin_order_on_market_without_margin": (Reason.MARGIN_NOT_ENABLED, False,
                                              lambda h: h.cmd(PlaceMarginOrder, ALICE, ETH_USDT, BUY, LIMIT,
                                                              usdt("3000"), eth("1"), GTC)),
    "enable_twice": (Reason.MARGIN_ALREADY_ENABLED, False, lambda h: h.cmd(EnableMargin, ALICE, "", "")),
    "enable_unknown_level": (Reason.UNKNOWN_USER_LEVEL, False, lambda h: h.cmd(EnableMargin, CAROL, "gold", "")),
    "enable_unknown_tier": (Reason.UNKNOWN_LEVERAGE_TIER, False, lambda h: h.cmd(EnableMargin, CAROL, "L1", "7x")),
    "borrow_above_tier_limit": (Reason.ABOVE_BORROW_LIMIT, False,
                                lambda h: h.cmd(Borrow, ALICE, "USDT", usdt("20000") + 1, "")),
    "margin_order_borrowing_above_limit": (Reason.ABOVE_BORROW_LIMIT, False,
                                           lambda h: h.cmd(PlaceMarginOrder, ALICE, BTC_USDT, BUY, LIMIT,
                                                           usdt("50000"), btc("1"), GTC)),
    "borrow_beyond_pool": (Reason.POOL_INSUFFICIENT_LIQUIDITY, True,
                           lambda h: h.cmd(Borrow, ALICE, "ETH", eth("1"), "")),
    "transfer_out_below_initial_line": (Reason.BELOW_INITIAL_MARGIN_LEVEL, False,
                                        lambda h: (h.run(Borrow, ALICE, "USDT", usdt("10000"), ""),
                                                   h.cmd(TransferMargin, ALICE, "USDT", 1, to_margin=False))[-1]),
    "spot_withdrawal_below_initial_line": (Reason.BELOW_INITIAL_MARGIN_LEVEL, False,
                                           lambda h: (h.run(Borrow, ALICE, "USDT", usdt("10000"), ""),
                                                      h.ex.withdraw_cmd(ALICE, "USDT", 1))[-1]),
    "borrow_without_price": (Reason.NO_INDEX_PRICE, False,
                             lambda h: (h.engine.set_index_prices({"ETH": 0}),
                                        h.cmd(Borrow, ALICE, "ETH", 1, ""))[-1]),
    "repay_nothing_owed": (Reason.NOTHING_OWED, False, lambda h: h.cmd(Repay, ALICE, "USDT", usdt("1"), "")),
    "transfer_in_liquidation": (Reason.ACCOUNT_IN_LIQUIDATION, False,
                                lambda h: (liquidating(h),
                                           h.cmd(TransferMargin, ALICE, "USDT", 1, to_margin=True))[-1]),
    "start_on_healthy_book": (Reason.NOT_BELOW_LIQUIDATION_LINE, False,
                              lambda h: (h.run(Borrow, ALICE, "USDT", usdt("100"), ""),
                                         h.cmd(StartLiquidation, ALICE, "", h.engine.prices))[-1]),
    "write_off_outside_liquidation": (Reason.NOT_IN_LIQUIDATION, False,
                                      lambda h: h.cmd(WriteOffDebt, ALICE, "", "USDT")),
    "step_zero": (Reason.INVALID_LIQUIDATION_STEP, False,
                  lambda h: (liquidating(h), h.cmd(LiquidationStep, ALICE, "", BTC_USDT, 0, h.engine.prices))[-1]),
    "step_on_book_not_in_liquidation": (Reason.NOT_IN_LIQUIDATION, False,
                                        lambda h: h.cmd(LiquidationStep, ALICE, "", BTC_USDT, 1, h.engine.prices)),
    "withdraw_supply_never_supplied": (Reason.NO_SUPPLY, True,
                                       lambda h: h.cmd(WithdrawFromPool, CAROL, "USDT", usdt("1"))),
    "withdraw_supply_beyond_cash": (Reason.POOL_INSUFFICIENT_LIQUIDITY, True,
                                    lambda h: (h.run(Borrow, ALICE, "BTC", btc("0.3"), ""),
                                               h.cmd(WithdrawFromPool, BOB, "BTC", btc("50")))[-1]),
    "transfer_unknown_asset": (Reason.UNKNOWN_ASSET, False,
                               lambda h: h.cmd(TransferMargin, ALICE, "DOGE", 1, to_margin=True)),
    "transfer_isolated_other_asset": (Reason.UNKNOWN_ASSET, False,
                                      lambda h: h.cmd(TransferMargin, ALICE, "ETH", 1, to_margin=True,
                                                      market=BTC_USDT)),
    "transfer_zero": (Reason.NON_POSITIVE_AMOUNT, False,
                      lambda h: h.cmd(TransferMargin, ALICE, "USDT", 0, to_margin=True)),
    "borrow_negative": (Reason.NON_POSITIVE_AMOUNT, False, lambda h: h.cmd(Borrow, ALICE, "USDT", -5, "")),
    "transfer_more_than_spot": (Reason.INSUFFICIENT_BALANCE, False,
                                lambda h: h.cmd(TransferMargin, ALICE, "USDT", usdt("9990000") + 1, to_margin=True)),
    "supply_more_than_spot": (Reason.INSUFFICIENT_BALANCE, False,
                              lambda h: h.cmd(SupplyToPool, CAROL, "USDT", usdt("10000001"))),
    "borrow_unknown_market": (Reason.UNKNOWN_MARKET, False, lambda h: h.cmd(Borrow, ALICE, "USDT", 1, "NOPE")),
    "borrow_unknown_account": (Reason.UNKNOWN_ACCOUNT, False, lambda h: h.cmd(Borrow, 999, "USDT", 1, "")),
    "margin_order_off_tick": (Reason.OFF_TICK_PRICE, False,
                              lambda h: h.cmd(PlaceMarginOrder, ALICE, BTC_USDT, BUY, LIMIT, usdt("50000") + 1,
                                              btc("0.1"), GTC)),
    # Core v2 §4: was MALFORMED_COMMAND
    "margin_order_malformed_flag": (Reason.FIELD_NOT_A_FLAG, False,
                                    lambda h: h.cmd(PlaceMarginOrder, ALICE, BTC_USDT, BUY, LIMIT, usdt("50000"),
                                                    btc("0.1"), GTC, isolated="yes")),
    "transfer_flag_not_a_bool": (Reason.FIELD_NOT_A_FLAG, False,
                                 lambda h: h.cmd(TransferMargin, ALICE, "USDT", 1, to_margin=1)),
    "borrow_negative_timestamp": (Reason.NEGATIVE_TIMESTAMP, False,      # was VALUE_OUT_OF_RANGE
                                  lambda h: h.cmd(Borrow, ALICE, "USDT", 1, "")._replace(ts_ns=-1)),
    "start_liquidation_short_price_vector": (Reason.INVALID_PRICE_VECTOR, False,
                                             lambda h: h.cmd(StartLiquidation, ALICE, "", (1, 2))),
    "start_liquidation_float_price": (Reason.INVALID_PRICE_VECTOR, False,
                                      lambda h: h.cmd(StartLiquidation, ALICE, "",
                                                      (1.0,) * len(h.engine.prices))),
    # NO_MARGIN_BOOK: was ABOVE_BORROW_LIMIT (borrow), NOTHING_OWED (repay), INSUFFICIENT_BALANCE (others)
    "borrow_from_unfunded_isolated_book": (Reason.NO_MARGIN_BOOK, False,
                                           lambda h: h.cmd(Borrow, ALICE, "USDT", 1, BTC_USDT)),
    "repay_to_unfunded_isolated_book": (Reason.NO_MARGIN_BOOK, False,
                                        lambda h: h.cmd(Repay, ALICE, "USDT", 1, BTC_USDT)),
    "transfer_out_of_unfunded_book": (Reason.NO_MARGIN_BOOK, False,
                                      lambda h: h.cmd(TransferMargin, ALICE, "USDT", 1, to_margin=False,
                                                      market=BTC_USDT)),
    "isolated_margin_order_without_book": (Reason.NO_MARGIN_BOOK, False,
                                           lambda h: h.cmd(PlaceMarginOrder, ALICE, BTC_USDT, BUY, LIMIT,
                                                           usdt("50000"), btc("0.1"), GTC, isolated=True)),
}


def liquidating(h: MarginHarness) -> None:
    """ALICE buys 0.5 BTC with 10,000 USDT and ~15,025 borrowed, the index halves: taken over."""
    h.ex.rest(BOB, SELL, usdt("50000"), btc("0.5"))
    h.run(PlaceMarginOrder, ALICE, BTC_USDT, BUY, LIMIT, usdt("50000"), btc("0.5"), IOC)
    h.crash(usdt("25000"))
    events = h.run(StartLiquidation, ALICE, "", h.engine.prices)
    assert type(events[0]).__name__ == "LiquidationUpdate", events


def margin_config():
    return custom_config(lambda raw: raw["margin"].update(markets=[BTC_USDT]))


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_margin_rejection_with_scenario_returns_reason_and_changes_nothing(name):
    reason, pool_stage, build = SCENARIOS[name]
    h = MarginHarness(margin_config())
    command = build(h)
    h.engine.check_invariants()
    assert_rejected(h.ex, command, reason, market_stage=pool_stage)


def liquidate(h: MarginHarness, account: int, market: str, fund: dict) -> list:
    """Drive a book's liquidation with the liquidator's own rule, as the LiquidatorActor does."""
    engine, prices = h.engine, h.engine.prices
    events = h.run(StartLiquidation, account, market, prices)
    assert type(events[0]).__name__ == "LiquidationUpdate", events
    markets = [market] if market else sorted(engine.config.margin.markets)
    lots = {m.name: (m.base.name, m.quote.name, m.min_lots * m.lot_minor) for m in engine.config.market_list}
    steps, exhausted, log = {}, set(), []
    for _ in range(200):
        action = next_action(h.book(account, market), [m for m in markets if m not in exhausted], lots)
        log.append(action)
        if action[0] == "finish":
            break
        if action[0] == "trade":
            steps[action[1]] = steps.get(action[1], 0) + 1
            events = h.run(LiquidationStep, account, market, action[1], steps[action[1]], prices)
            if events[0].stage == LiquidationStage.IDLE:
                exhausted.add(action[1])
        else:
            asset = action[1]
            amount = min(action[2], fund.get(asset, 0))
            if amount:
                fund[asset] -= amount
                h.run(CoverShortfall, account, market, asset, amount)
            else:                                   # the fund is empty: the pool writes the rest off
                h.run(WriteOffDebt, account, market, asset)
    h.run(FinishLiquidation, account, market)
    return log


def test_liquidation_with_bids_below_bankruptcy_draws_the_shortfall_from_the_fund():
    h = MarginHarness(margin_config())
    h.ex.rest(BOB, SELL, usdt("50000"), btc("0.5"))
    h.run(PlaceMarginOrder, ALICE, BTC_USDT, BUY, LIMIT, usdt("50000"), btc("0.5"), IOC)
    opened = h.book()
    cost = usdt("50000") // 2
    fee = -(-cost * 1000 // 1_000_000)                           # regular taker fee, rounded up
    assert opened["principal"]["USDT"] == cost + fee - usdt("10000")     # auto-borrow: exactly what was lacking
    assert opened["available"] == {"BTC": btc("0.5"), "ETH": 0, "USDT": 0}
    debt = opened["debt"]["USDT"]
    assert debt > usdt("15025")                                 # bankruptcy price: debt / 0.5 BTC > 30,050
    h.ex.rest(CAROL, BUY, usdt("29000"), btc("1"))            # the price gapped: the only bid is under it
    h.crash(usdt("30000"))
    fund = {"USDT": usdt("1000000")}
    log = liquidate(h, ALICE, "", fund)
    # steps widen 1% a time off the 30,000 index: 29,700, 29,400, 29,100 find no bid, 28,800 fills at 29,000
    assert [a for a in log if a[0] == "trade"] == [("trade", BTC_USDT)] * 4
    assert log[-2:] == [("cover", "USDT", debt - (usdt("14500") - usdt("14.5"))), ("finish",)]
    book = h.book()
    proceeds = usdt("29000") // 2 - -(-usdt("29000") // 2 * 1000 // 1_000_000)
    assert book["debt"]["USDT"] == 0 and book["available"] == {"BTC": 0, "ETH": 0, "USDT": 0}
    spent = usdt("1000000") - fund["USDT"]
    assert spent == debt - proceeds                             # the bad debt, to the smallest unit
    assert h.engine.lending.pools["USDT"].loans == {}
    assert h.engine.shard.margin.fund_in[h.engine.config.assets["USDT"].index] == spent
    h.engine.check_invariants()
    assert not any(h.engine.conservation().values())


def test_isolated_liquidation_leaves_the_cross_book_untouched():
    h = MarginHarness(margin_config())
    h.run(TransferMargin, ALICE, "USDT", usdt("1000"), to_margin=True, market=BTC_USDT)
    h.ex.rest(BOB, SELL, usdt("50000"), btc("0.05"))
    h.run(PlaceMarginOrder, ALICE, BTC_USDT, BUY, LIMIT, usdt("50000"), btc("0.05"), IOC, isolated=True)
    h.run(Borrow, ALICE, "USDT", usdt("5000"), "")              # a healthy cross position
    cross_before = h.book()
    h.ex.rest(CAROL, BUY, usdt("32000"), btc("1"))
    h.crash(usdt("32000"))
    assert h.book(ALICE, BTC_USDT)["zone"] == 3 and h.book()["zone"] == 0
    log = liquidate(h, ALICE, BTC_USDT, {"USDT": usdt("1000000")})
    assert log[-1] == ("finish",)
    isolated = h.book(ALICE, BTC_USDT)
    assert isolated["debt"]["USDT"] == 0 and isolated["available"]["BTC"] == 0
    cross = h.book()
    assert (cross["available"], cross["debt"]) == (cross_before["available"], cross_before["debt"])
    assert not any(h.engine.conservation().values())


def test_short_borrows_base_and_liquidation_buys_it_back():
    h = MarginHarness(margin_config())
    h.ex.rest(CAROL, BUY, usdt("50000"), btc("0.3"))
    events = h.run(PlaceMarginOrder, ALICE, BTC_USDT, SELL, LIMIT, usdt("50000"), btc("0.3"), IOC)
    assert [type(e).__name__ for e in events][:2] == ["Borrowed", "OrderAccepted"]
    book = h.book()
    assert book["principal"]["BTC"] == btc("0.3") and book["available"]["BTC"] == 0
    h.crash(usdt("70000"))
    assert h.book()["zone"] == 2                                 # 24,985 USDT against 21,000 owed: a margin call
    h.ex.rest(CAROL, SELL, usdt("80000"), btc("1"))
    h.crash(usdt("80000"))
    assert h.book()["zone"] == 3
    liquidate(h, ALICE, "", {"BTC": btc("10"), "USDT": usdt("1000000")})
    book = h.book()
    assert book["debt"]["BTC"] == 0 and book["available"]["BTC"] >= 0
    assert h.engine.lending.pools["BTC"].loans == {}
    assert not any(h.engine.conservation().values())


def test_snapshot_of_margin_and_pools_restores_the_same_state():
    h = MarginHarness(margin_config())
    h.ex.rest(BOB, SELL, usdt("50000"), btc("0.2"))
    h.run(PlaceMarginOrder, ALICE, BTC_USDT, BUY, LIMIT, usdt("50000"), btc("0.2"), IOC)
    h.run(Borrow, ALICE, "BTC", btc("0.01"), "")
    h.engine.accrue(5 * HOUR)
    import orjson
    from exchange.messages.codec import encode_shallow
    shard = restore_shard(h.engine.config, orjson.loads(orjson.dumps(shard_state(h.engine.shard),
                                                                     default=encode_shallow)))
    assert shard.canonical() == h.engine.shard.canonical()
    pools = restore_lending(h.engine.config, orjson.loads(orjson.dumps(lending_state(h.engine.lending))))
    assert pools.canonical() == h.engine.lending.canonical()


# ---- properties ---------------------------------------------------------------

ACCOUNTS = (ALICE, BOB, CAROL)
op = st.one_of(
    st.tuples(st.just("borrow"), st.sampled_from(ACCOUNTS), st.sampled_from(["USDT", "BTC"]),
              st.integers(1, 3_000), st.sampled_from(["", BTC_USDT])),
    st.tuples(st.just("repay"), st.sampled_from(ACCOUNTS), st.sampled_from(["USDT", "BTC"]),
              st.integers(1, 5_000), st.sampled_from(["", BTC_USDT])),
    st.tuples(st.just("hours"), st.integers(1, 500)),
    st.tuples(st.just("price"), st.integers(20_000, 80_000)),
    st.tuples(st.just("order"), st.sampled_from(ACCOUNTS), st.sampled_from([BUY, SELL]), st.integers(1, 20),
              st.booleans()),
    st.tuples(st.just("rest"), st.sampled_from([BUY, SELL]), st.integers(20_000, 80_000)),
    st.tuples(st.just("transfer"), st.sampled_from(ACCOUNTS), st.integers(-5_000, 5_000), st.booleans()),
    st.tuples(st.just("supply"), st.sampled_from(["USDT", "BTC"]), st.integers(-3_000, 3_000)),
)


def loans(engine) -> dict:
    return {(asset, key): pool.owed(key) for asset, pool in engine.lending.pools.items() for key in pool.loans}


@settings(max_examples=60, deadline=None, database=None)
@given(st.lists(op, min_size=1, max_size=25))
def test_random_margin_activity_keeps_pools_equal_to_loans_and_debts_only_fall_by_repayment(ops):
    h = MarginHarness(margin_config())
    for account in (BOB, CAROL):
        h.run(EnableMargin, account, "L3", "10x")
        h.run(TransferMargin, account, "USDT", usdt("10000"), to_margin=True)
    for account in ACCOUNTS:
        h.run(TransferMargin, account, "USDT", usdt("5000"), to_margin=True, market=BTC_USDT)
    now = 0
    price = 50_000
    for step in ops:
        before = loans(h.engine)
        kind = step[0]
        if kind == "borrow":
            _, account, asset, units, market = step
            h.run(Borrow, account, asset, usdt(str(units)) if asset == "USDT" else btc("0.001") * units, market)
        elif kind == "repay":
            _, account, asset, units, market = step
            h.run(Repay, account, asset, usdt(str(units)) if asset == "USDT" else btc("0.001") * units, market)
        elif kind == "hours":
            now += step[1] * HOUR
            h.engine.accrue(now)
        elif kind == "price":
            price = step[1]
            h.crash(usdt(str(price)))
        elif kind == "order":
            _, account, side, tenths, isolated = step
            h.run(PlaceMarginOrder, account, BTC_USDT, side, LIMIT, usdt(str(price)), btc("0.01") * tenths, IOC,
                  isolated=isolated)
        elif kind == "rest":
            h.ex.place(BOB, step[1], usdt(str(step[2])), btc("0.05"))
        elif kind == "transfer":
            _, account, units, isolated = step
            h.run(TransferMargin, account, "USDT", abs(units) * 10**6 or 1, to_margin=units >= 0,
                  market=BTC_USDT if isolated else "")
        else:
            _, asset, units = step
            amount = (usdt(str(abs(units))) if asset == "USDT" else btc("0.001") * abs(units)) or 1
            h.run(SupplyToPool if units >= 0 else WithdrawFromPool, CAROL, asset, amount)
        h.engine.check_invariants()                      # pool totals == sum of loans, no negative balance
        assert not any(h.engine.conservation().values())
        after = loans(h.engine)
        if kind not in ("repay", "order"):              # only a repayment (explicit or automatic) lowers a debt
            for key, owed in before.items():
                assert after.get(key, 0) >= owed, (step, key)
        for asset, pool in h.engine.lending.pools.items():
            assert pool.borrowed_scaled == sum(v[0] for v in pool.loans.values())
            assert pool.principal_total == sum(v[1] for v in pool.loans.values())
            assert pool.index >= INDEX_SCALE


@settings(max_examples=50, deadline=None, database=None)
@given(st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 10**11), st.integers(0, 10**9),
                          st.integers(0, 10**11), st.booleans()), min_size=1, max_size=30),
       st.integers(1, 10**11), st.integers(INDEX_SCALE, 2 * INDEX_SCALE))
def test_levels_of_every_book_equal_each_books_own_level(books, btc_price, index):
    from exchange.config import load_config
    from exchange.accounts.ledger import Ledger
    from exchange.margin.desk import MarginDesk
    config = load_config()
    desk = MarginDesk(config, Ledger(config))
    b, u = config.assets["BTC"].index, config.assets["USDT"].index
    desk.pool_index[u] = index
    for n, (btc_held, usdt_held, btc_owed, usdt_owed, isolated) in enumerate(books):
        book = desk.book(n, BTC_USDT if isolated else "", create=True)
        book.available[b], book.held[u], book.scaled[b], book.scaled[u] = btc_held, usdt_held, btc_owed, usdt_owed
    prices = [0] * len(config.assets)
    prices[b], prices[u] = btc_price, 10**6
    expected = [(key, desk.level_ppm(book, prices)) for key, book in desk.books.items() if book.has_debt()]
    assert desk.levels(prices) == [(k, v) for k, v in expected if v is not None]


def test_borrows_in_flight_count_against_the_limit_so_concurrent_requests_cannot_pass_it_together():
    h = MarginHarness(margin_config())
    shard, prices = h.engine.shard, h.engine.prices
    first = h.cmd(Borrow, ALICE, "USDT", usdt("15000"), "")          # L2: up to 20,000 on 10,000 equity
    second = h.cmd(Borrow, ALICE, "USDT", usdt("15000"), "")
    events, asked = shard.apply_client(first, PriceContext(None, prices))        # asked of the pool, not answered yet
    assert events == [] and asked.amount == usdt("15000")
    events, request = shard.apply_client(second, PriceContext(None, prices))
    assert request is None and events[0].reason == Reason.ABOVE_BORROW_LIMIT
    for event in h.engine.lending.handle(asked):                      # the pool answers the first
        shard.apply_market(event)
    assert h.book()["principal"]["USDT"] == usdt("15000")
    assert shard.margin.books[(ALICE, "")].borrowing == [0, 0, 0]
    h.engine.check_invariants()


ODD_VALUES = [None, 0, -1, 1, True, False, 1.0, 0.5, float("nan"), "", "1", "BTC", "USDT", BTC_USDT, "L1", "3x",
              [1], (1,), {"a": 1}, b"x", 2**63, -(2**63) - 1, usdt("50000"), btc("0.1")]
MARGIN_TEMPLATES = [
    EnableMargin("f", 0, CAROL, "L1", "3x"),
    TransferMargin("f", 0, ALICE, "USDT", usdt("10"), to_margin=True),
    TransferMargin("f", 0, ALICE, "USDT", usdt("10"), to_margin=False),
    Borrow("f", 0, ALICE, "USDT", usdt("10"), ""),
    Repay("f", 0, ALICE, "USDT", usdt("10"), ""),
    PlaceMarginOrder("f", 0, ALICE, BTC_USDT, BUY, LIMIT, usdt("50000"), btc("0.1"), GTC),
    SupplyToPool("f", 0, CAROL, "USDT", usdt("10")),
    WithdrawFromPool("f", 0, BOB, "USDT", usdt("10")),
    StartLiquidation("f", 0, ALICE, "", (usdt("50000"), usdt("3000"), usdt("1"))),
    LiquidationStep("f", 0, ALICE, "", BTC_USDT, 1, ()),
    CoverShortfall("f", 0, ALICE, "", "USDT", 1),
    FinishLiquidation("f", 0, ALICE, ""),
    WriteOffDebt("f", 0, ALICE, "", "USDT"),
]


@settings(max_examples=300, deadline=None, database=None)
@given(st.sampled_from(MARGIN_TEMPLATES), st.data())
def test_margin_command_with_any_odd_field_value_never_raises_and_rejections_change_nothing(template, data):
    from tests.exchange.support import business_state
    h = MarginHarness(margin_config())
    h.run(Borrow, ALICE, "USDT", usdt("100"), "")
    field = data.draw(st.sampled_from(template._fields))
    command = template._replace(**{field: data.draw(st.sampled_from(ODD_VALUES))})
    before = business_state(h.engine)
    events = h.engine.apply(command)
    h.engine.check_invariants()
    assert not any(h.engine.conservation().values())
    if any(type(e).__name__ == "OrderRejected" for e in events):
        assert len(events) == 1 and business_state(h.engine) == before, events


def test_closing_a_long_repays_principal_and_interest_automatically_and_keeps_the_profit():
    h = MarginHarness(margin_config())
    h.ex.rest(BOB, SELL, usdt("50000"), btc("0.4"))
    h.run(PlaceMarginOrder, ALICE, BTC_USDT, BUY, LIMIT, usdt("50000"), btc("0.4"), IOC)
    h.engine.accrue(10 * HOUR)
    debt = h.book()["debt"]["USDT"]
    principal = h.book()["principal"]["USDT"]
    assert debt > principal == usdt("20000") + usdt("20") - usdt("10000")    # notional + taker fee - equity
    h.ex.rest(CAROL, BUY, usdt("55000"), btc("0.4"))
    events = h.run(PlaceMarginOrder, ALICE, BTC_USDT, SELL, LIMIT, usdt("55000"), btc("0.4"), IOC)
    repaid = [e for e in events if type(e).__name__ == "Repaid"]
    assert len(repaid) == 1 and repaid[0].taken == debt and repaid[0].interest == debt - principal
    proceeds = usdt("22000") - usdt("22")
    book = h.book()
    assert book["debt"]["USDT"] == 0 and book["available"]["USDT"] == proceeds - debt
    assert book["available"]["BTC"] == 0 and h.engine.lending.pools["USDT"].loans == {}


def test_transfers_out_and_withdrawals_refused_under_the_initial_line_are_allowed_once_back_above():
    h = MarginHarness(margin_config())
    h.ex.rest(BOB, SELL, usdt("50000"), btc("0.4"))
    h.run(PlaceMarginOrder, ALICE, BTC_USDT, BUY, LIMIT, usdt("50000"), btc("0.4"), IOC)
    out = lambda: h.run(TransferMargin, ALICE, "BTC", btc("0.01"), to_margin=False)   # noqa: E731
    withdraw = lambda: h.ex.withdraw(ALICE, "USDT", usdt("1"))                  # noqa: E731 (spot, rulebook 4.4.3)
    # 0.4 BTC against 10,020 USDT owed: 0.39 BTC must be worth 200% of it, so the line is ~51,386
    assert out()[0].reason == Reason.BELOW_INITIAL_MARGIN_LEVEL     # at 50,000
    assert withdraw()[0].reason == Reason.BELOW_INITIAL_MARGIN_LEVEL
    h.crash(usdt("51000"))
    assert out()[0].reason == Reason.BELOW_INITIAL_MARGIN_LEVEL
    h.crash(usdt("52000"))                                           # back above: released by itself
    assert type(out()[0]).__name__ == "MarginTransferred"
    assert type(withdraw()[0]).__name__ == "BalanceChanged"
    assert type(h.ex.withdraw(CAROL, "USDT", usdt("1"))[0]).__name__ == "BalanceChanged"   # no margin: never checked


def test_suppliers_earn_the_interest_less_the_reserve_and_can_withdraw_it():
    h = MarginHarness(margin_config())
    pool = h.engine.lending.pools["USDT"]
    h.run(Borrow, ALICE, "USDT", usdt("20000"), "")
    h.engine.accrue(100 * HOUR)
    interest = pool.borrowed - usdt("20000")
    assert interest > 0 and pool.reserve > 0
    treasury = h.engine.config.reserve_account
    worth = h.engine.lending.supplier_balance(BOB, "USDT")
    reserve = h.engine.lending.supplier_balance(treasury, "USDT")
    assert pool.reserve > 0
    # BOB is the only supplier: he gets the interest less the 10% reserve, which is the exchange's
    assert usdt("1000000") + interest - pool.reserve - 100 <= worth <= usdt("1000000") + interest - pool.reserve + 100
    assert pool.reserve - 100 <= reserve <= pool.reserve and worth + reserve <= pool.supplier_value()
    # 10% of what accrued at the hours' turns (the hour charged at borrow time goes to suppliers), floored hourly
    assert pool.interest_total // 10 - 100 <= pool.reserve <= pool.interest_total // 10
    h.run(Repay, ALICE, "USDT", usdt("30000"), "")                   # repays it all: only what is owed is taken
    before = h.engine.balances(BOB)["USDT"][0]
    h.run(WithdrawFromPool, BOB, "USDT", worth)
    assert h.engine.balances(BOB)["USDT"][0] == before + worth
    h.run(OpenAccount, treasury)                                    # the exchange takes its reserve out
    h.run(WithdrawFromPool, treasury, "USDT", reserve)
    assert h.engine.balances(treasury)["USDT"][0] == reserve
    assert not any(h.engine.conservation().values())


def test_shortfall_with_an_empty_fund_is_written_off_by_the_pool_and_its_suppliers_carry_it():
    h = MarginHarness(margin_config())
    h.ex.rest(BOB, SELL, usdt("50000"), btc("0.5"))
    h.run(PlaceMarginOrder, ALICE, BTC_USDT, BUY, LIMIT, usdt("50000"), btc("0.5"), IOC)
    debt = h.book()["debt"]["USDT"]
    h.ex.rest(CAROL, BUY, usdt("29000"), btc("1"))
    h.crash(usdt("30000"))
    pool = h.engine.lending.pools["USDT"]
    worth_before = h.engine.lending.supplier_balance(BOB, "USDT")
    log = liquidate(h, ALICE, "", {"USDT": 0})
    proceeds = usdt("14500") - usdt("14.5")
    assert log[-1] == ("finish",) and ("cover", "USDT", debt - proceeds) in log
    assert pool.loans == {} and pool.written_off == debt - proceeds
    assert h.engine.lending.supplier_balance(BOB, "USDT") == worth_before - (debt - proceeds)
    assert h.book()["debt"]["USDT"] == 0 and not h.book()["liquidating"]
    h.engine.check_invariants()
    assert not any(h.engine.conservation().values())             # no money moved: the claim shrank


def test_cross_liquidation_sells_collateral_in_every_margin_market_until_the_debt_is_repaid():
    h = MarginHarness()                                             # default config: BTC-USDT and ETH-USDT
    h.ex.rest(BOB, SELL, usdt("50000"), btc("0.2"))
    h.ex.rest(BOB, SELL, usdt("3000"), eth("3"), market=ETH_USDT)
    h.run(PlaceMarginOrder, ALICE, BTC_USDT, BUY, LIMIT, usdt("50000"), btc("0.2"), IOC)
    h.run(PlaceMarginOrder, ALICE, ETH_USDT, BUY, LIMIT, usdt("3000"), eth("3"), IOC)
    opened = h.book()
    assert opened["available"]["BTC"] == btc("0.2") and opened["available"]["ETH"] == eth("3")
    debt = opened["debt"]["USDT"]                                   # 19,000 + 19 fees - 10,000 equity + interest
    h.ex.rest(CAROL, BUY, usdt("25000"), btc("1"))
    h.ex.rest(CAROL, BUY, usdt("1500"), eth("10"), market=ETH_USDT)
    h.engine.set_index_prices({"BTC": usdt("25000"), "ETH": usdt("1500")})     # everything halves
    assert h.book()["zone"] == 3
    log = liquidate(h, ALICE, "", {"USDT": usdt("1000000")})
    traded = [a[1] for a in log if a[0] == "trade"]
    assert set(traded) == {BTC_USDT, ETH_USDT}                      # both collaterals were sold
    book = h.book()
    proceeds = usdt("5000") - usdt("5") + usdt("4500") - usdt("4.5")     # 0.2 BTC and 3 ETH at the bids, less fees
    assert proceeds > debt and not any(a[0] == "cover" for a in log)   # 9,490.5 against ~9,019 owed
    assert book["available"] == {"BTC": 0, "ETH": 0, "USDT": proceeds - debt} and book["debt"]["USDT"] == 0
    assert not any(h.engine.conservation().values())


@settings(max_examples=300, deadline=None, database=None)
@given(borrow=st.integers(min_value=1, max_value=20_000), transfer=st.integers(min_value=1, max_value=10_000))
def test_borrow_in_flight_counts_as_debt_for_a_transfer_out(borrow, transfer):
    """Issue 11, item 6: a borrow racing a transfer of collateral out of the book can
    never leave the book under the initial line once the pool answers."""
    h = MarginHarness(margin_config())
    shard, prices, initial = h.engine.shard, h.engine.prices, h.engine.config.margin.initial_level_ppm
    events, asked = shard.apply_client(h.cmd(Borrow, ALICE, "USDT", usdt(str(borrow)), ""), PriceContext(None, prices))
    if asked is None:                                   # over the limit anyway: nothing in flight
        return
    moved, _ = shard.apply_client(h.cmd(TransferMargin, ALICE, "USDT", usdt(str(transfer)), to_margin=False),
                                  PriceContext(None, prices))
    for event in h.engine.lending.handle(asked):        # then the pool answers the borrow
        shard.apply_market(event)
    level = h.book()["level_ppm"]
    if type(moved[0]) is OrderRejected:
        assert moved[0].reason == Reason.BELOW_INITIAL_MARGIN_LEVEL
        # it would have broken the line, give or take the started hour's interest (at most 0.01%)
        assert (10_000 - transfer + borrow) * 10**6 // borrow < initial * 1.0001
    else:
        assert level >= initial, (borrow, transfer, level)
    h.engine.check_invariants()


def no_eth_pool_config():
    return custom_config(lambda raw: (raw["margin"].update(markets=[BTC_USDT]), raw["lending"].pop("ETH")))


@pytest.mark.parametrize("build", [
    lambda h: h.cmd(SupplyToPool, BOB, "ETH", eth("1")),
    lambda h: h.cmd(WithdrawFromPool, BOB, "ETH", eth("1")),
    lambda h: h.cmd(Borrow, ALICE, "ETH", eth("1"), ""),
], ids=["supply", "withdraw", "borrow"])
def test_pool_command_for_an_asset_nobody_lends_is_no_lending_pool(build):
    """Was UNKNOWN_ASSET: the asset exists, it has no pool (Core v2 §4)."""
    h = MarginHarness(no_eth_pool_config())
    assert_rejected(h.ex, build(h), Reason.NO_LENDING_POOL)
