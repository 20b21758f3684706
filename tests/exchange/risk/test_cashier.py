"""Withdrawals under the rulebook through the Engine (``exchange.risk.cashier``): the funds
held from request to final state, a large one queued 24 h for an operator's approval,
the credential lock, the blocklist, freezes, rejections and failures giving the funds back,
conservation after each step."""
from __future__ import annotations

import orjson

from exchange.core.reasons import Reason
from exchange.messages.codec import encode_shallow
from exchange.messages.records import (BlockAddress, CredentialChanged, FreezeAccount, OrderRejected,
                                       RequestWithdrawal, ReviewWithdrawal, SettleWithdrawal, WithdrawalUpdated)
from exchange.risk.withdrawals import WithdrawalState as W
from exchange.snapshot import restore_shard, shard_state
from tests.exchange.risk.test_gate import ALICE, HOUSE, S, harness
from tests.exchange.support import btc, usdt

LARGE = "R-4.4.2-large-withdrawal"
DAY = 24 * 3600


def setup(rules=None):
    h = harness(rules, operators={"risk-ann": {"roles": ["risk"]}, "treasury-tom": {"roles": ["treasury"]}},
                index=True)
    h.deposit(ALICE, "BTC", btc("2000"))
    return h


def request(h, asset: str, amount: int, destination: str = "bc1q-alice"):
    rid, ts = h.next_ids()
    return h.apply(RequestWithdrawal(rid, ts, ALICE, asset, amount, destination))


def review(h, withdrawal: int, approve: bool, operator: str = "treasury-tom", reason: str = "checked by phone"):
    rid, ts = h.next_ids()
    return h.apply(ReviewWithdrawal(rid, ts, ALICE, withdrawal, approve, operator, reason))


def settle(h, withdrawal: int, stage: int, txid: str = "tx-1"):
    rid, ts = h.next_ids()
    return h.apply(SettleWithdrawal(rid, ts, ALICE, withdrawal, stage, txid, "treasury", "chain"))


def update(events) -> WithdrawalUpdated:
    return next(e for e in events if type(e) is WithdrawalUpdated)


def available(h, asset: str) -> int:
    return h.engine.balances(ALICE)[asset][0]


def test_a_small_withdrawal_is_approved_at_once_held_then_sent_and_confirmed():
    h = setup()
    before, withdrawn = available(h, "USDT"), h.engine.shard.ledger.withdrawn[2]
    w = update(request(h, "USDT", usdt("1000")))
    assert (W(w.state), w.rule) == (W.APPROVED, "")
    assert available(h, "USDT") == before - usdt("1000")           # held in the cashier from now on
    h.engine.check_invariants()
    assert W(update(settle(h, w.withdrawal, 1, "tx-abc")).state) == W.SENT
    done = update(settle(h, w.withdrawal, 2))
    assert (W(done.state), done.txid) == (W.CONFIRMED, "tx-abc")
    assert h.engine.shard.ledger.withdrawn[2] == withdrawn + usdt("1000")
    h.engine.check_invariants()


def test_a_large_withdrawal_is_queued_24_hours_then_approved_sent_and_paid():
    h = setup()
    w = update(request(h, "BTC", btc("1500")))                       # over 1,000 BTC
    assert (W(w.state), w.rule, w.review_until_ns) == (W.QUEUED, LARGE, h.now + DAY * S)
    early = review(h, w.withdrawal, True)
    assert [(type(e), Reason(e.reason)) for e in early] == [(OrderRejected, Reason.REVIEW_NOT_DUE)]
    h.advance(DAY)
    wrong = review(h, w.withdrawal, True, operator="risk-ann")
    assert Reason(wrong[0].reason) == Reason.OPERATOR_NOT_PERMITTED
    approved = review(h, w.withdrawal, True)
    assert W(update(approved).state) == W.APPROVED
    settle(h, w.withdrawal, 1)
    settle(h, w.withdrawal, 2)
    h.engine.check_invariants()
    entries = [(e.who, e.what, e.before, e.after) for e in h.engine.shard.risk.audit.entries]
    assert ("treasury-tom", "approve-withdrawal", "queued", "approved") in entries
    assert ("treasury", "withdrawal-confirmed", "sent", "confirmed") in entries


def test_the_large_withdrawal_rule_under_none_only_records():
    h = setup({LARGE: {"action": "none"}})
    w = update(request(h, "BTC", btc("1500")))
    assert W(w.state) == W.APPROVED
    assert h.engine.shard.cashier.desk.get(w.withdrawal).fired[0].rule_id == LARGE


def test_a_withdrawal_within_24_hours_of_a_credential_change_is_refused_and_the_funds_stay():
    h = setup()
    rid, ts = h.next_ids()
    h.apply(CredentialChanged(rid, ts, ALICE))
    h.advance(DAY - 60)
    before = available(h, "USDT")
    w = update(request(h, "USDT", usdt("10")))
    assert (W(w.state), Reason(w.reason), w.rule) == (W.REJECTED, Reason.CREDENTIAL_CHANGED,
                                                       "R-4.4.3-credential-change")
    assert available(h, "USDT") == before
    h.advance(61)
    assert W(update(request(h, "USDT", usdt("10"))).state) == W.APPROVED


