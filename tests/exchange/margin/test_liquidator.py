"""The liquidator's policy and the insurance fund in one process (no Ray):
``Engine.run_liquidations`` scans, hands books over to the pure ``Liquidator``
and drives every liquidation to its end through the liquidator's door.

Expected amounts come from the public rules (prices, fees, the fund's seed
capital), and after every command the engine's invariants and conservation of
every asset (the fund's own ledger included) must hold."""
from __future__ import annotations

import pytest
from hypothesis import example, given, settings, strategies as st

from exchange.margin.liquidation import next_action
from exchange.margin.insurance import Cover, InsuranceFund
from exchange.margin.liquidator import (FundDeposited, Hold, LiquidationBegun, Liquidator, account_hash,
                                        fact_from_record, fact_to_record)
from exchange.margin.rules import Zone
from exchange.messages.records import Borrow, EnableMargin, MarginLevelChanged, PlaceMarginOrder, TransferMargin
from tests.exchange.margin.test_margin import MarginHarness, margin_config
from tests.exchange.support import (ALICE, BOB, BTC_USDT, BUY, CAROL, GTC, IOC, LIMIT, MAKER, SELL, btc, custom_config,
                                    eth, usdt)

SEED = {"USDT": usdt("1000000"), "BTC": btc("10"), "ETH": eth("100")}     # [insurance.initial] of the default


def sound(engine) -> None:
    engine.check_invariants()
    assert not any(engine.conservation().values()), engine.conservation()


def checked(engine):
    """An ``on_step`` that checks the invariants and conservation after every command."""
    return lambda send, events: sound(engine)


def long_at_50000(h: MarginHarness, quantity: str = "0.5", market: str = "") -> int:
    """ALICE buys ``quantity`` BTC at 50,000 on margin (auto-borrow); return the USDT debt."""
    h.ex.rest(BOB, SELL, usdt("50000"), btc(quantity))
    h.run(PlaceMarginOrder, ALICE, BTC_USDT, BUY, LIMIT, usdt("50000"), btc(quantity), IOC, isolated=bool(market))
    return h.book(ALICE, market)["debt"]["USDT"]


def empty_fund_config():
    def edit(raw):
        raw["margin"].update(markets=[BTC_USDT])
        raw["insurance"]["initial"] = {}
    return custom_config(edit)


def test_engine_seeds_the_fund_from_the_config_as_recorded_deposits():
    h = MarginHarness(margin_config())
    fund = h.engine.fund
    assert fund.balance == fund.deposited == {a: SEED[a] for a in fund.balance} and not any(fund.bad_debt.values())
    sound(h.engine)


def test_long_cross_gap_below_bankruptcy_is_covered_by_the_fund_and_the_pool_made_whole():
    h = MarginHarness(margin_config())
    debt = long_at_50000(h)
    h.ex.rest(CAROL, BUY, usdt("29000"), btc("1"))           # the price gapped: the only bid is under bankruptcy
    h.crash(usdt("30000"))
    assert h.engine.scan_margin().candidates == [((ALICE, ""), h.book()["level_ppm"])]
    records = h.engine.run_liquidations(7, on_step=checked(h.engine))
    assert len(records) == 1
    record = records[0]
    proceeds = usdt("14500") - usdt("14.5")                   # 0.5 BTC at 29,000 less the 0.1% taker fee
    shortfall = debt - proceeds
    assert record["outcome"] == "finished" and record["account_hash"] == account_hash(ALICE)
    assert "account" not in record and record["mode"] == "cross" and record["started_ns"] == 7
    assert record["fills"] == [{"market": BTC_USDT, "price": usdt("29000"), "quantity": btc("0.5"), "side": SELL}]
    assert record["shortfall"] == {"USDT": shortfall} and record["written_off"] == {}
    assert record["repaid"] == {"USDT": debt}
    assert h.engine.fund.balance["USDT"] == SEED["USDT"] - shortfall        # the fund paid the bad debt
    assert h.engine.fund.bad_debt["USDT"] == shortfall
    assert h.engine.shard.margin.fund_in[h.engine.config.assets["USDT"].index] == shortfall
    assert h.engine.lending.pools["USDT"].loans == {} and h.engine.lending.pools["USDT"].written_off == 0
    assert h.book()["debt"]["USDT"] == 0 and not h.book()["liquidating"]
    assert h.engine.liquidator.in_progress() == [] and h.engine.fund.in_flight == {}
    sound(h.engine)


