"""exchange.accounts.shard: hold arithmetic, protection prices, idempotent settlement of
market events, replay memory, and the shard's self-checks."""
from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import pytest
from hypothesis import given, settings, strategies as st

from exchange.messages.records import Deposit
from exchange.accounts.shard import ORDER_ID_SHARD_BITS, AccountShard, buy_hold_per_lot, protection_price
from tests.exchange.support import (ALICE, BOB, BTC_USDT, BUY, CONFIG, SELL, btc, business_state, funded_harness,
                                    usdt)

SPEC = CONFIG.markets[BTC_USDT]
SETTINGS = settings(max_examples=200, deadline=None, database=None)


@SETTINGS
@given(st.integers(1, 10**9), st.integers(0, 100_000))
def test_buy_hold_per_lot_with_any_price_covers_notional_plus_ceil_fee(ticks, taker_ppm):
    notional = Fraction(ticks * SPEC.tick_minor * SPEC.lot_minor, 10**SPEC.base.scale)
    assert buy_hold_per_lot(SPEC, ticks, taker_ppm) == notional + math.ceil(notional * taker_ppm / 10**6)


@SETTINGS
@given(st.integers(1, 10**12), st.integers(1, 10_000))
def test_protection_price_with_any_reference_bounds_slippage_on_the_grid(reference, bps):
    buy = protection_price(reference, BUY, bps)
    sell = protection_price(reference, SELL, bps)
    assert buy == math.floor(Fraction(reference * (10_000 + bps), 10_000))       # never worse than asked
    assert sell == max(1, math.ceil(Fraction(reference * (10_000 - bps), 10_000)))
    assert sell <= reference <= buy


def drive(engine, command):
    """Run a command through shard and market by hand; return the market's raw events."""
    shard = engine.shard
    events, request = shard.apply_client(command)
    assert events == [] and request is not None
    raw = engine.markets[command.market].handle(request)
    for event in raw:
        shard.apply_market(event)
    return raw


def test_apply_market_with_repeated_delivery_changes_nothing():
    ex = funded_harness()
    engine = ex.engine
    drive(engine, ex.place_cmd(ALICE, SELL, usdt("50000"), btc("0.3")))
    raw = drive(engine, ex.place_cmd(BOB, BUY, usdt("50000"), btc("0.2")))
    assert any(type(e).__name__ == "Fill" for e in raw)
    state = engine.state_hash(), business_state(engine)
    for event in raw:
        assert engine.shard.apply_market(event) == []
    assert (engine.state_hash(), business_state(engine)) == state
    engine.check_invariants()


def test_order_ids_with_consecutive_orders_derive_from_sequence_and_shard():
    ex = funded_harness()
    ids = [ex.rest(ALICE, SELL, usdt("50000") + i * usdt("1"), btc("0.1")) for i in range(3)]
    assert len(set(ids)) == 3 and ids == sorted(ids)
    assert all(i & ((1 << ORDER_ID_SHARD_BITS) - 1) == ex.engine.shard.shard_index for i in ids)


def test_remember_with_window_of_two_forgets_the_oldest():
    shard = AccountShard(dataclasses.replace(CONFIG, dedup_window=2))
    admitted = {rid: shard.admit(Deposit(rid, 0, ALICE, "BTC", 1)) for rid in ("a", "b", "c")}
    for rid, request in admitted.items():
        shard.remember(request, [rid])
    assert shard.recall(admitted["a"]) is None
    assert (shard.recall(admitted["b"]), shard.recall(admitted["c"])) == (["b"], ["c"])
    shard.remember(admitted["c"], ["other"])                # the first answer stays
    assert shard.recall(admitted["c"]) == ["c"]


def test_check_invariants_with_orphaned_hold_fails():
    ex = funded_harness()
    ex.rest(ALICE, SELL, usdt("50000"), btc("0.3"))
    account = ex.engine.shard.ledger.accounts[ALICE]
    account.held[CONFIG.assets["BTC"].index] += 1
    account.available[CONFIG.assets["BTC"].index] -= 1
    with pytest.raises(AssertionError, match="orphaned hold"):
        ex.engine.shard.check_invariants()


def test_check_invariants_with_negative_balance_fails():
    ex = funded_harness()
    ex.engine.shard.ledger.accounts[BOB].available[0] = -1
    with pytest.raises(AssertionError, match="negative"):
        ex.engine.check_invariants()


def test_engine_check_invariants_with_minted_unit_reports_conservation():
    ex = funded_harness()
    ex.engine.shard.ledger.fees[CONFIG.assets["USDT"].index] += 1
    assert ex.engine.conservation()["USDT"] == 1
    with pytest.raises(AssertionError, match="conservation"):
        ex.engine.check_invariants()
