"""The treasury (``exchange.risk.treasury``) against an Engine: deposits credited once at
their confirmation count, hot and cold wallets, approved withdrawals paid from hot and
confirmed, a refill when hot is short, suspensions, and the wallets reconciling."""
from __future__ import annotations

from exchange.messages.records import Deposit, RequestWithdrawal, SettleWithdrawal, WithdrawalUpdated
from exchange.risk.treasury import Treasury
from exchange.risk.withdrawals import WithdrawalState as W
from tests.exchange.risk.test_gate import harness
from tests.exchange.support import btc, custom_config

ALICE = 1


def setup(ceiling: str = "10", confirmations: int = 3):
    h = harness(index=True)
    config = custom_config(lambda raw: raw.update(treasury={"confirmations": {"BTC": confirmations},
                                                            "hot_ceiling": {"BTC": ceiling}}))
    return h, Treasury(config)


def run(h, treasury: Treasury, blocks: int = 1) -> list:
    """Mine ``blocks`` blocks, paying what the cashier approved, applying every command."""
    applied = []
    for _ in range(blocks):
        commands = treasury.block() + treasury.pay(h.engine.shard.cashier.view())
        for command in commands:
            applied.append((command, h.apply(command)))
    return applied


def balance(h, asset: str = "BTC") -> int:
    return h.engine.balances(ALICE)[asset][0]


def test_a_deposit_is_credited_once_at_its_confirmation_count_and_the_excess_goes_cold():
    h, t = setup()
    before = balance(h)
    t.receive(ALICE, "BTC", btc("12"))
    assert run(h, t, 2) == [] and balance(h) == before                 # 1 and 2 confirmations
    [(command, events)] = run(h, t)
    assert type(command) is Deposit and command.request_id.startswith("chain:")
    assert balance(h) == before + btc("12")
    assert (t.wallets.hot["BTC"], t.wallets.cold["BTC"]) == (btc("10"), btc("2"))   # 10 BTC ceiling
    assert h.apply(command) == events                                  # re-sent: a replay, no second credit
    assert balance(h) == before + btc("12") and run(h, t, 3) == []
    t.check_invariants()


def test_suspended_and_double_spent_deposits_are_not_credited():
    h, t = setup()
    before = balance(h)
    t.suspend("BTC", True)
    t.receive(ALICE, "BTC", btc("1"))
    gone = t.receive(ALICE, "BTC", btc("5"))
    run(h, t, 1)
    t.chain.simulate_double_spend(gone)
    run(h, t, 5)
    assert balance(h) == before
    t.suspend("BTC", False)
    run(h, t, 1)
    assert balance(h) == before + btc("1")


def test_an_approved_withdrawal_is_paid_from_hot_sent_and_confirmed_and_the_wallets_reconcile():
    h, t = setup()
    t.receive(ALICE, "BTC", btc("8"))
    run(h, t, 3)
    rid, ts = h.next_ids()
    [w] = h.apply(RequestWithdrawal(rid, ts, ALICE, "BTC", btc("3"), "bc1q-alice"))
    assert W(w.state) == W.APPROVED
    sent = [events for command, events in run(h, t) if type(command) is SettleWithdrawal]
    assert [W(e.state) for events in sent for e in events if type(e) is WithdrawalUpdated] == [W.SENT]
    assert t.wallets.hot["BTC"] == btc("5") and t.in_flight["BTC"] == btc("3")
    # shards' view: 8 credited, nothing confirmed yet; the wallets hold 8 less the 3 in flight
    assert t.reconcile({"BTC": btc("8")}) == []
    stages = [command.stage for command, _ in run(h, t, 3) if type(command) is SettleWithdrawal]
    assert stages == [2]
    assert h.engine.shard.cashier.desk.get(w.withdrawal).state == W.CONFIRMED
    assert t.reconcile({"BTC": btc("8") - btc("3")}) == [] and t.in_flight["BTC"] == 0
    t.check_invariants()
    h.engine.check_invariants()


def test_a_withdrawal_hot_cannot_pay_waits_for_an_approved_refill_from_cold():
    h, t = setup(ceiling="1")
    t.receive(ALICE, "BTC", btc("6"))
    run(h, t, 3)                                        # 1 hot, 5 cold
    rid, ts = h.next_ids()
    [w] = h.apply(RequestWithdrawal(rid, ts, ALICE, "BTC", btc("3"), "bc1q-alice"))
    assert not [c for c, _ in run(h, t) if type(c) is SettleWithdrawal]
    [(refill, (asset, amount))] = t.view()["refills"].items()
    assert (asset, amount) == ("BTC", btc("2")) and t.view()["waiting_for_hot"] == [w.withdrawal]
    assert t.approve_refill(refill, "treasury-tom") is None
    assert [c.stage for c, _ in run(h, t) if type(c) is SettleWithdrawal] == [1]
    t.check_invariants()


def test_the_treasury_survives_a_snapshot():
    h, t = setup()
    t.receive(ALICE, "BTC", btc("4"))
    run(h, t, 2)
    _, copy = setup()
    copy.restore(t.snapshot())
    assert copy.snapshot() == t.snapshot()
    assert [type(c) for c in copy.block()] == [Deposit]                 # the third confirmation, after restore
