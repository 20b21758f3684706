"""The perpetual income (``exchange.accounts.income``, through ``History``) against the engine it
follows: after random perpetual trades and fundings through the real Engine, each account's
FUNDING_FEE entries sum to minus the funding its position paid, its REALIZED_PNL entries to
the PnL it realized and its COMMISSION entries to minus the fees it paid, entry by entry as
the events said; transaction numbers only go up. Then the window, the bound, and a
snapshot round trip."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings, strategies as st

from exchange.accounts.history import History
from exchange.accounts.income import Income, IncomeKind
from exchange.messages.records import FundingPaid, PositionChanged
from tests.exchange.perp.test_desk import ALICE, BOB, CAROL, PERP, SELL, harness
from tests.exchange.support import BUY, IOC, btc, usdt

HOUR_NS = 3600 * 10**9
ACCOUNTS = (ALICE, BOB, CAROL)

trades = st.tuples(st.just("trade"), st.sampled_from(ACCOUNTS), st.sampled_from(ACCOUNTS),
                   st.sampled_from((BUY, SELL)), st.integers(-200, 200), st.integers(1, 400))
fundings = st.tuples(st.just("fund"), st.integers(-40, 40))     # the book's premium over the index, in ticks x 100


def history_of(events: list, income_max: int = 10**6) -> History:
    history = History(10**6, 10**6, {PERP: 8}.__getitem__, income_max=income_max)
    history.record(events, lambda account: True)
    return history


def run(ops: list):
    """The engine after ``ops`` and every event it gave."""
    ex = harness()
    for account in ACCOUNTS:
        ex.apply(ex.risk_cmd(account, 3))
    engine, events, ts = ex.engine, [], 8 * HOUR_NS * 1000
    pricer = engine.pricers[PERP]
    for op in ops:
        if op[0] == "trade":
            _, maker, taker, side, offset, lots = op
            if maker == taker:
                continue
            price = usdt("40000") + offset * usdt("1")
            events += ex.perp(maker, side, price, btc("0.001") * lots)
            events += ex.perp(taker, BUY if side == SELL else SELL, price, btc("0.001") * lots, tif=IOC)
            for order in list(engine.shard.perp.accounts[maker].orders):       # nothing left resting
                events += ex.apply(ex.perp_cancel_cmd(maker, order))
        else:
            premium = op[1] * 100
            for step in range(3):                 # samples across the interval, then its end
                ts += 8 * HOUR_NS // 3
                pricer.update(ts, 400_000, 400_000 + premium, 400_010 + premium, None)
                engine.shard.perp.set_mark(PERP, 400_000, pricer.mark)
                events += engine.run_funding(ts)
    return ex, events


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(trades, fundings), min_size=1, max_size=25))
def test_the_income_agrees_with_the_positions_after_any_trades_and_fundings(ops):
    ex, events = run(ops)
    history = history_of(events)
    desk = ex.engine.shard.perp
    for account in ACCOUNTS:
        kept = history.income.account(account, limit=10**6)
        position = desk.accounts[account].positions.get(PERP)
        by_kind = {kind: sum(e["amount"] for e in kept if e["kind"] == kind) for kind in IncomeKind}
        assert by_kind[IncomeKind.FUNDING_FEE] == -(position.funding if position else 0)
        assert by_kind[IncomeKind.REALIZED_PNL] == (position.realized if position else 0)
        assert by_kind[IncomeKind.COMMISSION] == -(position.fees if position else 0)
        paid = [e for e in events if type(e) is FundingPaid and e.account_id == account]
        assert [(e["ts_ns"], e["rate"], e["amount"]) for e in kept if e["kind"] == IncomeKind.FUNDING_FEE] == \
            [(e.ts_ns, e.rate, -e.amount) for e in paid]
        fills = [e for e in events if type(e) is PositionChanged and e.account_id == account]
        assert [e["trade_id"] for e in kept if e["kind"] == IncomeKind.COMMISSION] == [e.seq for e in fills if e.fee]
        assert all(e["market"] == PERP for e in kept)
    numbers = [entry[0] for entry in history.income.state()["entries"]]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    again = History(10**6, 10**6, {PERP: 8}.__getitem__)
    again.restore(history.state())
    assert again.state() == history.state()
    assert all(again.income.account(a, limit=10**6) == history.income.account(a, limit=10**6) for a in ACCOUNTS)


def paid(account: int, seq: int, amount: int) -> FundingPaid:
    return FundingPaid(PERP, seq, seq * HOUR_NS, account, 10_000, amount)


def test_funding_payments_are_income_of_the_opposite_sign_and_a_fill_both_pnl_and_commission():
    income = Income(100)
    income.record(paid(1, 1, 4_000))
    income.record(PositionChanged(PERP, 7, 2 * HOUR_NS, 1, 11, 0, 0, 5_000, 12, 0))
    income.record(PositionChanged(PERP, 8, 3 * HOUR_NS, 1, 12, 0, 0, 0, -3, 0))     # a maker's rebate, nothing realized
    rows = [(e["kind"], e["amount"], e["trade_id"], e["tran_id"]) for e in income.account(1)]
    assert rows == [(IncomeKind.FUNDING_FEE, -4_000, 0, 1), (IncomeKind.REALIZED_PNL, 5_000, 7, 2),
                    (IncomeKind.COMMISSION, -12, 7, 3), (IncomeKind.COMMISSION, 3, 8, 4)]
    assert income.account(2) == [] and income.account(1, kind=IncomeKind.COMMISSION, limit=1)[0]["tran_id"] == 4
    assert [e["tran_id"] for e in income.account(1, market="ETH-USDT-PERP")] == []


def test_the_window_is_the_first_limit_from_start_time_else_the_newest():
    income = Income(100)
    for seq in range(1, 11):
        income.record(paid(1, seq, seq))
    times = lambda rows: [e["ts_ns"] // HOUR_NS for e in rows]          # noqa: E731
    assert times(income.account(1, limit=3)) == [8, 9, 10]
    assert times(income.account(1, start_ns=4 * HOUR_NS, limit=3)) == [4, 5, 6]
    assert times(income.account(1, start_ns=4 * HOUR_NS, end_ns=5 * HOUR_NS)) == [4, 5]
    assert times(income.account(1, end_ns=2 * HOUR_NS)) == [1, 2] and income.account(1, limit=0) == []


def test_the_oldest_entries_go_first_whoever_they_belong_to_and_numbers_go_on():
    income = Income(4)
    for seq in range(1, 8):
        income.record(paid(1 + seq % 2, seq, seq))
    assert [e[0] for e in income.state()["entries"]] == [4, 5, 6, 7] and income.last_id == 7
    assert [e["tran_id"] for e in income.account(1)] == [4, 6] and len(income.owners) == 4
    again = Income(4)
    again.restore(income.state())
    again.record(paid(3, 8, 8))
    assert again.account(3)[0]["tran_id"] == 8 and [e[0] for e in again.state()["entries"]] == [5, 6, 7, 8]
