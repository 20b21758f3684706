"""Compensation from a perpetual market's insurance fund (``exchange.perp.compensation``):
the fund records the payment in its public chain, the shard credits it exactly once across
lost answers and restarts, what is between them is counted as in flight, and bad operator
input records nothing anywhere."""
from __future__ import annotations

import pytest

from exchange.core.reasons import Reason
from exchange.messages.records import CompensationCredited, CreditCompensation, OrderRejected
from exchange.perp import compensation, liquidation
from exchange.perp.compensation import Compensation
from exchange.perp.fund import EntryKind, verify
from exchange.perp.liquidator import Send, drive
from exchange.accounts.access import Role
from tests.exchange.perp.test_desk import ALICE, PERP, check, harness, usdt
from tests.exchange.perp.test_liquidation import TS

WHY = "filled at a wrong index on 2026-12-03 (incident 7)"


def funded():
    ex = harness()
    ex.engine.top_up_perp_fund(PERP, usdt("10000"), TS)
    return ex


def spot_usdt(ex, account=ALICE) -> int:
    return ex.engine.balances(account)["USDT"][0]


def test_a_compensation_moves_money_from_the_fund_to_the_account_on_the_record():
    ex = funded()
    before = spot_usdt(ex)
    assert ex.engine.compensate(PERP, ALICE, usdt("250"), "demo-treasury", WHY, TS + 1) is None
    assert spot_usdt(ex) - before == usdt("250")
    assert ex.engine.perp_fund.balances[PERP] == usdt("9750")
    entry = ex.engine.perp_fund.entries[-1]
    assert (entry.kind, entry.amount, dict(entry.details)) == (
        EntryKind.COMPENSATION, -usdt("250"),
        {"account": ALICE, "shard": 0, "seq": 1, "through": usdt("250"), "operator": "demo-treasury", "reason": WHY})
    audit = ex.engine.shard.risk.audit.entries[-1]
    assert (audit.who, audit.what, audit.target, audit.why, audit.rule) == (
        "demo-treasury", "compensation", str(ALICE), WHY, compensation.RULE)
    assert ex.engine.shard.perp.compensated == {PERP: (1, usdt("250"))}
    fund = ex.engine.perp_fund
    assert verify([e.to_plain() for e in fund.entries], fund.balances, fund.head) == []
    check(ex)                                               # conservation: the fund's loss is the account's gain


BAD = {
    "no_reason": (dict(reason=""), Reason.REASON_REQUIRED),
    "unknown_operator": (dict(operator="mallory"), Reason.UNKNOWN_OPERATOR),
    "risk_role": (dict(operator="demo-risk"), Reason.OPERATOR_NOT_PERMITTED),
    "unknown_market": (dict(market="DOGE-PERP"), Reason.UNKNOWN_MARKET),
    "zero": (dict(amount=0), Reason.NON_POSITIVE_AMOUNT),
    "more_than_the_fund": (dict(amount=usdt("10000.000001")), Reason.FUND_INSUFFICIENT),
    "unknown_account": (dict(account_id=999), Reason.UNKNOWN_ACCOUNT),
    "house_account": (dict(account_id=-1), Reason.UNKNOWN_ACCOUNT),
    "reason_too_long": (dict(reason="x" * 257), Reason.STRING_TOO_LONG),        # the door would refuse the
    "reason_unprintable": (dict(reason="paid\x00back"), Reason.TEXT_NOT_PRINTABLE),  # credit: never recorded
}


COVERED = {reason for _, reason in BAD.values()} | {Reason.COMPENSATION_OUT_OF_ORDER}   # test_engine_rejections.py


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_operator_input_records_nothing_anywhere(case):
    ex = funded()
    fields, reason = BAD[case]
    order = {"market": PERP, "account_id": ALICE, "amount": usdt("100"), "operator": "demo-treasury", "reason": WHY,
             **fields}
    before = (ex.engine.state_hash(), len(ex.engine.perp_fund.entries), len(ex.engine.shard.risk.audit.entries))
    assert ex.engine.compensate(**order, ts_ns=TS + 1) == reason
    assert (ex.engine.state_hash(), len(ex.engine.perp_fund.entries),
            len(ex.engine.shard.risk.audit.entries)) == before


