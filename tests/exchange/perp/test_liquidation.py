"""Perpetual liquidation in the Engine: take-over at the mark, the book at the bankruptcy
price (a surplus to the fund, exactly), a worse fill paid by the fund (exactly the gap),
ADL for what neither absorbs (rank order, only what is needed), the per-second limit, the
liquidator's rejections, and a flash crash after which nobody's equity is negative, every
unit is accounted for and the fund's chain explains its balance."""
from __future__ import annotations

import random

from exchange.core.reasons import Reason
from exchange.core.routing import house_account
from exchange.messages.records import (AbsorbDeleverage, CancelPerpOrder, DeleveragePerp, FinishPerpLiquidation,
                                       FundingDue, LiquidationOrderPerp, MarkUpdated, SweepPerpFees, TakeOverPerp)
from exchange.perp.fund import EntryKind, verify
from exchange.perp.prices import liquidation_price
from tests.exchange.perp.test_desk import (ALICE, BOB, BUY, CAROL, K, PERP, SELL, PerpHarness, _long, check, harness,
                                           names, perp_config)
from tests.exchange.support import assert_rejected, btc, funded_harness, usdt

TS = 10**15


def isolated_long(ex: PerpHarness, leverage: int = 10, qty: str = "1"):
    """Alice: an isolated long of ``qty`` BTC at 40,000 at ``leverage`` (Bob sells it to her)."""
    ex.apply(ex.mode_cmd(ALICE, True))
    ex.apply(ex.leverage_cmd(ALICE, leverage))
    _long(ex, account=ALICE, qty=qty)


def mark_at(ex: PerpHarness, ticks: int) -> None:
    """The market's mark (and index) at ``ticks``, as a market event: zones follow."""
    ex.engine.shard.perp.apply_event(MarkUpdated(PERP, 0, TS, ticks, ticks))


def entries(ex) -> list:
    return [(e.kind, e.amount) for e in ex.engine.perp_fund.entries]


def fund_verifies(ex) -> None:
    fund = ex.engine.perp_fund
    assert verify([e.to_plain() for e in fund.entries], fund.balances, fund.head) == []


def test_a_fill_better_than_bankruptcy_grows_the_fund_by_exactly_the_difference():
    ex = harness()
    isolated_long(ex)                                     # margin 4,000: bankruptcy 36,000
    assert ex.view(ALICE)["bankruptcy_price"] == 360_000
    ex.perp(CAROL, BUY, usdt("36500"), btc("1"))          # a bid at 36,500
    mark_at(ex, 361_000)                                  # under the liquidation price, 36,180.9
    records = ex.engine.run_perp_liquidations(TS)
    assert len(records) == 1 and records[0]["fund"] == {PERP: usdt("500")}
    assert entries(ex) == [(EntryKind.LIQUIDATION_SURPLUS, usdt("500"))]     # (36,500 - 36,000) x 1
    assert ex.view(ALICE)["lots"] == 0 and ex.cash(ALICE) == usdt("100000") - usdt("4000") - usdt("40")
    assert ex.engine.shard.perp.accounts[CAROL].positions[PERP].lots == 1_000
    fund_verifies(ex)
    check(ex)


def test_a_fill_worse_than_bankruptcy_is_paid_by_the_fund_exactly_the_gap():
    ex = harness()
    ex.engine.top_up_perp_fund(PERP, usdt("10000"), TS)
    isolated_long(ex)
    ex.perp(CAROL, BUY, usdt("35500"), btc("1"))          # the book gapped below bankruptcy (36,000)
    mark_at(ex, 350_000)
    records = ex.engine.run_perp_liquidations(TS)
    assert records[0]["fund"] == {PERP: -usdt("500")}
    assert entries(ex) == [(EntryKind.TOP_UP, usdt("10000")), (EntryKind.BANKRUPTCY_LOSS, -usdt("500"))]
    assert ex.engine.perp_fund.balances[PERP] == usdt("9500")
    assert ex.cash(ALICE) == usdt("95960")                # she loses her margin and no more
    fund_verifies(ex)
    check(ex)


