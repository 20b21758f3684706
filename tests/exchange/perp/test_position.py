"""A perpetual position: cost basis, realized and unrealized PnL, flips; PnL is zero-sum."""
from __future__ import annotations

from hypothesis import given, strategies as st

from exchange.perp.position import Position

K = 100


def test_adding_reducing_and_flipping_by_hand():
    p = Position()
    assert p.fill(10, 1_000, K) == 0 and p.fill(10, 1_100, K) == 0
    assert (p.lots, p.basis) == (20, 2_100_000)                     # entry 1,050 ticks, exact
    assert p.unrealized(1_200, K) == 20 * 1_200 * K - 2_100_000 == 300_000
    assert p.fill(-5, 1_200, K) == 5 * 1_200 * K - 525_000 == 75_000   # a quarter of the basis released
    assert (p.lots, p.basis, p.realized) == (15, 1_575_000, 75_000)
    assert p.fill(-20, 900, K) == 15 * 900 * K - 1_575_000 == -225_000  # closes 15, opens a short of 5
    assert (p.lots, p.basis, p.realized) == (-5, -450_000, -150_000)
    assert p.unrealized(800, K) == 50_000                            # the short gains as the price falls
    p.check_invariants()


def test_a_partial_close_realizes_no_more_than_exact_and_keeps_the_rest_in_the_basis():
    p = Position()
    p.fill(3, 1, 1)                                                   # basis 3 over 3 lots, then 1 lot out
    assert p.fill(-1, 2, 1) == 2 - 1 and p.basis == 2
    q = Position()
    q.fill(3, 1, 1)
    q.fill(3, 2, 1)                                                   # basis 9 over 6 lots: 1.5 a lot
    assert q.fill(-1, 2, 1) == 0 and q.basis == 7                     # 2 released (1.5 rounded up)
    s = Position()
    s.fill(-3, 1, 1)
    s.fill(-3, 2, 1)                                                  # a short: basis -9
    assert s.fill(1, 1, 1) == 0 and s.basis == -8                     # -1 released (-1.5 toward zero)


fills = st.lists(st.tuples(st.integers(-50, 50), st.integers(1, 5_000)), max_size=60)


@given(fills, st.integers(1, 5_000))
def test_two_accounts_trading_with_each_other_have_pnl_that_sums_to_zero(trades, mark):
    """Every fill is one account's buy and the other's sell: realized + unrealized over
    both is zero at any mark, and each equals its own cash flows plus its position's value."""
    a, b = Position(), Position()
    cash_a = 0
    for lots, price in trades:
        a.fill(lots, price, K)
        b.fill(-lots, price, K)
        cash_a -= lots * price * K
        a.check_invariants(), b.check_invariants()
    pnl_a = a.realized + a.unrealized(mark, K)
    pnl_b = b.realized + b.unrealized(mark, K)
    assert pnl_a + pnl_b == 0
    assert pnl_a == cash_a + a.lots * mark * K
    assert a.lots == -b.lots


@given(fills)
def test_the_realized_pnl_of_a_round_trip_is_exactly_what_the_fills_paid_and_received(trades):
    p = Position()
    cash = 0
    for lots, price in trades:
        p.fill(lots, price, K)
        cash -= lots * price * K
    if p.lots:
        cash -= -p.lots * 777 * K
        p.fill(-p.lots, 777, K)                                       # close it all at one price
    assert p.lots == 0 and p.basis == 0 and p.realized == cash