def test_long_cross_with_a_bid_above_bankruptcy_returns_the_rest_to_the_user():
    h = MarginHarness(margin_config())
    debt = long_at_50000(h)
    h.ex.rest(CAROL, BUY, usdt("32000"), btc("1"))
    h.crash(usdt("32000"))
    [record] = h.engine.run_liquidations(on_step=checked(h.engine))
    proceeds = usdt("16000") - usdt("16")
    assert record["shortfall"] == {} and record["returned"] == {"USDT": proceeds - debt}
    assert h.book()["available"] == {"BTC": 0, "ETH": 0, "USDT": proceeds - debt}
    assert h.engine.fund.balance == SEED | {} and not any(h.engine.fund.bad_debt.values())


def test_cross_book_with_an_open_order_cancels_it_then_sells_its_collateral():
    """The simulator's seed 2 found it: after cancelling the order (a command on the spot
    market) the liquidator read the book under that market, not the cross book, got nothing
    and finished with the debt and the collateral left."""
    h = MarginHarness(margin_config())
    long_at_50000(h)
    h.run(PlaceMarginOrder, ALICE, BTC_USDT, SELL, LIMIT, usdt("70000"), btc("0.1"), GTC)     # rests, holds 0.1 BTC
    assert h.engine.shard.open_orders(ALICE)
    h.ex.rest(CAROL, BUY, usdt("32000"), btc("1"))
    h.crash(usdt("32000"))
    [record] = h.engine.run_liquidations(on_step=checked(h.engine))
    assert record["outcome"] == "finished" and record["fills"][0]["quantity"] == btc("0.5")
    assert h.book()["debt"]["USDT"] == 0 and h.book()["available"]["BTC"] == 0
    assert not h.engine.shard.open_orders(ALICE)
    sound(h.engine)


def test_short_cross_buys_the_borrowed_base_back():
    h = MarginHarness(margin_config())
    h.ex.rest(CAROL, BUY, usdt("50000"), btc("0.3"))
    h.run(PlaceMarginOrder, ALICE, BTC_USDT, SELL, LIMIT, usdt("50000"), btc("0.3"), IOC)
    assert h.book()["principal"]["BTC"] == btc("0.3")
    h.crash(usdt("80000"))                                  # the index first: an ask 60% off it is outside the band
    h.ex.rest(CAROL, SELL, usdt("80000"), btc("1"))
    assert h.engine.scan_margin().zones[(ALICE, "")] is Zone.LIQUIDATION
    [record] = h.engine.run_liquidations(on_step=checked(h.engine))
    assert record["outcome"] == "finished" and record["fills"][0]["side"] == BUY
    assert record["repaid"]["BTC"] >= btc("0.3")
    assert h.book()["debt"]["BTC"] == 0 and h.engine.lending.pools["BTC"].loans == {}
    sound(h.engine)


def test_isolated_liquidation_leaves_the_cross_book_untouched():
    h = MarginHarness(margin_config())
    h.run(TransferMargin, ALICE, "USDT", usdt("1000"), to_margin=True, market=BTC_USDT)
    long_at_50000(h, "0.05", BTC_USDT)
    h.run(Borrow, ALICE, "USDT", usdt("5000"), "")             # a healthy cross position
    cross = h.book()
    h.ex.rest(CAROL, BUY, usdt("32000"), btc("1"))
    h.crash(usdt("32000"))
    [record] = h.engine.run_liquidations(on_step=checked(h.engine))
    assert record["mode"] == "isolated" and record["market"] == BTC_USDT and record["outcome"] == "finished"
    isolated = h.book(ALICE, BTC_USDT)
    assert isolated["debt"]["USDT"] == 0 and isolated["available"]["BTC"] == 0
    assert (h.book()["available"], h.book()["debt"]) == (cross["available"], cross["debt"])
    sound(h.engine)