def deleverage_scenario() -> PerpHarness:
    """Alice's isolated 1.5 long at 40,000 at 10x, a mark of 35,000, one bid far below, a fund of
    100 (pays at most 50), and two shorts to deleverage: Bob (cross) 1, Carol (isolated 10x) 0.5."""
    ex = harness()
    ex.engine.top_up_perp_fund(PERP, usdt("100"), TS)     # pays at most 50: 0.05 a BTC
    ex.apply(ex.mode_cmd(ALICE, True))
    ex.apply(ex.leverage_cmd(ALICE, 10))
    ex.apply(ex.mode_cmd(CAROL, True))
    ex.apply(ex.leverage_cmd(CAROL, 10))
    ex.perp(BOB, SELL, usdt("40000"), btc("1"))           # Bob short 1 (cross: his whole wallet behind it)
    ex.perp(CAROL, SELL, usdt("40000"), btc("0.5"))       # Carol short 0.5, isolated 10x: more leveraged
    ex.perp(ALICE, BUY, usdt("40000"), btc("1.5"))
    ex.perp(BOB, BUY, usdt("30000"), btc("0.1"))          # the only bid, far below
    mark_at(ex, 350_000)
    return ex


def test_what_neither_the_book_nor_the_fund_absorbs_is_deleveraged_in_rank_order_and_only_as_needed():
    ex = deleverage_scenario()
    desk = ex.engine.shard.perp
    carol_cash, bob_cash = ex.cash(CAROL), ex.cash(BOB)
    records = ex.engine.run_perp_liquidations(TS)
    assert len(records) == 1
    # Alice's 1.5 long from 40,000 at 10x (margin 6,000) at a mark of 35,000: -1,500 taken over (a gap);
    # the bid at 30,000 is beyond what the fund (50 of its 100) can pay: everything is deleveraged at
    # the bankruptcy price, 36,000, where the liquidation's equity comes back to exactly 0.
    assert records[0]["equity_taken"] == -usdt("1500") and records[0]["fund"] == {PERP: 0}
    assert [kind for kind, _ in entries(ex)] == [EntryKind.TOP_UP, EntryKind.ADL_START, EntryKind.ADL_END]
    start = dict(ex.engine.perp_fund.entries[1].details)
    assert start["bankruptcy_price"] == 360_000 and start["lots"] == 1_500 and start["mark"] == 350_000
    # Carol: profit 5,000 / 40,000 = 1/8, leverage 17,500 / (2,000 + 2,500) -> 35/72; Bob: 1/8 x 35,000 /
    # (his wallet 99,960 + 5,000) -> 875/20,992. Carol first, all of her 0.5; then 1.0 of Bob: no more.
    ranked = [r.split(":")[1] for r in start["ranked"].split(";")]
    assert ranked == ["35/72", "875/20992"]
    taken = dict(ex.engine.perp_fund.entries[2].details)["taken"].split(";")
    assert [t.split(":")[1] for t in taken] == ["500", "1000"]
    assert desk.accounts[CAROL].positions[PERP].lots == 0 and desk.accounts[BOB].positions[PERP].lots == 0
    # Carol closed at the bankruptcy price 36,000: she realized (40,000 - 36,000) x 0.5 and got her margin back
    assert ex.cash(CAROL) == carol_cash + usdt("2000") + usdt("2000")
    assert ex.cash(BOB) == bob_cash + usdt("4000")                    # (40,000 - 36,000) x 1
    fund_verifies(ex)
    check(ex)


