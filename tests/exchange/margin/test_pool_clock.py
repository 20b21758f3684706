"""The pools' clock belongs to the pool (issue 11, item 4): a request's ``ts_ns``
never turns a pool's hour, only an accrual does, and an accrual far ahead
cannot wedge a pool."""
from __future__ import annotations

import time

from exchange.margin.lending import HOUR_NS, MAX_ACCRUAL_HOURS
from exchange.messages.records import Borrow, EnableMargin, SupplyToPool, TransferMargin
from exchange.core.money import INT64_MAX
from tests.exchange.support import ALICE, BOB, funded_harness, usdt

T0 = 1_000 * HOUR_NS
YEAR_NS = 365 * 24 * HOUR_NS


def borrowing_harness():
    ex = funded_harness()
    ex.engine.set_index_prices({"BTC": usdt("50000"), "ETH": usdt("3000"), "USDT": usdt("1")})
    ex.engine.accrue(T0)
    assert ex.apply(SupplyToPool("s", T0, BOB, "USDT", usdt("50000")))[-1].amount == usdt("50000")
    ex.apply(EnableMargin("e", T0, ALICE, "L1", "3x"))
    ex.apply(TransferMargin("t", T0, ALICE, "USDT", usdt("1000"), True, ""))
    assert type(ex.apply(Borrow("b", T0, ALICE, "USDT", usdt("900"), ""))[-1]).__name__ == "Borrowed"
    return ex


def debt(ex) -> int:
    desk = ex.engine.shard.margin
    return desk.debt(desk.book(ALICE, ""), ex.engine.config.assets["USDT"].index)


def test_a_request_stamped_a_year_ahead_charges_nobody_interest():
    ex = borrowing_harness()
    owed = debt(ex)
    ex.apply(SupplyToPool("far", T0 + YEAR_NS, BOB, "USDT", usdt("1")))
    assert debt(ex) == owed
    assert ex.engine.lending.pools["USDT"].hour == T0 // HOUR_NS


def test_only_an_accrual_turns_the_hour_and_then_interest_is_charged():
    ex = borrowing_harness()
    owed = debt(ex)
    ex.engine.accrue(T0 + 2 * HOUR_NS)
    assert debt(ex) > owed


def test_an_accrual_at_the_end_of_time_turns_at_most_a_year_and_returns_promptly():
    ex = borrowing_harness()
    started = time.perf_counter()
    ex.engine.accrue(INT64_MAX)
    pool = ex.engine.lending.pools["USDT"]
    assert pool.hour == T0 // HOUR_NS + MAX_ACCRUAL_HOURS
    assert time.perf_counter() - started < 5 and pool.index < 2 ** 63
    ex.engine.check_invariants()