def test_empty_fund_writes_the_shortfall_off_and_the_suppliers_carry_it():
    h = MarginHarness(empty_fund_config())
    assert not any(h.engine.fund.balance.values())
    debt = long_at_50000(h)
    h.ex.rest(CAROL, BUY, usdt("29000"), btc("1"))
    h.crash(usdt("30000"))
    worth = h.engine.lending.supplier_balance(BOB, "USDT")
    [record] = h.engine.run_liquidations(on_step=checked(h.engine))
    lost = debt - (usdt("14500") - usdt("14.5"))
    assert record["written_off"] == {"USDT": lost} and record["shortfall"] == {}
    assert h.engine.lending.pools["USDT"].written_off == lost and h.engine.lending.pools["USDT"].loans == {}
    assert h.engine.lending.supplier_balance(BOB, "USDT") == worth - lost
    assert not any(h.engine.fund.bad_debt.values())
    sound(h.engine)


def test_no_bid_at_the_widest_limit_holds_the_liquidation_until_the_book_refills():
    h = MarginHarness(margin_config())
    long_at_50000(h)
    h.crash(usdt("30000"))                                     # nobody bids
    assert h.engine.run_liquidations(on_step=checked(h.engine)) == []
    assert h.engine.liquidator.in_progress() == [(ALICE, "")]
    assert set(h.engine.liquidator.held().values()) == {Hold.BOOK}
    h.ex.rest(CAROL, BUY, usdt("29900"), btc("1"))
    [record] = h.engine.run_liquidations(on_step=checked(h.engine))
    assert record["outcome"] == "finished" and h.engine.liquidator.in_progress() == []


def test_a_book_above_the_line_at_the_accepted_prices_is_not_liquidated():
    h = MarginHarness(margin_config())
    long_at_50000(h)
    liquidator = h.engine.liquidator
    level = h.book()["level_ppm"]
    assert liquidator.candidate(0, ALICE, "", level, h.engine.prices)      # at 50,000: healthy
    assert not liquidator.candidate(0, ALICE, "", level, h.engine.prices)  # once
    h.crash(usdt("30000"))                       # the start still carries the prices it was accepted with
    send = liquidator.next_command(1, h.engine.prices, 0)
    assert send.command.request_id == "liq:1:start"
    assert send.command.prices[h.engine.config.assets["BTC"].index] == usdt("50000")
    events = h.engine.apply(send.command)
    liquidator.on_answer("liq:1:start", events, h.engine.margin_view(ALICE, ""), 0)
    assert liquidator.in_progress() == []
    assert (liquidator.records[-1]["outcome"], liquidator.records[-1]["reason"]) == \
        ("not_needed", "NOT_BELOW_LIQUIDATION_LINE")
    liquidator.take_facts()
    h.ex.rest(CAROL, BUY, usdt("29000"), btc("1"))
    [record] = h.engine.run_liquidations(on_step=checked(h.engine))    # the next scan hands it over for real
    assert (record["n"], record["outcome"]) == (2, "finished")