def test_liquidation_orders_respect_the_market_s_notional_per_second():
    ex = harness(perp_config(liquidation_notional="20000"))
    isolated_long(ex)
    ex.perp(CAROL, BUY, usdt("36500"), btc("1"))
    mark_at(ex, 361_000)
    assert ex.engine.run_perp_liquidations(TS) == []                  # 20,000 / 36,000: 555 lots this second
    record = ex.engine.shard.perp.liquidations[1]
    assert record.positions[PERP].lots == 1_000 - 555
    assert ex.engine.run_perp_liquidations(TS + 10**8) == []          # the same second: nothing more
    assert record.positions[PERP].lots == 445
    # funding while it holds lots: they pay their share (361,000 x 100 x 0.01% = 3,610 a lot) from its
    # equity, beside Carol's 555 long lots, to Bob's 1,000 short ones: it still sums to zero
    engine, before = ex.engine, record.results[PERP]
    paid = engine.shard.apply_market(FundingDue(PERP, engine.markets[PERP].next_seq(), TS, 10_000, 361_000))
    assert {e.account_id: e.amount for e in paid} == {CAROL: 555 * 3_610, BOB: -1_000 * 3_610}
    assert record.results[PERP] == before - 445 * 3_610
    check(ex)
    finished = ex.engine.run_perp_liquidations(TS + 10**9)            # the next second finishes it
    assert len(finished) == 1 and not ex.engine.shard.perp.liquidations
    check(ex)


def test_the_position_view_s_liquidation_price_is_where_the_liquidator_takes_over():
    ex = harness()
    isolated_long(ex)
    ex.perp(CAROL, BUY, usdt("30000"), btc("1"))
    price = ex.view(ALICE)["liquidation_price"]
    tiers = ex.engine.perps[PERP].tiers
    assert price == liquidation_price(1_000, 1_000 * 400_000 * K, usdt("4000"), K, tiers) == 361_809
    mark_at(ex, price + 1)
    assert ex.engine.run_perp_liquidations(TS) == [] and not ex.engine.shard.perp.liquidations
    mark_at(ex, price)
    assert ex.engine.run_perp_liquidations(TS) and ex.view(ALICE)["lots"] == 0
    check(ex)


# ---- the liquidator's door: every rejection, no change -------------------------------------

def _liq(ex, cls, *fields):
    rid, ts = ex.next_ids()
    return cls(rid, ts, *fields)


def _taken_over(ex):
    isolated_long(ex)
    mark_at(ex, 361_000)
    assert names(ex.engine.apply(_liq(ex, TakeOverPerp, ALICE, PERP, 7))) == ["PerpLiquidationUpdate"]


