"""Stored integers fit in signed 64 bits: deposits that would overflow a total are refused."""
from __future__ import annotations

from exchange.config import load_config
from exchange.engine import Engine
from exchange.messages.records import BalanceChanged, Deposit, OpenAccount, OrderRejected
from exchange.core.money import INT64_MAX
from exchange.core.reasons import Reason


def test_deposit_with_exchange_total_over_int64_is_rejected_and_changes_nothing():
    engine = Engine(load_config())
    for account in (1, 2):
        engine.apply(OpenAccount(f"open-{account}", 0, account))
    assert type(engine.apply(Deposit("d1", 0, 1, "USDT", INT64_MAX - 10))[0]) is BalanceChanged
    before = engine.state_hash()
    rejected = engine.apply(Deposit("d2", 0, 2, "USDT", 11))[0]
    assert type(rejected) is OrderRejected and rejected.reason == Reason.VALUE_OUT_OF_RANGE
    assert engine.state_hash() == before
    assert type(engine.apply(Deposit("d3", 0, 2, "USDT", 10))[0]) is BalanceChanged