def test_over_the_limit_a_candidate_is_refused_and_handed_over_again_later():
    def edit(raw):
        raw["margin"].update(markets=[BTC_USDT])
        raw["limits"] = {"liquidations_max": 1}
    h = MarginHarness(custom_config(edit))
    for account in (ALICE, CAROL):
        if account == CAROL:
            h.run(EnableMargin, CAROL, "L2", "3x")
            h.run(TransferMargin, CAROL, "USDT", usdt("10000"), to_margin=True, market=BTC_USDT)
        h.ex.rest(BOB, SELL, usdt("50000"), btc("0.5"))
        h.run(PlaceMarginOrder, account, BTC_USDT, BUY, LIMIT, usdt("50000"), btc("0.5"), IOC,
              isolated=account == CAROL)
    h.ex.rest(MAKER, BUY, usdt("29000"), btc("2"))
    h.crash(usdt("30000"))
    liquidator = h.engine.liquidator
    assert liquidator.candidate(0, ALICE, "", 1, h.engine.prices)
    assert not liquidator.candidate(0, CAROL, BTC_USDT, 1, h.engine.prices)   # refused: nothing changed
    assert liquidator.in_progress() == [(ALICE, "")] and liquidator.count == 1

    def at_most_one(send, events):
        assert len(liquidator.active) <= 1
        sound(h.engine)
    records = h.engine.run_liquidations(on_step=at_most_one)
    assert sorted((r["market"], r["outcome"]) for r in records) == [("", "finished"), (BTC_USDT, "finished")]


def test_scan_notifies_each_zone_change_once():
    h = MarginHarness(margin_config())
    long_at_50000(h)
    h.crash(usdt("30000"))
    first = h.engine.scan_margin()
    assert [type(c) for c in first.changes] == [MarginLevelChanged] and first.changes[0].zone == 3
    assert h.engine.scan_margin().changes == []
    assert first.at_risk == {"": 0, BTC_USDT: 0} and first.books == 1


def test_journal_records_round_trip_and_replay_reaches_the_same_state():
    h = MarginHarness(margin_config())
    long_at_50000(h)
    h.ex.rest(CAROL, BUY, usdt("29000"), btc("1"))
    h.crash(usdt("30000"))
    liquidator = h.engine.liquidator
    facts: list = [FundDeposited(a, v) for a, v in SEED.items()]
    h.engine.liquidator.take_facts()
    for key, level in h.engine.scan_margin().candidates:
        liquidator.candidate(0, *key, level, h.engine.prices)
    facts.extend(liquidator.take_facts())
    while sends := liquidator.next_commands(h.engine.prices, 0):
        for send in sends:
            events = h.engine.apply(send.command)
            liquidator.on_answer(send.command.request_id, events, h.engine.margin_view(ALICE, ""), 0)
        facts.extend(liquidator.take_facts())
    assert isinstance(facts[len(SEED)], LiquidationBegun)
    replayed = Liquidator(h.engine.config)
    for fact in facts:
        replayed.apply(fact_from_record(fact_to_record(fact)))
    assert replayed.state_hash() == liquidator.state_hash()
    restored = Liquidator.from_plain(h.engine.config, liquidator.to_plain())
    assert restored.state_hash() == liquidator.state_hash() and restored.public_records() == \
        liquidator.public_records()


def test_a_liquidator_snapshot_of_another_format_is_refused():
    config = margin_config()
    old = {"fund": {"BTC": 5, "ETH": 0, "USDT": 90}, "next_n": 4, "liquidations": 3}     # before Core v2: no format
    for state in (old, {"format": 99}):
        with pytest.raises(ValueError, match="format"):
            Liquidator.from_plain(config, state)


def test_fund_refuses_overdraw_and_counts_every_cover():
    fund = InsuranceFund(["USDT"])
    fund.deposit("USDT", 10)
    with pytest.raises(ValueError):
        fund.deposit("USDT", 0)
    assert fund.cover_amount("USDT", 25) == 10
    fund.draw(Cover("c", 1, 0, ALICE, "", "USDT", 10))
    fund.check_invariants()
    with pytest.raises(AssertionError):
        fund.draw(Cover("d", 1, 0, ALICE, "", "USDT", 1))
    fund.settle("c")
    fund.settle("c")
    assert fund.credited == {"USDT": 10} and fund.balance == {"USDT": 0} and fund.bad_debt == {"USDT": 10}
    fund.check_invariants()
    assert InsuranceFund.from_plain(["USDT"], fund.to_plain()).state_hash() == fund.state_hash()


BOOKS = [(ALICE, "", BUY), (ALICE, BTC_USDT, SELL), (CAROL, "", SELL), (CAROL, BTC_USDT, BUY)]