SCENARIOS = {
    "take_over_healthy": (Reason.POSITION_NOT_LIQUIDATABLE,
                          lambda ex: (isolated_long(ex), _liq(ex, TakeOverPerp, ALICE, PERP, 1))[1]),
    "take_over_no_position": (Reason.NO_POSITION, lambda ex: _liq(ex, TakeOverPerp, ALICE, PERP, 1)),
    "take_over_cross_when_isolated": (Reason.NO_POSITION,
                                      lambda ex: (isolated_long(ex), _liq(ex, TakeOverPerp, ALICE, "", 1))[1]),
    "take_over_unknown_account": (Reason.UNKNOWN_ACCOUNT, lambda ex: _liq(ex, TakeOverPerp, 99, PERP, 1)),
    "take_over_unknown_market": (Reason.UNKNOWN_MARKET, lambda ex: _liq(ex, TakeOverPerp, ALICE, "X-PERP", 1)),
    "take_over_orders_open": (Reason.PERP_ORDERS_OPEN,
                              lambda ex: (isolated_long(ex), ex.perp(ALICE, SELL, usdt("45000"), btc("0.5")),
                                          mark_at(ex, 361_000), _liq(ex, TakeOverPerp, ALICE, PERP, 1))[3]),
    "take_over_number_taken": (Reason.UNKNOWN_LIQUIDATION,
                               lambda ex: (_taken_over(ex), _liq(ex, TakeOverPerp, BOB, PERP, 7))[1]),
    "order_unknown_liquidation": (Reason.UNKNOWN_LIQUIDATION,
                                  lambda ex: _liq(ex, LiquidationOrderPerp, ALICE, PERP, 3, usdt("36000"), btc("1"))),
    "order_too_big": (Reason.ABOVE_MAX_SIZE,
                      lambda ex: (_taken_over(ex), _liq(ex, LiquidationOrderPerp, ALICE, PERP, 7, usdt("36000"),
                                                        btc("1.001")))[1]),
    "order_off_tick": (Reason.OFF_TICK_PRICE,
                       lambda ex: (_taken_over(ex), _liq(ex, LiquidationOrderPerp, ALICE, PERP, 7, usdt("36000.01"),
                                                         btc("1")))[1]),
    "finish_not_done": (Reason.LIQUIDATION_NOT_DONE,
                        lambda ex: (_taken_over(ex), _liq(ex, FinishPerpLiquidation, ALICE, 7))[1]),
    "finish_unknown": (Reason.UNKNOWN_LIQUIDATION, lambda ex: _liq(ex, FinishPerpLiquidation, ALICE, 7)),
    "deleverage_too_much": (Reason.CANNOT_DELEVERAGE,                  # Bob is short 1: the sign is a short's
                            lambda ex: (_long(ex), _liq(ex, DeleveragePerp, BOB, PERP, 7, -btc("1.001"),
                                                        usdt("36000")))[1]),
    "deleverage_other_side": (Reason.CANNOT_DELEVERAGE,                # a long's sign for Bob's short
                              lambda ex: (_long(ex), _liq(ex, DeleveragePerp, BOB, PERP, 7, btc("1"),
                                                          usdt("36000")))[1]),
    "deleverage_no_position": (Reason.NO_POSITION,
                               lambda ex: _liq(ex, DeleveragePerp, CAROL, PERP, 7, btc("1"), usdt("36000"))),
    "absorb_unknown": (Reason.UNKNOWN_LIQUIDATION,
                       lambda ex: _liq(ex, AbsorbDeleverage, ALICE, PERP, 9, btc("1"), usdt("36000"))),
    "absorb_too_much": (Reason.CANNOT_DELEVERAGE,
                        lambda ex: (_taken_over(ex), _liq(ex, AbsorbDeleverage, ALICE, PERP, 7, btc("2"),
                                                          usdt("36000")))[1]),
    "liquidator_cancel_unknown": (Reason.ORDER_NOT_FOUND, lambda ex: _liq(ex, CancelPerpOrder, ALICE, PERP, 5)),
    "fee_sweep_ahead": (Reason.FEE_SWEEP_AHEAD,                         # the fund claims more than was moved
                        lambda ex: (_long(ex), _liq(ex, SweepPerpFees, house_account(0, 1), PERP, 1))[1]),
    "fee_sweep_unknown_market": (Reason.UNKNOWN_MARKET,
                                 lambda ex: _liq(ex, SweepPerpFees, house_account(0, 1), "X-PERP", 0)),
}


def test_every_liquidator_rejection_names_its_reason_and_changes_nothing():
    for name, (reason, build) in SCENARIOS.items():
        ex = harness()
        assert_rejected(ex, build(ex), reason)
        check(ex)


def test_a_client_cannot_send_the_liquidator_s_commands():
    from exchange.accounts.access import Role
    ex = harness()
    isolated_long(ex)
    mark_at(ex, 361_000)
    events = ex.engine.apply(_liq(ex, TakeOverPerp, ALICE, PERP, 1), Role.CLIENT)
    assert names(events) == ["OrderRejected"] and events[0].reason == Reason.NOT_PERMITTED


# ---- the flash crash -----------------------------------------------------------------------

