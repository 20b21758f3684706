"""Hot and cold wallets (rulebook 4.4.1, 4.4.4): deposits sweep above the hot ceiling,
withdrawals are paid from hot, refills need an operator, and hot + cold always equals
the deposits net of payments."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from exchange.risk.wallets import Discrepancy, RefillRequested, WalletReason as W, Wallets

BTC = 100_000_000
CEILINGS = {"BTC": 10 * BTC, "ETH": 0}


def test_deposits_fill_hot_to_its_ceiling_and_sweep_the_rest_to_cold():
    w = Wallets(CEILINGS)
    assert w.deposit("BTC", 4 * BTC) == 0                     # hot 4
    assert w.deposit("BTC", 8 * BTC) == 2 * BTC               # room 6: hot 10, cold 2
    assert w.deposit("BTC", 1 * BTC) == 1 * BTC               # hot full: hot 10, cold 3
    assert (w.hot["BTC"], w.cold["BTC"]) == (10 * BTC, 3 * BTC)
    assert w.deposit("ETH", 5) == 5 and (w.hot["ETH"], w.cold["ETH"]) == (0, 5)   # a zero ceiling: all cold
    w.check_invariants()


def test_payment_short_in_hot_waits_for_an_approved_refill():
    w = Wallets(CEILINGS)
    w.deposit("BTC", 13 * BTC)                                # hot 10, cold 3
    assert w.pay("BTC", 3 * BTC) is None                      # hot 7
    before = w.state_hash()
    assert w.pay("BTC", 8 * BTC) == W.HOT_WALLET_SHORT and w.state_hash() == before
    assert w.request_refill("BTC", 1 * BTC) == RefillRequested(None, 1)
    assert w.reserved("BTC") == 1 * BTC
    assert w.request_refill("BTC", 3 * BTC) == RefillRequested(W.COLD_WALLET_SHORT, None)   # 3 - 1 reserved
    assert (w.hot["BTC"], w.cold["BTC"]) == (7 * BTC, 3 * BTC)  # nothing moves before the approval
    assert w.approve_refill(1, "ops-ann") is None
    assert (w.hot["BTC"], w.cold["BTC"], w.reserved("BTC"), w.approvals) == (8 * BTC, 2 * BTC, 0, [(1, "ops-ann")])
    assert w.pay("BTC", 8 * BTC) is None
    assert (w.hot["BTC"], w.cold["BTC"], w.paid["BTC"]) == (0, 2 * BTC, 11 * BTC)
    assert w.reconcile({"BTC": 2 * BTC}) == []
    w.check_invariants()


def test_refill_above_the_ceiling_is_not_swept_back_by_a_deposit():
    w = Wallets(CEILINGS)
    w.deposit("BTC", 30 * BTC)                                # hot 10, cold 20
    w.request_refill("BTC", 15 * BTC)
    w.approve_refill(1, "ops")                                # hot 25, cold 5: for a 25 BTC payout
    assert w.deposit("BTC", 2 * BTC) == 2 * BTC               # hot over its ceiling: the deposit goes cold
    assert (w.hot["BTC"], w.cold["BTC"]) == (25 * BTC, 7 * BTC)
    assert w.pay("BTC", 20 * BTC) is None                     # hot 5
    assert w.sweep("BTC") == 0 and w.sweep("XRP") == 0
    w.request_refill("BTC", 7 * BTC)
    w.approve_refill(2, "ops")                                # hot 12
    assert w.sweep("BTC") == 2 * BTC and (w.hot["BTC"], w.cold["BTC"]) == (10 * BTC, 2 * BTC)
    w.check_invariants()


def test_cancelled_refill_frees_its_reservation():
    w = Wallets(CEILINGS)
    w.deposit("BTC", 12 * BTC)
    assert w.request_refill("BTC", 2 * BTC).refill_id == 1
    assert w.cancel_refill(1, "ops") is None and w.reserved("BTC") == 0
    assert w.approve_refill(1, "ops") == W.UNKNOWN_REFILL
    assert w.request_refill("BTC", 2 * BTC).refill_id == 2    # ids are never reused


@pytest.mark.parametrize("call,reason", [
    (lambda w: w.pay("XRP", 1), W.UNKNOWN_ASSET),
    (lambda w: w.pay("BTC", 0), W.NON_POSITIVE_AMOUNT),
    (lambda w: w.pay("BTC", 1.0), W.NON_POSITIVE_AMOUNT),
    (lambda w: w.pay("BTC", 2**63), W.VALUE_OUT_OF_RANGE),
    (lambda w: w.pay("BTC", 10 * BTC + 1), W.HOT_WALLET_SHORT),
    (lambda w: w.request_refill("XRP", 1).reason, W.UNKNOWN_ASSET),
    (lambda w: w.request_refill("BTC", -1).reason, W.NON_POSITIVE_AMOUNT),
    (lambda w: w.request_refill("BTC", 2 * BTC + 1).reason, W.COLD_WALLET_SHORT),
    (lambda w: w.approve_refill(9, "ops"), W.UNKNOWN_REFILL),
    (lambda w: w.approve_refill(1, ""), W.INVALID_OPERATOR),
    (lambda w: w.cancel_refill(1, None), W.INVALID_OPERATOR),
    (lambda w: w.cancel_refill(9, "ops"), W.UNKNOWN_REFILL),
])
def test_refused_wallet_command_changes_nothing(call, reason):
    w = Wallets(CEILINGS)
    w.deposit("BTC", 13 * BTC)                                # hot 10, cold 3
    w.request_refill("BTC", 1 * BTC)                          # refill 1: 1 reserved
    before = w.state_hash()
    assert call(w) == reason
    assert w.state_hash() == before


def test_refills_pending_are_limited():
    w = Wallets(CEILINGS, refills_max=1)
    w.deposit("BTC", 13 * BTC)
    w.request_refill("BTC", 1)
    before = w.state_hash()
    assert w.request_refill("BTC", 1) == RefillRequested(W.TOO_MANY_REFILLS, None) and w.state_hash() == before
    w.approve_refill(1, "ops")
    assert w.request_refill("BTC", 1).reason is None


@pytest.mark.parametrize("asset,amount", [("XRP", 1), ("BTC", 0), ("BTC", -3), ("BTC", 2**63)])
def test_impossible_deposit_is_a_bug(asset, amount):
    with pytest.raises(ValueError):
        Wallets(CEILINGS).deposit(asset, amount)


def test_reconcile_lists_every_asset_that_differs_from_the_ledger():
    w = Wallets(CEILINGS)
    w.deposit("BTC", 12 * BTC)
    w.deposit("ETH", 40)
    assert w.reconcile({"BTC": 12 * BTC, "ETH": 40}) == []
    assert w.reconcile({"BTC": 12 * BTC + 5, "USDT": 7}) == [
        Discrepancy("BTC", 12 * BTC, 12 * BTC + 5, -5), Discrepancy("ETH", 40, 0, 40),
        Discrepancy("USDT", 0, 7, -7)]


def test_snapshot_is_plain_json_and_restores_the_same_state():
    w = Wallets(CEILINGS)
    w.deposit("BTC", 13 * BTC)
    w.request_refill("BTC", BTC)
    w.request_refill("BTC", BTC)
    w.approve_refill(2, "ops")
    w.pay("BTC", 4 * BTC)
    plain = json.loads(json.dumps(w.snapshot()))
    restored = Wallets.restore(plain, CEILINGS)
    assert restored.state_hash() == w.state_hash()
    assert restored.approve_refill(1, "ops") is None and restored.request_refill("BTC", 1).refill_id == 3
    with pytest.raises(ValueError):
        Wallets.restore({**plain, "format": 2}, CEILINGS)
    with pytest.raises(ValueError):
        Wallets.restore(plain, {"ETH": 1})


OPS = st.one_of(
    st.tuples(st.just("deposit"), st.sampled_from(["BTC", "ETH"]), st.integers(1, 20 * BTC)),
    st.tuples(st.just("pay"), st.sampled_from(["BTC", "ETH"]), st.integers(1, 20 * BTC)),
    st.tuples(st.just("refill"), st.sampled_from(["BTC", "ETH"]), st.integers(1, 20 * BTC)),
    st.tuples(st.just("approve"), st.integers(1, 8)),
    st.tuples(st.just("cancel"), st.integers(1, 8)),
    st.tuples(st.just("sweep"), st.sampled_from(["BTC", "ETH"])),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(OPS, max_size=50))
def test_hot_plus_cold_always_equals_the_net_deposits(ops):
    w = Wallets({"BTC": 10 * BTC, "ETH": 3 * BTC})
    net = {"BTC": 0, "ETH": 0}
    for op in ops:
        if op[0] == "deposit":
            swept = w.deposit(op[1], op[2])
            assert 0 <= swept <= op[2]
            net[op[1]] += op[2]
        elif op[0] == "pay":
            hot = w.hot[op[1]]
            refused = w.pay(op[1], op[2])
            assert (refused is None) == (op[2] <= hot)
            if refused is None:
                net[op[1]] -= op[2]
        elif op[0] == "refill":
            w.request_refill(op[1], op[2])
        elif op[0] == "approve":
            w.approve_refill(op[1], "ops")
        elif op[0] == "cancel":
            w.cancel_refill(op[1], "ops")
        else:
            w.sweep(op[1])
        assert {a: w.hot[a] + w.cold[a] for a in net} == net
        assert w.reconcile(net) == []
        w.check_invariants()
    assert Wallets.restore(json.loads(json.dumps(w.snapshot())), w.hot_ceiling).state_hash() == w.state_hash()
