"""Deposits from the chain (rulebook 4.4.4, 5.2.2.3): credited exactly once at the
asset's confirmation count, never after a double spend, held back by a suspension."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from exchange.risk.chain import ChainDeposit, ChainWatcher, CreditDeposit, DepositTracker, SimulatedChain

COUNTS = {"BTC": 3, "ETH": 12}


def a_tracker() -> tuple[SimulatedChain, DepositTracker]:
    chain = SimulatedChain()
    watcher: ChainWatcher = chain                       # the simulated chain is a watcher
    return chain, DepositTracker(watcher, COUNTS)


def test_deposit_is_credited_once_when_it_reaches_its_count():
    chain, tracker = a_tracker()
    chain.submit_deposit("BTC", "addr-7", 50_000, "tx-a")
    assert chain.confirmations("tx-a") == 0 and tracker.poll() == []
    chain.mine(2)
    assert chain.confirmations("tx-a") == 2 and tracker.poll() == []
    chain.mine()
    assert tracker.poll() == [CreditDeposit("tx-a", "BTC", "addr-7", 50_000, 3)]
    chain.mine(5)
    assert tracker.poll() == [] and chain.confirmations("tx-a") == 8
    assert tracker.credited == {"tx-a"} and tracker.pending == {}
    tracker.check_invariants()


def test_each_asset_has_its_own_chain_and_count():
    chain, tracker = a_tracker()
    chain.submit_deposit("BTC", "b", 1, "tx-b")
    chain.submit_deposit("ETH", "e", 2, "tx-e")
    chain.mine(11)
    assert [c.txid for c in tracker.poll()] == ["tx-b"]
    chain.mine(1, asset="ETH")
    assert (chain.height("BTC"), chain.height("ETH")) == (11, 12)
    assert [c.txid for c in tracker.poll()] == ["tx-e"]


def test_credits_come_in_feed_order():
    chain, tracker = a_tracker()
    for n in (3, 1, 2):
        chain.submit_deposit("BTC", "a", n, f"tx-{n}")
    chain.mine(3)
    assert [c.txid for c in tracker.poll()] == ["tx-3", "tx-1", "tx-2"]


@pytest.mark.parametrize("blocks_before", [0, 1, 2])
def test_double_spent_deposit_is_never_credited(blocks_before):
    chain, tracker = a_tracker()
    chain.submit_deposit("BTC", "a", 9, "tx-d")
    chain.mine(blocks_before)
    tracker.poll()
    chain.simulate_double_spend("tx-d")
    chain.mine(10)
    assert tracker.poll() == [] and tracker.poll() == []
    assert chain.confirmations("tx-d") is None and tracker.dropped == {"tx-d"}
    tracker.check_invariants()


def test_suspended_deposits_are_credited_after_resume_once():
    chain, tracker = a_tracker()
    tracker.suspend("BTC", withdrawals=False)
    assert tracker.deposits_suspended("BTC") and not tracker.withdrawals_suspended("BTC")
    chain.submit_deposit("BTC", "a", 5, "tx-s")
    chain.submit_deposit("ETH", "e", 6, "tx-e")
    chain.mine(20)
    assert [c.txid for c in tracker.poll()] == ["tx-e"]
    tracker.resume("BTC")
    assert [c.txid for c in tracker.poll()] == ["tx-s"] and tracker.poll() == []


def test_double_spend_during_a_suspension_is_never_credited():
    chain, tracker = a_tracker()
    tracker.suspend("BTC")
    chain.submit_deposit("BTC", "a", 5, "tx-s")
    chain.mine(4)
    assert tracker.poll() == []
    chain.simulate_double_spend("tx-s")
    tracker.resume("BTC")
    assert tracker.poll() == []


def test_withdrawal_suspension_is_separate_and_lifted_by_resume():
    _, tracker = a_tracker()
    tracker.suspend("ETH", deposits=False)
    assert tracker.withdrawals_suspended("ETH") and not tracker.deposits_suspended("ETH")
    tracker.resume("ETH", deposits=False)
    assert not tracker.withdrawals_suspended("ETH")


def test_deposit_of_an_asset_without_a_count_is_ignored():
    chain, tracker = a_tracker()
    chain.submit_deposit("DOGE", "a", 5, "tx-x")
    chain.mine(100)
    assert tracker.poll() == [] and tracker.ignored == {"tx-x"}


def test_chain_refuses_a_reused_txid_or_a_bad_amount():
    chain = SimulatedChain()
    chain.submit_deposit("BTC", "a", 5, "tx-1")
    for txid, amount in (("tx-1", 5), ("tx-2", 0), ("tx-3", 1.0)):
        with pytest.raises(ValueError):
            chain.submit_deposit("BTC", "a", amount, txid)
    with pytest.raises(ValueError):
        DepositTracker(chain, {"BTC": 0})


def test_broadcast_withdrawal_txids_are_deterministic_and_confirm():
    one, two = SimulatedChain(), SimulatedChain()
    ids = [c.broadcast_withdrawal("BTC", "dest", 7) for c in (one, two)]
    assert ids[0] == ids[1] and len(ids[0]) == 64
    assert one.broadcast_withdrawal("BTC", "dest", 7) != ids[0]
    assert one.confirmations(ids[0]) == 0
    one.mine(2)
    assert one.confirmations(ids[0]) == 2
    assert one.new_deposits(0) == []                     # our own withdrawals are no deposits


def test_snapshot_restores_and_still_credits_once():
    chain, tracker = a_tracker()
    chain.submit_deposit("BTC", "a", 1, "tx-1")
    chain.submit_deposit("BTC", "a", 2, "tx-2")
    chain.mine(3)
    chain.submit_deposit("BTC", "a", 3, "tx-3")
    tracker.suspend("ETH")
    assert [c.txid for c in tracker.poll()] == ["tx-1", "tx-2"]
    plain = json.loads(json.dumps(tracker.snapshot()))
    restored = DepositTracker.restore(plain, chain, COUNTS)
    assert restored.state_hash() == tracker.state_hash()
    chain.mine(3)
    assert [c.txid for c in restored.poll()] == ["tx-3"]
    with pytest.raises(ValueError):
        DepositTracker.restore({**plain, "format": 0}, chain, COUNTS)


OPS = st.one_of(
    st.tuples(st.just("submit"), st.sampled_from(["BTC", "ETH"]), st.integers(1, 1_000)),
    st.tuples(st.just("mine"), st.integers(1, 4), st.sampled_from(["BTC", "ETH", None])),
    st.tuples(st.just("double_spend"), st.integers(0, 30)),
    st.tuples(st.just("suspend"), st.sampled_from(["BTC", "ETH"])),
    st.tuples(st.just("resume"), st.sampled_from(["BTC", "ETH"])),
    st.tuples(st.just("poll")),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(OPS, max_size=60))
def test_every_live_deposit_is_credited_exactly_once_and_no_double_spend_ever(ops):
    chain, tracker = a_tracker()
    submitted: list[ChainDeposit] = []
    spent_twice: set[str] = set()
    credited: list[CreditDeposit] = []
    for op in ops:
        if op[0] == "submit":
            txid = f"tx-{len(submitted)}"
            chain.submit_deposit(op[1], "addr", op[2], txid)
            submitted.append(ChainDeposit(txid, op[1], "addr", op[2]))
        elif op[0] == "mine":
            chain.mine(op[1], op[2])
        elif op[0] == "double_spend":
            if op[1] < len(submitted) and submitted[op[1]].txid not in spent_twice \
                    and submitted[op[1]].txid not in {c.txid for c in credited}:
                spent_twice.add(submitted[op[1]].txid)
                chain.simulate_double_spend(submitted[op[1]].txid)
        elif op[0] == "suspend":
            tracker.suspend(op[1])
        elif op[0] == "resume":
            tracker.resume(op[1])
        else:
            for credit in tracker.poll():
                assert credit.asset not in tracker.deposits_stopped
                assert credit.confirmations >= COUNTS[credit.asset]
                credited.append(credit)
        tracker.check_invariants()
    for asset in COUNTS:
        tracker.resume(asset)
    chain.mine(COUNTS["ETH"])
    credited += tracker.poll()
    ids = [c.txid for c in credited]
    assert len(ids) == len(set(ids))
    assert not set(ids) & spent_twice
    assert set(ids) == {d.txid for d in submitted} - spent_twice
    assert all(c.amount == d.amount for c in credited for d in submitted if d.txid == c.txid)