def flash_crash(seed: int):
    """40 leveraged longs (cross and isolated, 5-25x) against 4 shorts; a thin ladder of bids
    under the market; the index falls 30% in one second; the cascade runs."""
    rng = random.Random(seed)
    config = perp_config(liquidation_notional="1000000000")
    base = funded_harness(config, accounts={a: "regular" for a in range(1, 50)})
    ex = PerpHarness(base.engine)
    ex.counter = base.counter
    engine = ex.engine
    engine.set_index_prices({"BTC": usdt("40000")})
    engine.mark_perps(TS)
    seed_capital = rng.choice([0, 2000, 20000])
    if seed_capital:
        engine.top_up_perp_fund(PERP, usdt(str(seed_capital)), TS)
    longs, shorts, bidders = range(1, 41), range(41, 45), range(45, 50)
    for account in range(1, 50):
        assert names(ex.apply(ex.perp_transfer_cmd(account, usdt("2000000" if account > 40 else "20000")))) \
            == ["PerpTransferred"]
    for account in shorts:
        ex.apply(ex.risk_cmd(account, 9))
        ex.apply(ex.leverage_cmd(account, 5))
    for account in longs:
        if rng.random() < 0.5:
            ex.apply(ex.mode_cmd(account, True))
        ex.apply(ex.leverage_cmd(account, rng.randint(5, 25)))
        qty = rng.choice(["0.5", "1", "1.5", "2"])
        seller = rng.choice(list(shorts))
        ex.perp(seller, SELL, usdt("40000"), btc(qty))
        events = ex.perp(account, BUY, usdt("40000"), btc(qty))
        assert "PositionChanged" in names(events), (account, events)
    for i, account in enumerate(bidders):                     # a thin ladder: 0.3 BTC a level, 28k-36k
        ex.perp(account, BUY, usdt(str(36000 - 2000 * i)), btc("0.3"))
    crash_ts = TS + 10**9
    engine.set_index_prices({"BTC": usdt("28000")})
    engine.mark_perps(crash_ts)
    return ex, engine.run_perp_liquidations(crash_ts)


def test_a_flash_crash_cascade_leaves_no_negative_equity_and_the_fund_explains_every_unit():
    seen = set()
    for seed in range(6):
        ex, records = flash_crash(seed)
        engine, desk = ex.engine, ex.engine.shard.perp
        assert records and not desk.liquidations and not engine.perp_liquidator.open
        assert engine.run_perp_liquidations(TS + 2 * 10**9) == []              # nothing left due
        q = engine.config.assets["USDT"].index
        for account_id, wallet in desk.accounts.items():
            assert wallet.cash[q] >= 0, (seed, account_id)
            unrealized, _, _ = desk._cross(wallet, q)
            assert wallet.cash[q] + unrealized >= 0, (seed, account_id)       # cross equity
            for name, position in wallet.positions.items():
                if position.lots and position.margin:                        # isolated equity
                    assert position.margin + desk.position_view(account_id, name)["unrealized"] >= 0, seed
        assert sum(p.lots for w in desk.accounts.values() for p in w.positions.values()) == 0
        fund_verifies(ex)
        check(ex)                                              # every unit: wallets, margins, claims, fees, fund
        entries_ = engine.perp_fund.entries
        for start, end in zip([e for e in entries_ if e.kind == EntryKind.ADL_START],
                              [e for e in entries_ if e.kind == EntryKind.ADL_END]):
            taken = [int(t.split(":")[1]) for t in dict(end.details)["taken"].split(";")]
            assert sum(taken) == dict(start.details)["lots"] and dict(end.details)["left"] == 0   # exactly
        seen |= {e.kind for e in entries_}
    assert {EntryKind.ADL_START, EntryKind.BANKRUPTCY_LOSS, EntryKind.LIQUIDATION_SURPLUS} <= seen


def test_an_order_closing_a_position_past_its_bankruptcy_price_is_refused_and_changes_nothing():
    """Seed 14 of the simulator found it: an isolated long under water could sell below its
    bankruptcy price and the fill took the loss beyond its margin out of the wallet's cash.
    Alice's 10x long from 40,000 (margin 4,000) goes bankrupt at 36,000: a sell limit below it
    is refused; at it, accepted."""
    ex = harness()
    isolated_long(ex)
    assert ex.view(ALICE)["bankruptcy_price"] == 360_000
    assert_rejected(ex, ex.perp_cmd(ALICE, SELL, usdt("35999.9"), btc("1")), Reason.INSUFFICIENT_BALANCE)
    assert names(ex.perp(ALICE, SELL, usdt("36000"), btc("1")))[0] == "OrderAccepted"
    check(ex)