def test_a_blocklisted_destination_is_refused_and_only_the_risk_role_blocks():
    h = setup()
    rid, ts = h.next_ids()
    refused = h.apply(BlockAddress(rid, ts, HOUSE, "bc1q-scam", True, "treasury-tom", "reported"))
    assert Reason(refused[0].reason) == Reason.OPERATOR_NOT_PERMITTED
    rid, ts = h.next_ids()
    h.apply(BlockAddress(rid, ts, HOUSE, "bc1q-scam", True, "risk-ann", "reported as a scam wallet"))
    w = update(request(h, "USDT", usdt("10"), destination="bc1q-scam"))
    assert (Reason(w.reason), w.rule) == (Reason.BLOCKLISTED_DESTINATION, "R-5.2.2.4-blocklist")
    assert h.engine.shard.cashier.desk.get(w.withdrawal).fired[0].rule_id == "R-5.2.2.4-blocklist"


def test_a_frozen_account_cannot_withdraw_and_the_request_is_kept_on_file():
    h = setup()
    h.apply(h.op(FreezeAccount, ALICE, 2))
    w = update(request(h, "USDT", usdt("10")))
    assert (Reason(w.reason), w.rule) == (Reason.WITHDRAWALS_FROZEN, "R-5.2.2.3-freeze")
    assert h.engine.shard.cashier.desk.get(w.withdrawal).state == W.REJECTED


def test_an_operator_rejection_and_a_failed_broadcast_give_the_funds_back():
    h = setup()
    before = available(h, "BTC")
    queued = update(request(h, "BTC", btc("1500")))
    rejected = update(review(h, queued.withdrawal, False, reason="customer could not be reached"))
    assert (W(rejected.state), Reason(rejected.reason)) == (W.REJECTED, Reason.OPERATOR_REJECTED)
    assert available(h, "BTC") == before
    small = update(request(h, "BTC", btc("1")))
    settle(h, small.withdrawal, 1)
    failed = update(settle(h, small.withdrawal, 3))
    assert Reason(failed.reason) == Reason.BROADCAST_FAILED and available(h, "BTC") == before
    h.engine.check_invariants()


def test_bad_withdrawal_commands_change_nothing():
    h = setup()
    w = update(request(h, "USDT", usdt("10")))
    cases = [(request(h, "USDT", usdt("10"), destination=""), Reason.INVALID_DESTINATION),
             (request(h, "USDT", usdt("100000000")), Reason.INSUFFICIENT_BALANCE),
             (review(h, 999, True), Reason.UNKNOWN_WITHDRAWAL),
             (review(h, w.withdrawal, True), Reason.WITHDRAWAL_NOT_QUEUED),
             (settle(h, w.withdrawal, 2), Reason.WITHDRAWAL_NOT_SENT),
             (settle(h, w.withdrawal, 9), Reason.INVALID_SETTLEMENT)]
    assert [Reason(events[0].reason) for events, _ in cases] == [reason for _, reason in cases]
    queued = update(request(h, "BTC", btc("1500")))
    assert Reason(settle(h, queued.withdrawal, 1)[0].reason) == Reason.WITHDRAWAL_NOT_APPROVED
    settle(h, w.withdrawal, 1)
    assert Reason(review(h, w.withdrawal, False)[0].reason) == Reason.WITHDRAWAL_ALREADY_SENT
    assert Reason(settle(h, w.withdrawal, 1)[0].reason) == Reason.WITHDRAWAL_ALREADY_SENT
    settle(h, w.withdrawal, 2)
    assert Reason(settle(h, w.withdrawal, 3)[0].reason) == Reason.WITHDRAWAL_FINAL
    h.engine.check_invariants()


def test_the_cashier_survives_a_snapshot():
    h = setup()
    update(request(h, "BTC", btc("1500")))
    rid, ts = h.next_ids()
    h.apply(CredentialChanged(rid, ts, ALICE))
    engine = h.engine
    restored = restore_shard(engine.config, orjson.loads(orjson.dumps(shard_state(engine.shard),
                                                                      default=encode_shallow)))
    assert restored.canonical() == engine.shard.canonical()


COVERED = {Reason.UNKNOWN_WITHDRAWAL, Reason.WITHDRAWAL_NOT_APPROVED, Reason.WITHDRAWAL_FINAL, Reason.WITHDRAWAL_NOT_QUEUED, Reason.REVIEW_NOT_DUE,
           Reason.WITHDRAWAL_ALREADY_SENT, Reason.WITHDRAWAL_NOT_SENT, Reason.WITHDRAWALS_FROZEN,
           Reason.CREDENTIAL_CHANGED, Reason.BLOCKLISTED_DESTINATION, Reason.OPERATOR_REJECTED,
           Reason.BROADCAST_FAILED, Reason.INVALID_DESTINATION, Reason.INVALID_SETTLEMENT}