@settings(max_examples=30, deadline=None, database=None)
@example(fund_usdt="200", path=[-20, -20, 50, 50], sizes=["0.55", "0.3", "0.3", "0.3"])    # cover, then write-off
@example(fund_usdt="1000000", path=[30, 30, -40, -40], sizes=["0.3", "0.3", "0.55", "0.55"])  # shorts, then longs
@given(fund_usdt=st.sampled_from(["0", "200", "1000000"]),
       path=st.lists(st.integers(min_value=-30, max_value=30), min_size=2, max_size=6),
       sizes=st.lists(st.sampled_from(["0.1", "0.3", "0.55"]), min_size=4, max_size=4))
def test_every_liquidation_finishes_and_every_asset_is_conserved_on_random_price_paths(fund_usdt, path, sizes):
    def edit(raw):
        raw["margin"].update(markets=[BTC_USDT])
        raw["insurance"]["initial"] = {"USDT": fund_usdt, "BTC": "0.01"}
    h = MarginHarness(custom_config(edit))
    h.run(EnableMargin, CAROL, "L2", "3x")
    h.run(TransferMargin, CAROL, "USDT", usdt("10000"), to_margin=True)
    for account in (ALICE, CAROL):
        h.run(TransferMargin, account, "USDT", usdt("10000"), to_margin=True, market=BTC_USDT)
    for (account, market, side), size in zip(BOOKS, sizes):      # longs borrow USDT, shorts borrow BTC
        maker = h.ex.place(MAKER, SELL if side == BUY else BUY, usdt("50000"), btc(size))[0].order_id
        h.run(PlaceMarginOrder, account, BTC_USDT, side, LIMIT, usdt("50000"), btc(size), IOC, isolated=bool(market))
        h.ex.cancel(MAKER, maker)                  # what a refused margin order left resting
    sound(h.engine)
    price, ts = usdt("50000"), 0
    for move in path:
        price = max(usdt("5000"), price * (100 + move) // 100 // usdt("10") * usdt("10"))
        h.crash(price)
        ts += 1
        bid = h.ex.rest(MAKER, BUY, price * 97 // 100 // usdt("10") * usdt("10"), btc("5"))    # a market to trade in
        ask = h.ex.rest(MAKER, SELL, price * 103 // 100 // usdt("10") * usdt("10"), btc("5"))
        records = h.engine.run_liquidations(ts, on_step=checked(h.engine))
        assert h.engine.liquidator.in_progress() == [], h.engine.liquidator.held()
        assert all(r["outcome"] in ("finished", "not_needed") for r in records)
        for record in records:
            if record["outcome"] == "finished":
                assert record["remaining_debt"] == {}
        h.ex.cancel(MAKER, bid)
        h.ex.cancel(MAKER, ask)
        sound(h.engine)
    assert not h.engine.scan_margin().candidates


def test_a_book_holding_what_it_owes_is_repaid_before_finishing_even_when_its_markets_are_exhausted():
    """The simulator's seed 73 found it: a borrow that landed during the liquidation left the
    book owing USDT while holding more USDT, with its only market exhausted (no asks to buy
    the BTC back): the liquidator finished with the debt left instead of sending a step,
    which repays held debt first."""
    view = {"debt": {"BTC": 0, "ETH": 0, "USDT": 2_526}, "available": {"BTC": 0, "ETH": 0, "USDT": 52_047}}
    lots = {BTC_USDT: ("BTC", "USDT", 1)}
    assert next_action(view, [], lots) == ("finish",)                           # nothing to trade at, no way to repay
    assert next_action(view, [], lots, repay_market=BTC_USDT) == ("trade", BTC_USDT)
    repaid = {"debt": {"BTC": 0, "ETH": 0, "USDT": 0}, "available": {"BTC": 0, "ETH": 0, "USDT": 49_521}}
    assert next_action(repaid, [], lots, repay_market=BTC_USDT) == ("finish",)