def test_a_payment_the_shard_never_answered_lands_once_when_delivered_again():
    ex = funded()
    machine, engine = ex.engine.perp_liquidator, ex.engine
    lost = []

    def answer_lost(request):                             # the shard applies it; the answer is lost
        if type(request) is Send:
            lost.append(engine.apply(request.command, Role.LIQUIDATOR))
            raise ConnectionError
        return liquidation.read(engine.shard.perp, *request)

    before = spot_usdt(ex)
    with pytest.raises(ConnectionError):
        drive(machine.compensate(Compensation(PERP, ALICE, usdt("40"), "demo-admin", WHY), TS, 1), answer_lost)
    assert [type(e) for e in lost[0]] == [CompensationCredited]
    assert machine.pending() == [(PERP, 0)]
    ex.engine.sweep_perp_fees(TS + 1)                     # the next sweep delivers what is not acknowledged
    assert machine.pending() == []
    assert spot_usdt(ex) - before == usdt("40")           # once
    check(ex)


def test_a_payment_recorded_and_not_sent_is_in_flight_until_it_lands():
    ex = funded()
    machine = ex.engine.perp_liquidator
    steps = machine.compensate(Compensation(PERP, ALICE, usdt("40"), "demo-treasury", WHY), TS, 1)
    assert next(steps).what == liquidation.ACCOUNT
    request = steps.send(True)                            # the account exists: recorded, then sent
    assert type(request) is Send and type(request.command) is CreditCompensation
    markets = ex.engine.perp_liquidator.markets
    received = [ex.engine.shard.perp.compensated]
    assert compensation.in_flight(markets, received, machine.fund.paid) == {"USDT": usdt("40")}
    with pytest.raises(AssertionError):
        check(ex)                                         # the Engine's conservation sees the fund short
    assert ex.engine.apply(request.command, Role.LIQUIDATOR)[0].credited
    assert compensation.in_flight(markets, received, machine.fund.paid) == {"USDT": 0}
    check(ex)


def test_the_shard_applies_payments_in_order_only_and_a_repeat_moves_nothing():
    ex = funded()
    for amount in ("10", "20"):
        ex.engine.compensate(PERP, ALICE, usdt(amount), "demo-treasury", WHY, TS)
    first, second = (compensation.command(e) for e in ex.engine.perp_fund.compensations[(PERP, 0)])
    state = ex.engine.state_hash()
    again = ex.engine.apply(first._replace(request_id="another-id"), Role.LIQUIDATOR)
    assert (type(again[0]), again[0].credited, again[0].seq) == (CompensationCredited, False, 2)
    for n, (seq, through) in enumerate(((4, second.through + usdt("40")),      # number 3 is missing
                                        (3, second.through + usdt("21")))):    # number 3 claims a wrong total
        refused = ex.engine.apply(second._replace(request_id=f"bad-{n}", seq=seq, through=through), Role.LIQUIDATOR)
        assert (type(refused[0]), Reason(refused[0].reason)) == (OrderRejected, Reason.COMPENSATION_OUT_OF_ORDER)
    assert ex.engine.state_hash() == state
    client = ex.engine.apply(first._replace(request_id="client"), Role.CLIENT)   # no paying oneself
    assert Reason(client[0].reason) == Reason.NOT_PERMITTED


def test_verify_finds_a_compensation_that_does_not_follow_the_one_before():
    ex = funded()
    ex.engine.compensate(PERP, ALICE, usdt("10"), "demo-treasury", WHY, TS)
    entries = [e.to_plain() for e in ex.engine.perp_fund.entries]
    details = dict(map(tuple, entries[-1][5]))
    entries[-1][5] = [list(p) for p in {**details, "through": usdt("11")}.items()]
    assert any("compensation 1 through" in p for p in verify(entries))
